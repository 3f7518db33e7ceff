"""Caching a Windows Media origin (tests/wmorigin): public content with max-age is filled once and
served from the cache with EndOfStream; changed content is found by GetContentInfo revalidation."""

from __future__ import annotations

import pytest

from tests.proxyd.cache.helpers import committed_urls, wait_for_log
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer


async def test_wm_content_served_from_cache(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="cache", duration_ms=1500)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/clip.wmv")
    first = await WMPlayer(url, transport="tcp").run()
    assert first.error is None, first.error
    wait_for_log(proxy.log_path, r"cache: committed")
    assert committed_urls(tmp_path / "cache") == [wm_origin.url("/clip.wmv")]
    second = await WMPlayer(url, transport="tcp").run()
    assert second.error is None, second.error
    assert wm_origin.counts("/clip.wmv")["PLAY"] == 1
    streams = second.entries[0].streams
    assert all(s.packets > 0 for s in streams.values())
    assert second.entries[0].eos is not None
    assert [s.packets for s in streams.values()] == [s.packets for s in first.entries[0].streams.values()]


async def test_wm_no_cache_is_not_stored(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="nc", duration_ms=1000, cache_control="no-cache")
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache",
                           extra_args=["--log-level", "DEBUG"])
    result = await WMPlayer(proxy.url("/wm/clip.wmv"), transport="tcp").run()
    assert result.error is None, result.error
    wait_for_log(proxy.log_path, r"not cached \(no-cache\)")
    assert committed_urls(tmp_path / "cache") == []
