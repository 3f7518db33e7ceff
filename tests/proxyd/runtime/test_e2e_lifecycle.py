"""In-process proxyd against a real GStreamer origin: resource release, keepalive, reports, isolation."""

import asyncio
import contextlib

import pytest

from proxyd.app.cli import config_from_args
from proxyd.net.udp import open_fd_count
from proxyd.app.server import ProxyServer
from proxyd.relay.session import ProxySession
from tests.peers.fixtures import LIVE_MOUNT
from tests.proxyd.runtime.rawplayer import RawPlayer

pytestmark = pytest.mark.peers


class ListSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def emit(self, kind: str, data: dict) -> None:
        self.events.append((kind, data))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@contextlib.asynccontextmanager
async def running_proxy(origin_url: str, *extra: str):
    sink = ListSink()
    argv = ["--listen", "127.0.0.1:0", "--route", f"/vod={origin_url}", *extra]
    server = ProxyServer(config_from_args(argv, env={}), reporter=sink)
    await server.start()
    server.sink = sink
    try:
        yield server
    finally:
        await server.stop()


def proxy_url(server: ProxyServer, path: str) -> str:
    return f"rtsp://127.0.0.1:{server.port}/vod/{path}"


async def eventually(condition, timeout: float = 10.0, what: str = "condition"):
    """Poll a cheap in-process condition until it holds (each step yields to the loop), or fail."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    return True


def idle_state(server: ProxyServer, fds: int, tasks: set):
    current = asyncio.all_tasks() - tasks
    return (not server.sessions and not server.context.connections and not server.context.background
            and open_fd_count() == fds and not current)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_player_teardown_releases_every_socket_and_task(shared_gst_origin, peer_players, transport):
    async with running_proxy(shared_gst_origin.url(), "--counters-interval", "0.5") as server:
        fds, tasks = open_fd_count(), set(asyncio.all_tasks())
        result = await asyncio.to_thread(peer_players.ffmpeg_play, proxy_url(server, "clip"),
                                         transport=transport, duration=3)
        assert result.ok, result.describe()
        await eventually(lambda: idle_state(server, fds, tasks), what="proxy idle")
        assert server.sink.kinds()[0] == "session.started"
        kind, ended = server.sink.events[-1]
        assert kind == "session.ended" and ended["end_reason"] == "teardown"
        assert ended["packets_out"] > 0 and ended["bytes_out"] > ended["packets_out"]
        counters = [d["packets_out"] for k, d in server.sink.events if k == "session.counters"]
        assert len(counters) >= 2 and counters == sorted(counters) and counters[0] > 0
        assert counters[-1] <= ended["packets_out"]
        started = server.sink.events[0][1]
        assert started["transports"] == [transport, transport] and started["served_from"] == "origin"
        assert started["url"] == proxy_url(server, "clip")


async def test_connection_loss_tears_down_upstream_and_frees_everything_after_the_idle_timeout(gst_origin):
    """[MS-RTSP] 3.2.7.2: the session waits for a reconnect (test_resume.py) for the Idle-Timeout."""
    async with running_proxy(gst_origin.url(), "--origin-transport", "udp", "--session-timeout", "2",
                             "--session-idle-margin", "0.5", "--counters-interval", "0.5") as server:
        fds, tasks = open_fd_count(), set(asyncio.all_tasks())
        player = await RawPlayer.connect("127.0.0.1", server.port)
        await player.play_tcp(proxy_url(server, "clip"))
        await asyncio.wait_for(player.frame_seen.wait(), 10)
        assert len(gst_origin.open_sessions()) == 1
        await player.close()  # no TEARDOWN: connection loss
        await eventually(lambda: not server.context.connections, what="connection gone")
        assert player.session in server.sessions and "session.ended" not in server.sink.kinds()
        dropped = len(server.sink.events)
        await eventually(lambda: idle_state(server, fds, tasks), what="proxy idle")
        assert "session.counters" in server.sink.kinds()[dropped:-1]  # reports go on while it waits
        await asyncio.to_thread(gst_origin.wait_until, lambda _: not gst_origin.open_sessions(), 10)
        assert gst_origin.requests("TEARDOWN")
        kind, ended = server.sink.events[-1]
        assert kind == "session.ended" and ended["end_reason"] == "timeout"


async def test_keepalive_holds_a_short_origin_session(gst_origin_factory, monkeypatch):
    """The raw player sends nothing after PLAY (no RTCP, no keepalive): only proxyd keeps the origin
    session alive. Control run first: with keepalive disabled the origin expires the session."""
    origin = gst_origin_factory(live=LIVE_MOUNT, session_timeout=2)

    async def watch(disable_keepalive: bool, seconds: float) -> tuple[int, int]:
        with monkeypatch.context() as m:
            if disable_keepalive:
                async def no_keepalive(self):
                    pass
                m.setattr(ProxySession, "_keepalive", no_keepalive)
            async with running_proxy(origin.url(), "--origin-transport", "udp") as server:
                mark = origin.mark()
                player = await RawPlayer.connect("127.0.0.1", server.port)
                await player.play_tcp(proxy_url(server, LIVE_MOUNT))
                await asyncio.wait_for(player.frame_seen.wait(), 10)
                closed = asyncio.to_thread(origin.wait_for, lambda e: e["event"] == "session-closed",
                                           seconds, after=mark)
                try:
                    await closed
                    expired = 1
                except TimeoutError:
                    expired = 0
                before = player.count()
                await asyncio.sleep(0.5)  # media still arriving now?
                flowing = player.count() - before
                await player.close()
                return expired, flowing

    expired, _ = await watch(disable_keepalive=True, seconds=8)
    assert expired == 1, "control run: the origin should expire a session nobody keeps alive"
    mark = origin.mark()
    expired, flowing = await watch(disable_keepalive=False, seconds=7)
    assert expired == 0 and flowing > 0
    assert len(origin.requests("GET_PARAMETER", after=mark)) >= 3


async def test_garbage_client_does_not_disturb_players(shared_gst_origin, peer_players, test_clips):
    async with running_proxy(shared_gst_origin.url()) as server:
        async def garbage_client(rounds: int) -> list[bytes]:
            answers = []
            for i in range(rounds):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write([b"\x00\xff garbage\r\n\r\n", b"PLAY x RTSP/1.0\r\n\r\n",
                              b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"X" * 20000][i % 4])
                answers.append(await reader.read(200))
                writer.close()
            return answers

        players = [asyncio.to_thread(peer_players.ffmpeg_play, proxy_url(server, "clip"), transport=t)
                   for t in ("udp", "tcp", "udp")]
        *results, answers = await asyncio.gather(*players, garbage_client(40))
        assert all(a.startswith((b"RTSP/1.0 400 ", b"RTSP/1.0 505 ")) for a in answers), answers[:4]
        for result in results:
            assert result.ok, result.describe()
            assert result.video_frames >= 0.95 * test_clips.main.video_frames, result.describe()
        assert server.sink.kinds().count("session.started") == 3
