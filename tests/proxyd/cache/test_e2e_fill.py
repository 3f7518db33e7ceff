"""The cache fill (the proxy's download session) through a real proxyd process in front of the WM test
origin: one download per URL whatever the number of concurrent misses, Speed only toward an origin
that listed com.microsoft.wm.fastcache ([MS-RTSP] 2.2.6.10.2, 3.1.5.9.1), and the download's SETUP
and PLAY sent upstream at the player's PLAY, its SETUPs answered by the proxy (Figure 21)."""

from __future__ import annotations

import asyncio

from tests.proxyd.cache.helpers import committed_urls, wait_for_log
from tests.proxyd.cache.test_e2e_playlist import RawPlayer
from tests.proxyd.wmext.harness import rtsp_exchange
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer
from tests.wmorigin.server import WMOrigin

WITHOUT_FASTCACHE = "com.microsoft.wm.sswitch, com.microsoft.wm.eosmsg"


def packets(result) -> list[int]:
    assert result.error is None, result.error
    return [s.packets for s in result.entries[0].streams.values()]


async def test_concurrent_misses_share_one_download(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="one-fill", duration_ms=1500)
    direct = await WMPlayer(wm_origin.url("/clip.wmv"), send_event=False).run()
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    before = wm_origin.counts("/clip.wmv")
    results = await asyncio.gather(*(WMPlayer(proxy.url("/wm/clip.wmv"), transport=t, send_event=False).run()
                                     for t in ("tcp", "udp", "tcp")))
    after = wm_origin.counts("/clip.wmv")
    assert after["PLAY"] - before["PLAY"] == 1  # one download; every player replays it as it grows
    assert all(packets(r) == packets(direct) for r in results)
    wait_for_log(proxy.log_path, r"cache: committed")
    assert committed_urls(tmp_path / "cache") == [wm_origin.url("/clip.wmv")]


async def test_the_download_sends_speed_only_to_an_origin_offering_fastcache(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="fast", duration_ms=800)
    with WMOrigin(supported=WITHOUT_FASTCACHE) as plain:
        plain.set_entry("/clip.wmv", seed="plain", duration_ms=800)
        proxy = proxyd_process(routes={"/fast": wm_origin.url("/"), "/plain": plain.url("/")},
                               cache_dir=tmp_path / "cache")
        for prefix in ("/fast", "/plain"):
            result = await WMPlayer(proxy.url(prefix + "/clip.wmv"), speed=5, send_event=False).run()
            assert result.error is None, result.error
        wait_for_log(proxy.log_path, r"cache: committed", count=2)
        (fast_play,) = [r for r in wm_origin.requests if r.method == "PLAY"]
        (plain_play,) = [r for r in plain.requests if r.method == "PLAY"]
    assert float(fast_play.header("Speed")) > 1
    assert plain_play.header("Speed") is None  # nor was fastcache offered to the player for it


async def test_setups_are_answered_locally_and_the_download_starts_at_the_players_play(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="at-play", duration_ms=800)
    wm_origin.set_entry("/looked.wmv", seed="looked", duration_ms=800)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache",
                           extra_args=["--session-timeout", "1", "--session-idle-margin", "0.5"])
    url = proxy.url("/wm/clip.wmv")
    async with RawPlayer(url) as player:
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        await player.setup_all(describe.body, describe.header("X-Playlist-Gen-Id"))
        assert wm_origin.count("SETUP", "/clip.wmv") == 0  # both SETUPs answered by the proxy
        play = await player.request("PLAY", url, [("Range", "npt=0-")])
        assert play.status == 200
        # the Play response came after the download's upstream SETUPs and PLAY were answered
        # (the download may already have ended: Speed makes it faster than real time, so look at its start)
        kinds = [r.kind for r in wm_origin.requests if r.path.startswith("/clip.wmv") and r.kind in ("SETUP", "PLAY")]
        first_play = kinds.index("PLAY")  # every stream's SETUP, then the PLAY
        assert first_play >= 2 and set(kinds[:first_play]) == {"SETUP"}, kinds
        async with asyncio.timeout(10):
            while player.rtp_packets == 0:  # the media comes through
                await player.next_item()
    # a DESCRIBE nobody plays starts no download; it is dropped after the Idle-Timeout
    looked = await rtsp_exchange(proxy.url("/wm/looked.wmv"), "DESCRIBE", [("Accept", "application/sdp")])
    assert looked.status == 200
    wait_for_log(proxy.log_path, r"looked\.wmv was described but never played")
    assert wm_origin.count("SETUP", "/looked.wmv") == wm_origin.count("PLAY", "/looked.wmv") == 0


async def test_the_download_selects_every_stream_whatever_the_player_selected(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="all-streams", duration_ms=800)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/clip.wmv")
    async with RawPlayer(url) as player:  # a player that wants the audio stream only
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        streams = describe.body.decode().count("m=")
        setup = await player.request("SETUP", f"{url}/audio", [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        assert setup.status == 200
        assert (await player.request("PLAY", url, [("Range", "npt=0-")])).status == 200
        assert wm_origin.count("SETUP", "/clip.wmv") == streams == 3  # audio, video and rtx
    wait_for_log(proxy.log_path, r"cache: committed")
    wm_origin.take_down()
    full = await WMPlayer(url, send_event=False).run()  # audio and video, from the cache
    assert full.error is None and all(s.packets for s in full.entries[0].streams.values()), full.error
