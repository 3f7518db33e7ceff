"""How a player's session and TCP connection end: Teardown ([MS-RTSP] 3.2.5.17: 200 without body, then
the TCP connection closed and the session deleted; upstream 3.1.4.10: Teardown in READY or PLAYING,
else only the TCP closed) and a request proxyd refuses (3.2.7.6: session state deleted, TCP closed)."""

from __future__ import annotations

from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.wmext.harness import proxy_url, rtsp_exchange, running_proxy


def origin_teardowns(wm_origin, path: str) -> list:
    return [r for r in wm_origin.requests if r.method == "TEARDOWN" and r.path.rstrip("/") == path]


async def test_aggregate_teardown_answers_then_closes_the_connection_and_the_origin_session(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="teardown", duration_ms=20_000)
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/clip.wmv")
        player = await RawPlayer.connect("127.0.0.1", server.port)
        try:
            streams = await player.play_tcp(url)
            deselect = await player.request("TEARDOWN", streams[0])  # SelectStream: connection stays
            assert deselect.status == 200 and not await player.closed_by_server(timeout=0.3)
            response = await player.request("TEARDOWN", url)
            assert (response.status, response.body) == (200, b"")
            assert await player.closed_by_server()
        finally:
            await player.close()
        assert server.context.sessions == {}
        assert wm_origin.wait_for(lambda: wm_origin.client_sessions() == [])
    teardowns = origin_teardowns(wm_origin, "/clip.wmv")
    assert [t.url for t in teardowns][-1] == wm_origin.url("/clip.wmv")  # PLAYING upstream: Teardown sent


async def test_a_player_gone_before_setup_leaves_the_origin_without_a_teardown(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="init")
    async with running_proxy(wm_origin.url("")) as server:
        player = await RawPlayer.connect("127.0.0.1", server.port)
        try:
            assert (await player.request("DESCRIBE", proxy_url(server, "/clip.wmv"))).status == 200
        finally:
            await player.close()
        assert wm_origin.wait_for(lambda: not any(c for c in wm_origin.client_sessions()))
    assert wm_origin.count("DESCRIBE", "/clip.wmv") == 1 and origin_teardowns(wm_origin, "/clip.wmv") == []


async def test_a_refused_request_deletes_the_sessions_and_closes_the_connection(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="acl", duration_ms=20_000)
    async with running_proxy(wm_origin.url("")) as server:
        player = await RawPlayer.connect("127.0.0.1", server.port)
        try:
            await player.play_tcp(proxy_url(server, "/clip.wmv"))
            assert len(server.context.sessions) == 1
            refused = await player.request("DESCRIBE", "rtsp://192.0.2.1/elsewhere.wmv")  # not an allowed origin
            assert refused.status == 403
            assert await player.closed_by_server()
        finally:
            await player.close()
        assert server.context.sessions == {}
        assert wm_origin.wait_for(lambda: wm_origin.client_sessions() == [])
    assert len(origin_teardowns(wm_origin, "/clip.wmv")) == 1  # the deleted session's upstream Teardown


async def test_redirect_policy_answers_302_or_305_with_location_then_closes(wm_origin):
    """[MS-RTSP] 3.2.5.4, 3.2.7.4: a redirect is a 302 (another server: the same content under its URL)
    or a 305 (another proxy: ask it for the same URL), never the REDIRECT method; then the session
    state is deleted and TCP closed."""
    wm_origin.set_entry("/clip.wmv", seed="moved", duration_ms=20_000)
    async with running_proxy(wm_origin.url("")) as server:
        own = f"rtsp://127.0.0.1:{server.port}"
        async with running_proxy(wm_origin.url(""), "--redirect", f"/old={own}/wm",
                                 "--redirect-proxy", f"/elsewhere=rtsp://proxy2.example:8554") as redirecting:
            player = await RawPlayer.connect("127.0.0.1", redirecting.port)
            try:
                await player.play_tcp(proxy_url(redirecting, "/clip.wmv"))  # a session on this connection
                moved = await player.request("DESCRIBE", f"rtsp://127.0.0.1:{redirecting.port}/old/clip.wmv")
                assert (moved.status, moved.headers.get("Location")) == (302, f"{own}/wm/clip.wmv")
                assert await player.closed_by_server()
            finally:
                await player.close()
            assert redirecting.context.sessions == {}
            via = await rtsp_exchange(f"rtsp://127.0.0.1:{redirecting.port}/elsewhere/x.wmv", "DESCRIBE", [])
            assert (via.status, via.header("Location")) == (305, "rtsp://proxy2.example:8554")
        followed = await rtsp_exchange(moved.headers.get("Location"), "DESCRIBE", [])  # the player goes there
    assert followed.status == 200 and followed.body.startswith(b"v=0")
    assert wm_origin.count("DESCRIBE", "/clip.wmv") == 2  # the redirected DESCRIBE never reached it
