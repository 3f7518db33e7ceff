"""proxyd's client role stopping a PLAYING relay session at a Windows Media origin: Pause, then its
own LogPlay ([MS-RTSP] 3.1.4.7), a legacy log ([MS-WMLOG] 2.4) since proxyd sends no remote-log of
its own for the session; then, at a Teardown, the Teardown (3.1.4.10)."""

from __future__ import annotations

import asyncio

from proxyd.wm.wmlog import parse_log
from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.wmext.harness import proxy_url, running_proxy


def upstream_kinds(wm_origin, path: str) -> list[str]:
    return [r.kind for r in wm_origin.requests if r.path.rstrip("/").startswith(path)
            and r.kind in ("PLAY", "PAUSE", "LogPlay", "TEARDOWN")]


async def playing(server, path: str) -> RawPlayer:
    player = await RawPlayer.connect("127.0.0.1", server.port)
    await player.play_tcp(proxy_url(server, path))
    await player.media_flowing()  # some media relayed before it stops
    return player


async def test_teardown_while_playing_pauses_logs_then_tears_down_upstream(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="own-log", duration_ms=20_000)
    async with running_proxy(wm_origin.url("")) as server:
        player = await playing(server, "/clip.wmv")
        try:
            assert (await player.request("TEARDOWN", proxy_url(server, "/clip.wmv"))).status == 200
        finally:
            await player.close()
    assert upstream_kinds(wm_origin, "/clip.wmv") == ["PLAY", "PAUSE", "LogPlay", "TEARDOWN"]
    (logplay,) = wm_origin.logs
    assert logplay.header("Session") and logplay.header("User-Agent").startswith("WMCacheProxy/")
    log = parse_log(logplay.body, hint="logplay")
    assert log.log_type == "legacy", log.errors
    assert log.fields["cs-uri-stem"].startswith(wm_origin.url("/clip.wmv"))
    assert log.fields["c-status"] == "200" and log.fields["transport"] in ("TCP", "UDP")
    assert int(log.fields["c-pkts-received"]) > 0 and int(log.fields["c-bytes"]) > 0
    assert log.fields["cs-User-Agent"] == logplay.header("User-Agent").replace(" ", "_")  # W3C value


async def test_a_relayed_pause_is_followed_by_our_logplay_and_a_stop_in_ready_sends_none(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="own-log-pause", duration_ms=20_000)
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/clip.wmv")
        player = await playing(server, "/clip.wmv")
        try:
            assert (await player.request("PAUSE", url)).status == 200
            assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.logs)
            assert (await player.request("TEARDOWN", url)).status == 200  # READY: no second log
        finally:
            await player.close()
    assert upstream_kinds(wm_origin, "/clip.wmv") == ["PLAY", "PAUSE", "LogPlay", "TEARDOWN"]


async def test_a_fill_stopped_while_the_origin_sends_pauses_and_logs_before_its_teardown(wm_origin, tmp_path):
    """A download over the cache quota stops mid-content (nothing stored): its origin session gets
    Pause, our LogPlay, then Teardown."""
    wm_origin.set_entry("/big.wmv", seed="over-quota", duration_ms=20_000)
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache"),
                             "--cache-max-bytes", "30000") as server:
        sink = server.context.reporter
        player = await RawPlayer.connect("127.0.0.1", server.port)
        try:
            await player.play_tcp(proxy_url(server, "/big.wmv"))
            await sink.wait_for(lambda: any(c["state"] == "incomplete" for c in sink.of("cache.changed")))
        finally:
            await player.close()
        assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("TEARDOWN", "/big.wmv") >= 1)
    by_session: dict[str, list[str]] = {}
    for r in wm_origin.requests:
        if r.kind in ("PAUSE", "LogPlay", "TEARDOWN") and r.header("Session"):
            by_session.setdefault(r.header("Session").split(";")[0], []).append(r.kind)
    assert ["PAUSE", "LogPlay", "TEARDOWN"] in by_session.values(), by_session
