"""[MS-RTSP] 4.6.1 through proxyd with --cache-dir: miss, fresh hit, stale hit revalidated with
GetContentInfo (3.1.4.1, 4.6.3), changed content fetched again. The WMPlayer-style player sends
LogConnect, LogPlay (4.5.1/4.5.2 samples) and a SendEvent remote-log on every play.

All parts run with the cache strategy active. Sessions served from cache report remote-open at
PLAY and remote-close at their end ([MS-WMSP] 3.2.5.11) because the origin subscribed to them.
"""

from __future__ import annotations

import time

from tests.proxyd.wmext.harness import proxy_url, running_proxy
from tests.wmorigin.player import WMPlayer


async def play(url):
    result = await WMPlayer(url, speed=5).run()
    assert result.error is None, result.error
    assert result.status("LogConnect") == [200] and result.status("LogPlay") == [200]
    assert result.status("SendEvent") == [200]
    return result


async def test_miss_relays_from_the_origin_and_reports_logs(wm_origin, tmp_path):
    wm_origin.set_entry("/clip.wmv", seed="461", duration_ms=800)
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache")) as server:
        result = await play(proxy_url(server, "/clip.wmv"))
        sink = server.context.reporter
        await sink.wait_for(lambda: len(sink.of("sendevent")) >= 2)
    assert wm_origin.count("DESCRIBE", "/clip.wmv") >= 1
    assert "x-wms-event-subscription" in result.describe.header("Cache-Control")
    assert [p["kind"] for p in sink.of("playlog")] == ["logconnect", "logplay"]
    assert all(e["subscribed"] for e in sink.of("sendevent"))


async def test_fresh_hit_stale_revalidated_and_changed_content(wm_origin, tmp_path):
    wm_origin.set_entry("/clip.wmv", seed="461", duration_ms=800, max_age=3600)
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache")) as server:
        url = proxy_url(server, "/clip.wmv")
        first = await play(url)
        sink = server.context.reporter
        await sink.wait_for(lambda: any(c.get("state") == "complete" for c in sink.of("cache.changed")))
        describes = wm_origin.count("DESCRIBE", "/clip.wmv")

        hit = await play(url)  # fresh hit: no DESCRIBE, no GCI upstream
        assert wm_origin.count("DESCRIBE", "/clip.wmv") == describes
        assert wm_origin.count("GetContentInfo", "/clip.wmv") == 0
        assert hit.entries[0].streams[2].asf_packets == first.entries[0].streams[2].asf_packets
        assert any(e["event_type"] == "remote-open" for e in sink.of("sendevent"))

        await sink.wait_for(lambda: events_of(sink, "remote-close") == 1)
        assert events_of(sink, "remote-open") == 1  # once each, for the cache-served session only
        assert all(e["subscribed"] for e in sink.of("sendevent"))

        # The origin's new max-age cannot reach a stored copy (its freshness is the Cache-Control it was
        # stored with): age the stored copy as time passing would, then revalidate.
        wm_origin.set_entry("/clip.wmv", seed="461", duration_ms=800, max_age=0)
        store = server.strategies.cache.store
        store.update(store.lookup(wm_origin.url("/clip.wmv")), expires_at=time.time() - 1)
        plays = wm_origin.count("PLAY", "/clip.wmv")
        revalidated = await play(url)  # stale hit: revalidated with GCI, unchanged, served from cache
        assert wm_origin.count("GetContentInfo", "/clip.wmv") == 1
        assert wm_origin.count("DESCRIBE", "/clip.wmv") == describes
        assert wm_origin.count("PLAY", "/clip.wmv") == plays
        assert revalidated.entries[0].streams[2].asf_packets == first.entries[0].streams[2].asf_packets
        states = [c["state"] for c in sink.of("cache.changed")]
        assert states[-2:] == ["stale", "complete"]

        wm_origin.change_content("/clip.wmv")
        changed = await play(url)  # changed content: fetched again
        assert changed.entries[0].streams[2].asf_packets != first.entries[0].streams[2].asf_packets
        assert wm_origin.count("DESCRIBE", "/clip.wmv") == describes + 1
        await sink.wait_for(lambda: [c["state"] for c in sink.of("cache.changed")][-1] == "complete")
        assert [c["state"] for c in sink.of("cache.changed")][len(states):] == \
            ["stale", "purged", "filling", "complete"]


def events_of(sink, event_type: str) -> int:
    return sum(1 for e in sink.of("sendevent") if e["event_type"] == event_type)
