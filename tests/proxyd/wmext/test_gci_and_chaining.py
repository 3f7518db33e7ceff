"""GetContentInfo in the server role ([MS-RTSP] 3.2.5.3: Cache-Control, empty body, no Supported;
brief 5.6.3: answered from the cache when the entry is stored, forwarded upstream otherwise) and
chained proxies: player -> proxyd A -> proxyd B -> WM origin ([MS-RTSP] 4.6.3, Via per hop)."""

from __future__ import annotations

import pytest

from proxyd.wmext import gci
from tests.proxyd.wmext.harness import proxy_url, rtsp_exchange, running_proxy
from tests.wmorigin.player import USER_AGENT_VERSION, WMPlayer

GCI = [("Content-Type", "application/x-wms-getcontentinfo")]


@pytest.fixture
def cache_source():
    """A content-info source as the cache registers one; answers for the servers listed in `stored`
    (register(server) adds it to that server's context)."""
    stored: dict = {}

    class Source(dict):
        def register(self, server) -> None:
            server.context.content_info_sources.append(lambda origin_url: stored.get((id(server), origin_url)))

        def __setitem__(self, key, value) -> None:
            stored[key] = value

    return Source()


async def test_gci_miss_is_forwarded_and_a_stored_entry_is_answered_locally(wm_origin, cache_source):
    entry = wm_origin.set_entry("/clip.wmv", seed="gci")
    async with running_proxy(wm_origin.url("")) as server:
        cache_source.register(server)
        url = proxy_url(server, "/clip.wmv")
        miss = await rtsp_exchange(url, "GET_PARAMETER", GCI, b"\x00")
        cache_source[(id(server), wm_origin.url("/clip.wmv"))] = gci.ContentInfo(
            'max-age=100, public, x-wms-event-subscription="remote-log"', entry.last_modified, entry.etag)
        hit = await rtsp_exchange(url, "GET_PARAMETER", GCI, b"\x00")
    assert wm_origin.count("GetContentInfo") == 1  # only the miss went upstream
    assert miss.status == 200 and miss.header("Cache-Control") == entry.cache_control_value(0)
    assert miss.header("Supported") is None and miss.body == b""
    assert hit.status == 200 and hit.body == b"" and hit.header("Supported") is None
    assert hit.header("Cache-Control") == 'max-age=100, public, x-wms-event-subscription="remote-log"'
    assert (hit.header("ETag"), hit.header("Last-Modified")) == (entry.etag, entry.last_modified)


async def test_chained_proxies_play_and_answer_gci_from_the_downstream_cache(wm_origin, cache_source):
    entry = wm_origin.set_entry("/clip.wmv", seed="chain", duration_ms=1000)
    async with running_proxy(wm_origin.url(""), prefix="/b") as upper:
        cache_source.register(upper)
        async with running_proxy(f"rtsp://127.0.0.1:{upper.port}/b", prefix="/a") as lower:
            url = proxy_url(lower, "/clip.wmv", prefix="/a")
            result = await WMPlayer(url, speed=5).run()
            await lower.context.reporter.wait_for(lambda: len(lower.context.reporter.of("sendevent")) == 2)
            cache_source[(id(upper), wm_origin.url("/clip.wmv"))] = gci.ContentInfo("max-age=50, public")
            info = await rtsp_exchange(url, "GET_PARAMETER", GCI, b"\x00")
    assert result.error is None, result.error
    assert result.entries[0].streams[2].asf_packets  # media through both hops
    assert info.status == 200 and info.header("Cache-Control") == "max-age=50, public"
    assert wm_origin.count("GetContentInfo") == 0  # answered by the upper proxy, not the origin

    describe = wm_origin.requests[0]
    via = [hop.strip() for hop in describe.header("Via").split(",")]
    assert len(via) == 2 and all("(WMCacheProxy/" in hop for hop in via)
    assert describe.header("X-Proxy-Client-Agent").startswith(USER_AGENT_VERSION)  # copied by the upper hop
    assert describe.header("User-Agent").startswith("WMCacheProxy/")

    # The lower proxy learned the origin's subscription through the upper one (Cache-Control passed on).
    assert all(e["subscribed"] for e in lower.context.reporter.of("sendevent"))
    assert [p["kind"] for p in lower.context.reporter.of("playlog")] == ["logconnect", "logplay"]
    assert upper.context.reporter.of("playlog") == []  # logs stay at the first proxy
    assert entry.cache_control_value(0) in result.describe.header("Cache-Control")
