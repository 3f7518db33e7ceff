"""GetContentInfo where [MS-RTSP] puts it, through a real proxyd in front of the WM test origin:
before DESCRIBE on a miss (4.6.1 steps 1-2), once for concurrent stale DESCRIBEs of one entry
(Figure 20), the origin's new Cache-Control kept when the content is unchanged, and 404 when the
GetContentInfo cannot reach the origin even on a new connection (WMS protocol rollover)."""

from __future__ import annotations

import asyncio
import json
import time

from proxyd.wm.cache_control import parse_cache_control
from tests.proxyd.cache.helpers import wait_for_log
from tests.proxyd.wmext.harness import rtsp_exchange
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer
from tests.wmorigin.server import WMOrigin

DESCRIBE = [("Accept", "application/sdp")]


def kinds(origin, path: str) -> list[str]:
    return [r.kind for r in origin.requests if r.path == path]


async def known_wm_origin(origin, proxy) -> None:
    """The proxy learns the origin is a Windows Media server from a first answer (a plain DESCRIBE:
    nothing tells it before)."""
    origin.set_entry("/first.wmv", seed="first", duration_ms=600)
    assert (await rtsp_exchange(proxy.url("/wm/first.wmv"), "DESCRIBE", DESCRIBE)).status == 200
    assert kinds(origin, "/first.wmv")[0] == "DESCRIBE"


async def test_miss_asks_get_content_info_before_describe(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    await known_wm_origin(wm_origin, proxy)
    wm_origin.set_entry("/clip.wmv", seed="gci", duration_ms=800)
    result = await WMPlayer(proxy.url("/wm/clip.wmv"), transport="tcp", send_event=False).run()
    assert result.error is None, result.error
    assert kinds(wm_origin, "/clip.wmv")[:2] == ["GetContentInfo", "DESCRIBE"]
    assert wm_origin.counts("/clip.wmv")["DESCRIBE"] == 1


async def test_unreachable_origin_on_a_miss_is_404_after_rollover(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    await known_wm_origin(wm_origin, proxy)
    wm_origin.set_entry("/gone.wmv", seed="gone")
    wm_origin.take_down()
    answer = await rtsp_exchange(proxy.url("/wm/gone.wmv"), "DESCRIBE", DESCRIBE)
    assert answer.status == 404
    assert len(wait_for_log(proxy.log_path, r"GetContentInfo for \S+/gone\.wmv failed 2 times")) == 1


def wait_expired(cache_dir) -> None:
    for meta in (cache_dir / "entries").glob("*/meta.json"):
        remaining = json.loads(meta.read_text())["body"]["expires_at"] - time.time()
        if remaining > 0:
            time.sleep(remaining + 0.05)  # freshness is wall-clock time by definition


async def test_concurrent_stale_describes_share_one_revalidation_and_keep_the_new_cache_control(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="stale", duration_ms=800, max_age=1)
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir)
    url = proxy.url("/wm/clip.wmv")
    assert (await WMPlayer(url, transport="tcp", send_event=False).run()).error is None
    wait_for_log(proxy.log_path, r"cache: committed")
    wait_expired(cache_dir)
    # same content (same validators), a longer lifetime now
    wm_origin.set_cache_control("/clip.wmv", "max-age=3600, public, proxy-revalidate")
    before = wm_origin.counts("/clip.wmv")
    answers = await asyncio.gather(*(rtsp_exchange(url, "DESCRIBE", DESCRIBE) for _ in range(4)))
    assert [a.status for a in answers] == [200] * 4
    after = wm_origin.counts("/clip.wmv")
    assert after["GetContentInfo"] - before["GetContentInfo"] == 1
    assert after["DESCRIBE"] == before["DESCRIBE"]  # unchanged: served from the cache
    for answer in answers:
        assert 3500 < parse_cache_control(answer.header("Cache-Control")).max_age <= 3600
    stored = [json.loads(m.read_text())["body"] for m in (cache_dir / "entries").glob("*/meta.json")]
    assert [b["cache_control"] for b in stored] == ["max-age=3600, public, proxy-revalidate"]


async def test_get_content_info_redirects_remap_the_entry_or_go_through_the_named_proxy(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    with WMOrigin() as elsewhere:  # the new home of /moved.wmv, and the proxy a 305 names
        for path in ("/moved.wmv", "/via.wmv", "/far.wmv"):
            wm_origin.set_entry(path, seed=path, duration_ms=600, max_age=1)
            elsewhere.set_entry(path, seed=path, duration_ms=600, max_age=1)  # same content, same validators
        cache_dir = tmp_path / "cache"
        proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir,
                               allow_origins=[f"127.0.0.1:{elsewhere.port}"])
        for path in ("/moved.wmv", "/via.wmv", "/far.wmv"):
            assert (await WMPlayer(proxy.url("/wm" + path), send_event=False).run()).error is None
        wait_for_log(proxy.log_path, r"cache: committed", count=3)
        wm_origin.redirects.update({"/moved.wmv": (301, elsewhere.url("/moved.wmv")),
                                    "/via.wmv": (305, elsewhere.url("/")),
                                    "/far.wmv": (302, "rtsp://127.0.0.1:9/far.wmv")})  # no route names it
        describes = {path: wm_origin.count("DESCRIBE", path) for path in ("/moved.wmv", "/via.wmv", "/far.wmv")}
        infos = {path: wm_origin.count("GetContentInfo", path) for path in ("/moved.wmv", "/via.wmv")}  # misses'
        for round_ in (1, 2):
            wait_expired(cache_dir)
            answers = {path: await rtsp_exchange(proxy.url("/wm" + path), "DESCRIBE", DESCRIBE)
                       for path in ("/moved.wmv", "/via.wmv", "/far.wmv")}
            assert [a.status for a in answers.values()] == [200] * 3
            # a redirect to an origin no route names is not followed: an origin error, and with
            # proxy-revalidate the stale copy is not served; the relay asks the origin itself
            assert wm_origin.count("DESCRIBE", "/far.wmv") == describes["/far.wmv"] + round_
            # 301: followed once, then the entry revalidates at its new URL
            assert wm_origin.count("GetContentInfo", "/moved.wmv") == infos["/moved.wmv"] + 1
            assert elsewhere.count("GetContentInfo", "/moved.wmv") == round_
            # 305: through the named proxy, for the same URL, every time
            assert wm_origin.count("GetContentInfo", "/via.wmv") == infos["/via.wmv"] + round_
            via = [r for r in elsewhere.requests if r.kind == "GetContentInfo" and r.path == "/via.wmv"]
            assert [r.url for r in via] == [wm_origin.url("/via.wmv")] * round_
        assert [wm_origin.count("DESCRIBE", p) for p in ("/moved.wmv", "/via.wmv")] == \
            [describes["/moved.wmv"], describes["/via.wmv"]]
        assert elsewhere.counts()["DESCRIBE"] == 0
    assert wait_for_log(proxy.log_path, r"127\.0\.0\.1:9, an origin no route or --allow-origin names")
