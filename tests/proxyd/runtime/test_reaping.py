"""Idle players are reaped (UDP players that go silent); a TCP player that is playing is not."""

import asyncio
import socket

from proxyd.app.cli import config_from_args
from proxyd.app.server import ProxyServer
from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.runtime.scripted_origin import ScriptedOrigin


class Sink:
    def __init__(self):
        self.ended = asyncio.Event()
        self.events = []

    def emit(self, kind, data):
        self.events.append((kind, data))
        if kind == "session.ended":
            self.ended.set()


async def test_silent_udp_player_is_reaped_but_tcp_player_is_not():
    origin = await ScriptedOrigin(packets=1).start()
    sink = Sink()
    server = ProxyServer(config_from_args(["--listen", "127.0.0.1:0",
                                           "--route", f"/vod=rtsp://127.0.0.1:{origin.port}",
                                           "--origin-transport", "tcp", "--session-timeout", "1",
                                           "--session-idle-margin", "0.5"], env={}),
                         reporter=sink)
    await server.start()
    udp_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_sink.bind(("127.0.0.1", 0))
    port = udp_sink.getsockname()[1]
    tcp_player = await RawPlayer.connect("127.0.0.1", server.port)
    udp_player = await RawPlayer.connect("127.0.0.1", server.port)
    try:
        base = f"rtsp://127.0.0.1:{server.port}/vod/movie"
        await tcp_player.play_tcp(base)
        resp = await udp_player.request("SETUP", base + "/track1",
                                        ("Transport", f"RTP/AVP;unicast;client_port={port}-{port + 1}"))
        assert resp.status == 200 and resp.headers.get("Session").endswith(";timeout=1")
        udp_player.session = resp.headers.get("Session").split(";")[0]
        assert (await udp_player.request("PLAY", base + "/")).status == 200
        assert len(server.sessions) == 2
        await asyncio.wait_for(sink.ended.wait(), 5)  # the silent UDP player, after ~1 s
        ended = [d for k, d in sink.events if k == "session.ended"]
        assert [d["session_id"] for d in ended] == [udp_player.session]
        assert ended[0]["end_reason"] == "timeout"
        assert list(server.sessions) == [tcp_player.session]
        assert await udp_player.closed_by_server()  # its only session gone: so is its connection
        again = await RawPlayer.connect("127.0.0.1", server.port)
        again.session = udp_player.session
        assert (await again.request("PLAY", base + "/")).status == 454
        await again.close()
        assert (await tcp_player.request("GET_PARAMETER", base + "/")).status == 200
    finally:
        udp_sink.close()
        await tcp_player.close()
        await udp_player.close()
        await server.stop()
        await origin.stop()
