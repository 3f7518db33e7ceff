"""Caching with real peers: GStreamer origin, ffmpeg players, proxyd as a subprocess."""

from __future__ import annotations

import pytest

from tests.proxyd.cache.helpers import committed_urls, wait_for_log

pytestmark = pytest.mark.peers

COMMITTED = r"cache: committed rtsp://\S+/clip "


def start_proxy(proxyd_process, origin, tmp_path, *extra: str):
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/vod": origin.url("/")}, cache_dir=cache_dir,
                           extra_args=["--log-level", "DEBUG", *extra])
    return proxy, cache_dir


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_second_play_served_from_cache_with_origin_stopped(gst_origin, proxyd_process, peer_players,
                                                           test_clips, tmp_path, transport):
    proxy, cache_dir = start_proxy(proxyd_process, gst_origin, tmp_path, "--cache-ttl", "300")
    url = proxy.url("/vod/clip")
    first = peer_players.ffmpeg_play(url, transport=transport)
    assert first.ok, first.describe()
    wait_for_log(proxy.log_path, COMMITTED)
    assert committed_urls(cache_dir) == [gst_origin.url("/clip")]
    gst_origin.stop()

    probe = peer_players.ffprobe(url)
    second = peer_players.ffmpeg_play(url, transport=transport)
    assert second.ok, second.describe()
    expected = test_clips.main.spec
    assert second.video_frames >= 0.95 * expected.video_frames, second.describe()
    assert second.audio_frames >= 0.95 * expected.audio_frames, second.describe()
    assert second.first_video_crcs[:3] == first.first_video_crcs[:3]
    assert {s.codec_name for s in probe.streams} == {"h264", "aac"}
    # The origin's SDP says npt=now-6, so ffprobe shows no duration: measure what was played.
    assert abs(second.video_frames / expected.fps - expected.duration_s) <= 0.5, second.describe()


def test_one_origin_session_for_concurrent_players(gst_origin, proxyd_process, peer_players, tmp_path):
    import concurrent.futures

    proxy, cache_dir = start_proxy(proxyd_process, gst_origin, tmp_path, "--cache-ttl", "300")
    url = proxy.url("/vod/clip")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: peer_players.ffmpeg_play(url, transport="tcp", decode=False),
                                range(6)))
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    wait_for_log(proxy.log_path, COMMITTED)
    assert gst_origin.session_count("/clip") == 1
