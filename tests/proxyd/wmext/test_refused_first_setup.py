"""A session whose first SETUP is refused (here 412, a stale X-Playlist-Gen-Id, [MS-RTSP] 3.2.5.1)
never existed for the player: it gets the precise status, one warning in proxyd's log, and its
connection stays usable (checklist 68: only proxyd's own 403 refusal closes it). The same for every
strategy: relay (the origin's 412 passed through), cache and split (answered by proxyd)."""

from __future__ import annotations

import asyncio

import pytest

from tests.proxyd.cache.helpers import wait_for_log
from tests.proxyd.cache.test_e2e_playlist import RawPlayer
from tests.wmorigin.player import WMPlayer

pytestmark = pytest.mark.peers


@pytest.mark.parametrize("strategy", ["relay", "cache", "split"])
async def test_a_refused_first_setup_is_answered_and_the_connection_stays_usable(
        strategy, wm_origin, proxyd_process, tmp_path):
    cached = strategy == "cache"
    entry = wm_origin.set_entry("/clip.wmv", seed=f"refused-{strategy}", broadcast=strategy == "split",
                                duration_ms=600 if cached else 20_000)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")},
                           cache_dir=tmp_path / "cache" if cached else None)
    url = proxy.url("/wm/clip.wmv")
    if cached:  # filled and committed: the next DESCRIBE and SETUPs are answered from it
        assert (await WMPlayer(url, send_event=False).run()).error is None
        wait_for_log(proxy.log_path, r"cache: committed .*clip\.wmv")
    gen = str(entry.items[0].gen_id)
    stale = str(entry.items[0].gen_id % 1000 + 1)

    async with RawPlayer(url) as player:
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        assert describe.status == 200 and describe.header("X-Playlist-Gen-Id") == gen
        refused = await player.request("SETUP", f"{url}/audio", [
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"), ("X-Playlist-Gen-Id", stale)])
        assert refused.status == 412
        if strategy != "relay":  # answered by proxyd with the current id (the test origin names none)
            assert refused.header("X-Playlist-Gen-Id") == gen
        assert player.session == ""  # no session was created
        # the same connection: the player corrects itself and plays
        await player.setup_all(describe.body, gen)
        assert (await player.request("PLAY", url, [("Range", "npt=0.000-")])).status == 200
        async with asyncio.timeout(10):
            while player.rtp_packets == 0:
                await player.next_item()
        assert (await player.request("TEARDOWN", url)).status == 200

    log = proxy.log_path.read_text()
    assert log.count("SETUP -> 412") == 1, log
    assert "origin session lost" not in log
