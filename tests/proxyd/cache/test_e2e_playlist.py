"""A server-side playlist through the cache ([MS-RTSP] 3.2.4.1-2, 4.4.5, 3.2.5.1 step 3), through a real
proxyd process: every entry is filled, committed with the presentation and served in order, the
same on the first play (the player follows the fill) and on later plays (origin stopped)."""

from __future__ import annotations

import dataclasses

from proxyd.wm.cache_control import parse_cache_control
from tests.proxyd.cache.helpers import committed_urls, wait_for_log
from tests.proxyd.wmext.harness import rtsp_exchange
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer


def packets(result) -> list[int]:
    return [sum(s.packets for s in entry.streams.values()) for entry in result.entries]


def assert_played_like_the_origin(result, direct, playlist, url: str) -> None:
    assert result.error is None, result.error
    assert packets(result) == packets(direct)
    first, second = result.entries
    assert b"End-Of-Playlist-Entry: true" in first.eos.body  # more entries follow
    assert b"end-of-playlist-entry" not in second.eos.body.lower()  # the last one
    assert first.eos.header("X-Playlist-Gen-Id") == str(playlist.items[0].gen_id)
    assert second.eos.header("X-Playlist-Gen-Id") == str(playlist.items[1].gen_id)
    (announce,) = result.announces
    assert int(announce.header("X-Playlist-Gen-Id")) == playlist.items[1].gen_id
    # the entry's own Cache-Control, max-age less the entry's age when served from cache
    served = parse_cache_control(announce.header("Cache-Control"))
    origin = parse_cache_control(direct.announces[0].header("Cache-Control"))
    assert dataclasses.replace(served, max_age=None) == dataclasses.replace(origin, max_age=None)
    assert origin.max_age - 60 < served.max_age <= origin.max_age
    def sdp_lines(body: bytes) -> list[str]:  # all but the control URLs, which point at the proxy
        return [line for line in body.decode().splitlines() if not line.startswith("a=control:")]

    assert sdp_lines(announce.body) == sdp_lines(direct.announces[0].body)  # the next entry's own SDP
    assert sdp_lines(announce.body) != sdp_lines(result.describe.body)
    assert announce.uri.startswith(url) and second.sdp.control.startswith(url)
    assert [s.asf_packets for s in second.streams.values()] == \
        [s.asf_packets for s in direct.entries[1].streams.values()]
    # the final EndOfStream leaves the session READY: the player's TEARDOWN still finds it
    assert result.status("TEARDOWN")[-1] == 200


async def test_two_entry_playlist_is_cached_whole(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    playlist = wm_origin.set_entry("/pl.wsx", seed="one", playlist=("two",))
    direct = await WMPlayer(wm_origin.url("/pl.wsx"), transport="tcp", send_event=False).run()
    assert direct.error is None and len(direct.entries) == 2, direct.error

    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/pl.wsx")
    first = await WMPlayer(url, transport="tcp", send_event=False).run()
    assert_played_like_the_origin(first, direct, playlist, url)
    wait_for_log(proxy.log_path, r"cache: committed .*pl\.wsx .*2 entries")
    assert committed_urls(tmp_path / "cache") == [wm_origin.url("/pl.wsx")]
    plays = wm_origin.counts("/pl.wsx")["PLAY"]

    wm_origin.take_down()
    for transport in ("tcp", "udp"):
        again = await WMPlayer(url, transport=transport, send_event=False).run()
        assert_played_like_the_origin(again, direct, playlist, url)
    assert wm_origin.counts("/pl.wsx")["PLAY"] == plays


async def test_stale_generation_is_412_from_the_cached_playlist(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    playlist = wm_origin.set_entry("/pl.wsx", seed="gen", playlist=("gen2",), duration_ms=800)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/pl.wsx")
    assert (await WMPlayer(url, transport="tcp", send_event=False).run()).error is None
    wait_for_log(proxy.log_path, r"cache: committed .*2 entries")
    wm_origin.take_down()
    stale = await rtsp_exchange(url, "DESCRIBE", [("X-Playlist-Gen-Id", "7")])
    fresh = await rtsp_exchange(url, "DESCRIBE", [("X-Playlist-Gen-Id", str(playlist.items[0].gen_id))])
    assert (stale.status, fresh.status) == (412, 200)
    assert stale.header("X-Playlist-Gen-Id") == str(playlist.items[0].gen_id)
