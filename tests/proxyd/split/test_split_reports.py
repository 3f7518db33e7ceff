"""split.changed reports from a real split: in-process proxyd with --live on a GStreamer live origin,
ffmpeg players. The report sink records what proxyd hands its control-plane client."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from proxyd.app.cli import config_from_args
from proxyd.app.server import ProxyServer
from tests.contract.test_reports_proxyd import documented_data_keys
from tests.peers.players import ffmpeg_play

pytestmark = pytest.mark.peers

INTERVAL = 0.5  # --counters-interval in these tests


class TimedSink:
    """ReportSink keeping (loop time, kind, data) of every event; tests await a condition on them."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, dict]] = []
        self.changed = asyncio.Event()

    def emit(self, kind: str, data: dict) -> None:
        self.events.append((asyncio.get_running_loop().time(), kind, dict(data)))
        self.changed.set()

    def splits(self) -> list[dict]:
        return [data for _, kind, data in self.events if kind == "split.changed"]

    def timed_splits(self) -> list[tuple[float, dict]]:
        return [(at, data) for at, kind, data in self.events if kind == "split.changed"]

    def of(self, kind: str) -> list[dict]:
        return [data for _, k, data in self.events if k == kind]

    async def wait_for(self, predicate, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def split_server(origin, *extra: str):
    sink = TimedSink()
    argv = ["--listen", "127.0.0.1:0", "--route", f"/tv={origin.url('/')}", "--live", "/tv",
            "--counters-interval", str(INTERVAL), *extra]
    server = ProxyServer(config_from_args(argv, env={}), reporter=sink)
    await server.start()
    try:
        yield server, sink
    finally:
        await server.stop()


def states(reports: list[dict]) -> list[str]:
    """State sequence without repeats."""
    out: list[str] = []
    for report in reports:
        if not out or out[-1] != report["state"]:
            out.append(report["state"])
    return out


async def test_a_split_reports_start_live_players_and_end_with_bounded_updates(live_origin):
    transports = ["udp", "tcp", "udp", "tcp"]
    async with split_server(live_origin, "--split-linger", "1") as (server, sink):
        url = f"rtsp://127.0.0.1:{server.port}/tv/live"
        results = await asyncio.gather(*(asyncio.to_thread(ffmpeg_play, url, transport=t, duration=4,
                                                           decode=False, timeout=30) for t in transports))
        await sink.wait_for(lambda: any(r["state"] == "ended" for r in sink.splits()), timeout=10)
        sessions = sink.of("session.started")
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    reports = sink.splits()
    assert states(reports) == ["starting", "live", "ended"], reports
    assert {r["split_id"] for r in reports} == {reports[0]["split_id"]}
    assert all(set(r) == documented_data_keys()["split.changed"] for r in reports)
    origin_url = live_origin.url("/live")
    assert all(r["url"] == origin_url for r in reports)
    assert {s["origin_url"] for s in sessions} == {origin_url}  # sessions name their split's url
    first, last = reports[0], reports[-1]
    assert (first["state"], first["players"], first["packets_in"], first["player_url"]) == ("starting", 0, 0, None)
    assert all(r["started_at"] == first["started_at"] for r in reports)
    assert any(r["state"] == "live" and r["players"] == len(transports) and r["packets_in"] > 0 for r in reports)
    assert {r["player_url"] for r in reports if r["players"]} == {url}
    assert (last["state"], last["end_reason"], last["players"]) == ("ended", "linger_expired", 0)
    assert (last["peak_players"], last["reconnects"], last["media_stalls"]) == (len(transports), 0, 0)
    assert last["origin_transport"] == "udp"
    assert all(r["end_reason"] is None for r in reports[:-1])
    assert last["bytes_in"] > 12 * last["packets_in"] > 0  # RTP with payloads
    packets = [r["packets_in"] for r in reports]
    assert packets == sorted(packets)
    # Bounded: updates while live come from one timer per hub, never from each join or leave.
    timed = sink.timed_splits()
    periodic = [at for i, (at, r) in enumerate(timed) if i >= 2 and r["state"] == "live"
                and timed[i - 1][1]["state"] == "live" and timed[i - 2][1]["state"] == "live"]
    gaps = [b - a for a, b in zip(periodic, periodic[1:], strict=False)]
    assert gaps and min(gaps) >= 0.9 * INTERVAL, gaps
    live_span = timed[-1][0] - timed[1][0]
    assert len([r for r in reports if r["state"] == "live"]) <= live_span / INTERVAL + 2


async def test_origin_restart_reports_reconnecting_then_live_with_one_reconnect(live_origin):
    async with split_server(live_origin, "--split-reconnect-wait", "15") as (server, sink):
        url = f"rtsp://127.0.0.1:{server.port}/tv/live"
        play = asyncio.ensure_future(asyncio.to_thread(ffmpeg_play, url, transport="tcp", duration=10,
                                                       decode=False, timeout=45))
        await sink.wait_for(lambda: any(r["players"] == 1 and r["packets_in"] > 0 for r in sink.splits()))
        started = time.monotonic()
        await asyncio.to_thread(live_origin.restart)
        await sink.wait_for(lambda: states(sink.splits())[-2:] == ["reconnecting", "live"], timeout=20)
        outage = time.monotonic() - started
        result = await play
    assert result.ok, result.describe() + f"\noutage {outage:.1f}s"
    reports = sink.splits()
    assert states(reports) == ["starting", "live", "reconnecting", "live", "ended"], reports
    reconnecting = next(r for r in reports if r["state"] == "reconnecting")
    back = next(r for r in reports if r is not reconnecting and r["state"] == "live" and r["reconnects"])
    assert (reconnecting["reconnects"], reconnecting["players"]) == (1, 1)
    assert (back["reconnects"], back["players"]) == (1, 1)
    assert back["packets_in"] >= reconnecting["packets_in"]
    last = reports[-1]
    assert (last["end_reason"], last["reconnects"], last["peak_players"]) == ("shutdown", 1, 1)
