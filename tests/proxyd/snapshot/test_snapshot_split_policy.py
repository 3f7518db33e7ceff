"""An origin row's live and split policies (set in the dashboard, carried by the snapshot) decide
splitting for its route: `live` splits like a `--live` prefix, `split: never` relays each player
even under `--live`, `split: always` splits a live stream whose origin does not offer
x-wms-proxy-split. A real GStreamer live origin (it sends no x-wms-proxy-split) and ffmpeg players."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from proxyd.config import Config
from tests.proxyd.snapshot.test_snapshot_auth import proxy, snapshot, url_of

pytestmark = pytest.mark.peers


def row(base_url: str, **policy) -> dict:
    return {"id": 1, "name": "tv", "route_prefix": "/a", "base_url": base_url, **policy}


async def play_two(server) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        from tests.peers.players import ffmpeg_play

        plays = [pool.submit(ffmpeg_play, url_of(server, "live"), transport=t, duration=2, decode=False,
                             timeout=40) for t in ("tcp", "udp")]
        results = await asyncio.to_thread(lambda: [f.result() for f in plays])
    for result in results:
        assert result.ok, result.describe()


@pytest.mark.parametrize("policy, cli_live, origin_sessions", [
    ({"live": True}, (), 1),                          # the row says live: split, no --live needed
    ({"live": False}, (), 2),                         # nothing says live or split: one session each
    ({"live": True, "split": "never"}, (), 2),        # the row forbids splitting
    ({"split": "never"}, ("/a",), 2),                 # ... even under --live for the prefix
    ({"split": "always"}, (), 1),                     # GStreamer's live mount is a broadcast: split
])
async def test_origin_row_policy_decides_splitting(gst_origin_factory, peer_players, policy, cli_live,
                                                   origin_sessions):
    origin = gst_origin_factory(live="live")
    async with proxy(row(origin.url(), **policy), config=Config(listen_port=0, live_prefixes=cli_live)) as server:
        mark = origin.mark()
        await play_two(server)
    assert origin.session_count("/live", after=mark) == origin_sessions


def test_snapshot_routes_carry_the_rows_policies():
    from proxyd.app.snapshot_apply import snapshot_routes

    snap = snapshot(row("rtsp://o:554/", live=True, split="always"),
                    {**row("rtsp://p:554/", split="auto"), "id": 2, "route_prefix": "/b"})
    routes = {r.prefix: r for r in snapshot_routes(snap.origins)[0]}
    assert (routes["/a"].live, routes["/a"].split) == (True, "always")
    assert (routes["/b"].live, routes["/b"].split) == (False, "")
