"""Splitting a Windows Media broadcast: the origin says x-wms-stream-type=broadcast and
x-wms-proxy-split, so proxyd splits it without any --live policy (MS-RTSP 4.6.2)."""

from __future__ import annotations

import asyncio

import pytest

from tests.wmorigin.fixtures import wm_origin  # noqa: F401 - fixture
from tests.wmorigin.player import WMPlayer

pytestmark = pytest.mark.peers


async def test_two_wm_players_share_one_origin_session(wm_origin, proxyd_process):  # noqa: F811
    wm_origin.set_entry("/live", seed="split", broadcast=True)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    first = asyncio.create_task(WMPlayer(url, stop_after_s=3.0, send_event=False).run())
    second = asyncio.create_task(WMPlayer(url, stop_after_s=1.5, transport="udp", send_event=False).run())
    results = await asyncio.gather(first, second)
    for result in results:
        assert result.error is None, result.error
        assert result.entries and any(s.packets > 0 for s in result.entries[0].streams.values())
        assert result.status("PAUSE") == [200] and result.status("TEARDOWN") == [200]
    assert wm_origin.count("PLAY", "/live") == 1
    assert "joins split" in proxy.log_path.read_text()


async def test_wm_broadcast_without_proxy_split_is_relayed_per_player(
        wm_origin, proxyd_process):  # noqa: F811
    wm_origin.set_entry("/live", seed="nosplit", broadcast=True,
                        cache_control='no-cache, x-wms-stream-type="broadcast"')
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    results = await asyncio.gather(*(WMPlayer(url, stop_after_s=1.0, send_event=False).run()
                                     for _ in range(2)))
    for result in results:
        assert result.error is None, result.error
    assert wm_origin.count("PLAY", "/live") == 2
    assert "joins split" not in proxy.log_path.read_text()
