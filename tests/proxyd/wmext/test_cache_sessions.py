"""Sessions played from the cache answer playlist generation checks themselves ([MS-RTSP] 3.2.5.1
step 3: 412 for a stale X-Playlist-Gen-Id) and their EndOfStream carries the stored entry's
generation (3.2.4.1); the origin is not involved."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.wmext.harness import proxy_url, rtsp_exchange, running_proxy
from tests.wmorigin.player import WMPlayer


async def fill_cache(server, url: str) -> None:
    result = await WMPlayer(url, speed=5, send_event=False).run()
    assert result.error is None, result.error
    sink = server.context.reporter
    await sink.wait_for(lambda: any(c["state"] == "complete" for c in sink.of("cache.changed")))


async def test_stale_generation_is_412_on_cache_served_sessions(wm_origin, tmp_path):
    entry = wm_origin.set_entry("/clip.wmv", seed="gen-cache", duration_ms=800, max_age=3600)
    gen = entry.items[0].gen_id
    stale = str(gen + 1)
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache")) as server:
        url = proxy_url(server, "/clip.wmv")
        await fill_cache(server, url)
        origin_requests = len(wm_origin.requests)

        refused = await rtsp_exchange(url, "DESCRIBE", [("X-Playlist-Gen-Id", stale)])
        assert refused.status == 412 and refused.header("X-Playlist-Gen-Id") == str(gen)

        parts = urlsplit(url)
        player = await RawPlayer.connect(parts.hostname, parts.port)
        try:
            assert (await player.request("DESCRIBE", url)).status == 200
            for i, name in enumerate(("audio", "video")):  # the SDP's stream controls
                setup = await player.request("SETUP", f"{url}/{name}", ("X-Playlist-Gen-Id", str(gen)), (
                    "Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"))
                assert setup.status == 200, setup
                player.session = setup.headers.get("Session").split(";")[0]
            session_refused = await player.request("PLAY", url, ("X-Playlist-Gen-Id", stale))
            assert session_refused.status == 412
            assert session_refused.headers.get("Session").split(";")[0] == player.session
            keepalive = await player.request("GET_PARAMETER", url, ("X-Playlist-Gen-Id", stale))
            assert keepalive.status == 412
            assert (await player.request("PLAY", url, ("X-Playlist-Gen-Id", str(gen)))).status == 200
            assert (await player.request("TEARDOWN", url, ("X-Playlist-Gen-Id", str(gen)))).status == 200
        finally:
            await player.close()

        hit = await WMPlayer(url, speed=5, send_event=False).run()
    assert hit.error is None, hit.error
    assert hit.entries[0].eos.header("X-Playlist-Gen-Id") == str(gen)
    assert len(wm_origin.requests) == origin_requests  # every answer above came from the cache


async def test_no_remote_events_without_subscription(wm_origin, tmp_path):
    wm_origin.set_entry("/clip.wmv", seed="nosub", duration_ms=800, cache_control="max-age=3600, public")
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache")) as server:
        url = proxy_url(server, "/clip.wmv")
        await fill_cache(server, url)
        hit = await WMPlayer(url, speed=5, send_event=False).run()
        assert hit.error is None, hit.error
        sink = server.context.reporter
        await sink.wait_for(lambda: len(sink.of("session.ended")) == 2)
    assert wm_origin.count("PLAY", "/clip.wmv") == 1  # the hit was served from cache
    assert sink.of("sendevent") == []  # the origin listed no x-wms-event-subscription


async def test_prestuff_of_wm_content_uses_speed_and_serves_players_from_cache(wm_origin, tmp_path):
    from proxyd.control.schema import parse_snapshot
    from proxyd.app.snapshot_apply import SnapshotApplier

    wm_origin.set_entry("/clip.wmv", seed="prestuff", duration_ms=800, max_age=3600)
    origin_url = wm_origin.url("/clip.wmv")
    snap = parse_snapshot({"schema_version": 1, "etag": "e", "node": {"name": "n"}, "origins": [],
                           "purges": [], "prestuff": [{"id": 1, "url": origin_url}], "terminate_sessions": []})
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache")) as server:
        SnapshotApplier(server.context, server.strategies.cache).apply(snap)
        sink = server.context.reporter
        await sink.wait_for(lambda: any(c["state"] == "complete" for c in sink.of("cache.changed")))
        (fill_play,) = [r for r in wm_origin.requests if r.method == "PLAY"]
        assert fill_play.header("Speed")  # the origin offered com.microsoft.wm.fastcache
        result = await WMPlayer(proxy_url(server, "/clip.wmv"), speed=5, send_event=False).run()
        assert result.error is None, result.error
        await sink.wait_for(lambda: len(sink.of("session.ended")) == 1)
    assert wm_origin.count("PLAY", "/clip.wmv") == 1 and wm_origin.count("DESCRIBE", "/clip.wmv") == 1
    own = [e["event_type"] for e in sink.of("sendevent") if e["event_type"] != "remote-log"]
    assert own == ["remote-open", "remote-close"]  # (remote-log: the player's legacy LogPlay, converted)
    assert [c["state"] for c in sink.of("cache.changed")] == ["filling", "complete"]
