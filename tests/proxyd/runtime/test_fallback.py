"""UDP -> TCP fallback toward the origin and origin-initiated requests relayed to the player."""

import asyncio

from proxyd.app.cli import config_from_args
from proxyd.app.server import ProxyServer
from proxyd.rtsp.events import Headers, Request
from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.runtime.test_e2e_lifecycle import eventually
from tests.proxyd.runtime.scripted_origin import ScriptedOrigin


async def test_no_udp_media_switches_origin_to_tcp_and_relays_end_of_stream():
    origin = await ScriptedOrigin(packets=40).start()
    server = ProxyServer(config_from_args(["--listen", "127.0.0.1:0", "--route",
                                           f"/vod=rtsp://127.0.0.1:{origin.port}", "--udp-fallback-timeout",
                                           "0.5"], env={}))
    await server.start()
    player = await RawPlayer.connect("127.0.0.1", server.port)
    try:
        base = f"rtsp://127.0.0.1:{server.port}/vod/movie"
        streams = await player.play_tcp(base)
        assert streams == [f"{base}/track1"]  # Content-Base rewritten to the proxy
        # The origin sends EndOfStream after its last frame on the same ordered path.
        await asyncio.wait_for(player.server_request_seen.wait(), 10)
        assert player.frames == {0: 40}
        setups = [r.headers.get("Transport") for r in origin.requests if r.method == "SETUP"]
        assert "client_port=" in setups[0] and setups[1].startswith("RTP/AVP/TCP")
        assert origin.methods().count("TEARDOWN") == 1  # the UDP origin session was released
        (relayed,) = player.requests_from_server
        assert relayed.method == "SET_PARAMETER" and relayed.body == b"EndOfStream: 1\r\n"
        assert relayed.uri == f"{base}/"
        assert relayed.headers.get("Session") == player.session
    finally:
        await player.close()
        await server.stop()
        await origin.stop()


async def test_play_response_rtp_info_points_at_proxy():
    origin = await ScriptedOrigin(packets=1).start()
    server = ProxyServer(config_from_args(["--listen", "127.0.0.1:0", "--route",
                                           f"/vod=rtsp://127.0.0.1:{origin.port}",
                                           "--origin-transport", "tcp"], env={}))
    await server.start()
    player = await RawPlayer.connect("127.0.0.1", server.port)
    try:
        base = f"rtsp://127.0.0.1:{server.port}/vod/movie"
        await player.play_tcp(base)
        resp = await player.request("GET_PARAMETER", base + "/")
        assert resp.status == 200 and resp.headers.get("Session").startswith(player.session)
        resp = await player.request("PLAY", base + "/")
        assert resp.headers.get("RTP-Info") == f"url={base}/track1;seq=1"
        resp = await player.request("SETUP", base + "/track1",
                                    ("Transport", "RTP/AVP/TCP;unicast;interleaved=4-5"))
        assert resp.status == 455  # no stream changes while playing
        assert (await player.request("PAUSE", base + "/")).status == 200
        resp = await player.request("SETUP", base + "/track1",
                                    ("Transport", "RTP/AVP/TCP;unicast;interleaved=4-5"))
        assert resp.status == 459  # already set up in this session
        resp = await player.request("TEARDOWN", base + "/")
        assert resp.status == 200
        assert await player.closed_by_server()  # [MS-RTSP] 3.2.5.17: then TCP is closed
        again = await RawPlayer.connect("127.0.0.1", server.port)
        again.session = player.session
        resp = await again.request("PLAY", base + "/")
        await again.close()
        assert resp.status == 454
        assert not server.sessions
    finally:
        await player.close()
        await server.stop()
        await origin.stop()


async def test_origin_loss_ends_the_session_and_disconnects_the_player():
    ended = []
    origin = await ScriptedOrigin(packets=1).start()

    class Sink:
        def emit(self, kind, data):
            if kind == "session.ended":
                ended.append(data)

    server = ProxyServer(config_from_args(["--listen", "127.0.0.1:0", "--route",
                                           f"/vod=rtsp://127.0.0.1:{origin.port}",
                                           "--origin-transport", "tcp"], env={}), reporter=Sink())
    await server.start()
    player = await RawPlayer.connect("127.0.0.1", server.port)
    try:
        await player.play_tcp(f"rtsp://127.0.0.1:{server.port}/vod/movie")
        await origin.stop()  # the origin goes away mid-session
        await asyncio.wait_for(asyncio.shield(player._pump), 5)  # proxyd closed the player's connection
        assert not server.sessions
        assert [e["end_reason"] for e in ended] == ["origin_error"]
    finally:
        await player.close()
        await server.stop()


async def test_a_teardown_then_an_immediate_close_ends_the_session_instead_of_parking_it():
    """A player may send TEARDOWN and close at once (the soak's raw players do): proxyd writing
    media to the closed connection loses it while the origin has not answered the TEARDOWN yet. The
    session must end then, not be parked for a resume ([MS-RTSP] 3.2.7.2) that no one wants, holding
    its origin session and sockets until the session timeout."""
    origin = await ScriptedOrigin(packets=5000, hold_teardown=True).start()
    server = ProxyServer(config_from_args(["--listen", "127.0.0.1:0", "--route",
                                           f"/vod=rtsp://127.0.0.1:{origin.port}", "--origin-transport", "tcp"],
                                          env={}))
    await server.start()
    player = await RawPlayer.connect("127.0.0.1", server.port)
    try:
        await player.play_tcp(f"rtsp://127.0.0.1:{server.port}/vod/movie")
        await asyncio.wait_for(player.frame_seen.wait(), 10)
        session = server.sessions[player.session]
        player.writer.write(player.conn.send_request(Request(
            "TEARDOWN", f"rtsp://127.0.0.1:{server.port}/vod/movie/", Headers([("Session", player.session)]))))
        await player.close()
        await eventually(lambda: "TEARDOWN" in origin.methods(), what="TEARDOWN at the origin")
        await eventually(lambda: not server.context.connections, what="player connection lost")
        origin.teardown_released.set()
        await eventually(lambda: session.ended, what="session ended")
        assert not session.detached and player.session not in server.sessions
    finally:
        origin.teardown_released.set()
        await server.stop()
        await origin.stop()
