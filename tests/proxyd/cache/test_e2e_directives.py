"""The origin's Cache-Control directives ([MS-RTSP] 2.2.6.2) and revalidation outcomes through a real
proxyd process with --cache-dir in front of the WM test origin, played by the WMPlayer-style client:
no max-age (stale at once), no-cache, private, no-store, no-user-cache, must-revalidate vs
proxy-revalidate when the origin is down, and a GetContentInfo answering 404."""

from __future__ import annotations

import asyncio

from proxyd.wm.cache_control import parse_cache_control
from tests.proxyd.cache.helpers import committed_urls, wait_for_log
from tests.proxyd.cache.test_e2e_content_info import DESCRIBE, kinds, wait_expired
from tests.proxyd.wmext.harness import rtsp_exchange
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer


async def play(url: str, **options):
    result = await WMPlayer(url, transport="tcp", send_event=False, **options).run()
    assert result.error is None, result.error
    assert any(s.packets for s in result.entries[0].streams.values())
    return result


def files_under(path) -> set:
    return {p for p in path.rglob("*") if p.is_file()}


async def test_no_max_age_is_revalidated_on_every_request(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="nomaxage", duration_ms=600, cache_control="public")
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/clip.wmv")
    await play(url)
    wait_for_log(proxy.log_path, r"cache: committed")
    for _ in range(2):
        assert (await rtsp_exchange(url, "DESCRIBE", DESCRIBE)).status == 200
    assert kinds(wm_origin, "/clip.wmv").count("GetContentInfo") == 2  # one per request
    assert wm_origin.count("DESCRIBE", "/clip.wmv") == 1  # unchanged: answered from the cache


async def test_get_content_info_404_deletes_the_copy_and_the_player_gets_404(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/gone.wmv", seed="gone", duration_ms=600, max_age=1)
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir)
    url = proxy.url("/wm/gone.wmv")
    await play(url)
    wait_for_log(proxy.log_path, r"cache: committed")
    wait_expired(cache_dir)
    del wm_origin.entries["/gone.wmv"]  # the origin answers 404 from now on
    answer = await rtsp_exchange(url, "DESCRIBE", DESCRIBE)
    assert answer.status == 404
    assert kinds(wm_origin, "/gone.wmv")[-1] == "GetContentInfo"  # no DESCRIBE after the 404
    assert committed_urls(cache_dir) == []


async def test_origin_down_stale_copy_served_for_must_revalidate_never_for_proxy_revalidate(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/strict.wmv", seed="strict", duration_ms=600, max_age=1)  # proxy-revalidate
    wm_origin.set_entry("/lenient.wmv", seed="lenient", duration_ms=600,
                        cache_control="max-age=1, public, must-revalidate")
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir,
                           extra_args=["--stale-if-error", "3600"])
    for path in ("/strict.wmv", "/lenient.wmv"):
        await play(proxy.url("/wm" + path))
    wait_for_log(proxy.log_path, r"cache: committed", count=2)
    wait_expired(cache_dir)
    wm_origin.take_down()
    strict = await rtsp_exchange(proxy.url("/wm/strict.wmv"), "DESCRIBE", DESCRIBE)
    assert strict.status >= 500  # proxy-revalidate: never the stale copy unrevalidated
    # must-revalidate alone is ignored by a proxy: max-age made it stale, the operator's
    # stale-if-error lets the copy be served while the origin is unreachable
    stale = await play(proxy.url("/wm/lenient.wmv"))
    assert parse_cache_control(stale.describe.header("Cache-Control")).must_revalidate
    assert len(wait_for_log(proxy.log_path, r"serving stale \S+/lenient\.wmv")) == 1


async def test_no_cache_relays_each_player_on_its_own_origin_session(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/nc.wmv", seed="nc", duration_ms=1000, cache_control="no-cache")
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    results = await asyncio.gather(*(play(proxy.url("/wm/nc.wmv")) for _ in range(2)))
    assert [r.describe.header("Cache-Control") for r in results] == ["no-cache", "no-cache"]  # unchanged
    assert wm_origin.count("PLAY", "/nc.wmv") == 2 and wm_origin.count("DESCRIBE", "/nc.wmv") == 2
    assert committed_urls(tmp_path / "cache") == []


async def test_private_is_neither_stored_nor_shared_even_when_live(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/own.wmv", seed="own", duration_ms=800, cache_control="max-age=600, public, private")
    wm_origin.set_entry("/live", seed="priv-live", broadcast=True,
                        cache_control='private, x-wms-proxy-split, x-wms-stream-type="broadcast"')
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    await asyncio.gather(*(play(proxy.url("/wm/own.wmv")) for _ in range(2)))
    await asyncio.gather(*(play(proxy.url("/wm/live"), stop_after_s=1.0) for _ in range(2)))
    assert wm_origin.count("PLAY", "/own.wmv") == 2 and wm_origin.count("PLAY", "/live") == 2
    assert committed_urls(tmp_path / "cache") == []
    assert "joins split" not in proxy.log_path.read_text()


async def test_no_store_writes_nothing_to_disk(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/ns.wmv", seed="ns", duration_ms=800, cache_control="max-age=600, public, no-store")
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir)
    before = files_under(cache_dir)
    await play(proxy.url("/wm/ns.wmv"))
    await play(proxy.url("/wm/ns.wmv"))
    assert files_under(cache_dir) == before
    assert wm_origin.count("PLAY", "/ns.wmv") == 2


async def test_no_user_cache_is_cached_and_passed_on_to_players(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/nuc.wmv", seed="nuc", duration_ms=800, cache_control="max-age=600, public, no-user-cache")
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/nuc.wmv")
    first = await play(url)
    wait_for_log(proxy.log_path, r"cache: committed")
    wm_origin.take_down()
    second = await play(url)  # from the cache
    for result in (first, second):
        assert parse_cache_control(result.describe.header("Cache-Control")).no_user_cache
    assert wm_origin.count("PLAY", "/nuc.wmv") == 1
