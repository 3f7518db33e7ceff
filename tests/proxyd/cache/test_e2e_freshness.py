"""Cacheability, revalidation, crash safety, quota and seek with real peers."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.proxyd.cache.helpers import committed_urls, store_bytes, wait_for_log

pytestmark = pytest.mark.peers

COMMITTED = r"cache: committed rtsp://\S+/{} "


def proxy_for(proxyd_process, origin, cache_dir, *extra, **kwargs):
    return proxyd_process(routes={"/vod": origin.url("/")}, cache_dir=cache_dir,
                          extra_args=["--log-level", "DEBUG", *extra], **kwargs)


@pytest.mark.parametrize("cache_control", ["no-cache", "private", "public, no-store"])
def test_forbidden_content_is_never_stored(gst_origin_factory, test_clips, proxyd_process, peer_players,
                                           tmp_path, cache_control):
    origin = gst_origin_factory(vod={"clip": test_clips.main.path},
                                headers={"Cache-Control": cache_control})
    proxy = proxy_for(proxyd_process, origin, tmp_path / "cache", "--cache-ttl", "300")
    result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp")
    assert result.ok, result.describe()
    reason = cache_control.split(",")[-1].strip()
    wait_for_log(proxy.log_path, rf"not cached \({reason}\)")
    assert committed_urls(tmp_path / "cache") == []
    assert origin.session_count("/clip") == 1  # relayed, not filled


def test_live_is_never_cached(gst_origin, proxyd_process, peer_players, tmp_path):
    proxy = proxy_for(proxyd_process, gst_origin, tmp_path / "cache", "--cache-ttl", "300")
    result = peer_players.ffmpeg_play(proxy.url("/vod/live"), transport="tcp", duration=2.0)
    assert result.ok, result.describe()
    assert committed_urls(tmp_path / "cache") == []
    assert "cache: filling" not in proxy.log_path.read_text()


def _wait_expired(cache_dir) -> None:
    for meta in (cache_dir / "entries").glob("*/meta.json"):
        remaining = json.loads(meta.read_text())["body"]["expires_at"] - time.time()
        if remaining > 0:
            time.sleep(remaining + 0.05)  # freshness is wall-clock time by definition


def test_changed_origin_content_detected_on_revalidation(gst_origin, test_clips, proxyd_process, peer_players,
                                                         tmp_path):
    cache_dir = tmp_path / "cache"
    proxy = proxy_for(proxyd_process, gst_origin, cache_dir, "--cache-ttl", "1")
    url = proxy.url("/vod/clip")
    first = peer_players.ffmpeg_play(url, transport="tcp")
    assert first.ok, first.describe()
    wait_for_log(proxy.log_path, COMMITTED.format("clip"))
    changed_direct = peer_players.ffmpeg_play(gst_origin.url("/changed"), transport="tcp", duration=1.0)
    assert changed_direct.first_video_crcs[:3] != first.first_video_crcs[:3]

    _wait_expired(cache_dir)
    same = peer_players.ffmpeg_play(url, transport="tcp")  # stale, unchanged: revalidated
    assert same.ok and same.first_video_crcs[:3] == first.first_video_crcs[:3], same.describe()
    wait_for_log(proxy.log_path, r"cache: revalidated \S+/clip \(unchanged\)")
    assert gst_origin.session_count("/clip") == 1

    gst_origin.set_vod_content("clip", test_clips.changed.path)
    _wait_expired(cache_dir)
    new = peer_players.ffmpeg_play(url, transport="tcp")
    assert new.ok, new.describe()
    wait_for_log(proxy.log_path, r"/clip changed or no longer cacheable")
    assert new.first_video_crcs[:3] == changed_direct.first_video_crcs[:3]
    wait_for_log(proxy.log_path, COMMITTED.format("clip"), count=2)


def test_kill_during_fill_leaves_nothing_servable(gst_origin, proxyd_process, peer_players, tmp_path):
    cache_dir = tmp_path / "cache"
    proxy = proxy_for(proxyd_process, gst_origin, cache_dir, "--cache-ttl", "300", expect_clean_exit=False)
    player = threading.Thread(target=peer_players.ffmpeg_play, args=(proxy.url("/vod/clip"),),
                              kwargs={"transport": "tcp", "timeout": 15})
    player.start()
    wait_for_log(proxy.log_path, r"cache: filling")
    proxy.proc.kill()
    proxy.proc.wait(timeout=10)
    player.join(timeout=20)
    gst_origin.stop()

    again = proxy_for(proxyd_process, gst_origin, cache_dir, "--cache-ttl", "300")
    assert committed_urls(cache_dir) == []
    assert list((cache_dir / "tmp").iterdir()) == []
    result = peer_players.ffmpeg_play(again.url("/vod/clip"), transport="tcp", timeout=10)
    assert result.video_frames == 0 and not result.ok


def test_quota_eviction_keeps_store_under_limit(gst_origin_factory, test_clips, proxyd_process, peer_players,
                                                tmp_path):
    mounts = ("one", "two", "three")
    origin = gst_origin_factory(vod={m: test_clips.main.path for m in mounts})
    cache_dir = tmp_path / "cache"
    limit = 66_000 * test_clips.main.duration_s  # an entry is ~31 kB per clip second: two fit, three do not
    proxy = proxy_for(proxyd_process, origin, cache_dir, "--cache-ttl", "300", "--cache-max-bytes", str(limit))
    for mount in mounts:
        assert peer_players.ffmpeg_play(proxy.url(f"/vod/{mount}"), transport="tcp", decode=False).ok
        wait_for_log(proxy.log_path, COMMITTED.format(mount))
        assert store_bytes(cache_dir) <= limit
    wait_for_log(proxy.log_path, r"cache: evicting \S+/one ")
    assert sorted(committed_urls(cache_dir)) == sorted(origin.url(f"/{m}") for m in mounts[1:])


def test_seek_into_cached_clip(gst_origin_factory, test_clips, proxyd_process, peer_players, tmp_path):
    origin = gst_origin_factory(vod={"clip": test_clips.long.path})
    proxy = proxy_for(proxyd_process, origin, tmp_path / "cache", "--cache-ttl", "300")
    url = proxy.url("/vod/clip")
    assert peer_players.ffmpeg_play(url, transport="tcp", decode=False).ok
    wait_for_log(proxy.log_path, COMMITTED.format("clip"))
    origin.stop()
    spec = test_clips.long.spec
    seeked = peer_players.ffmpeg_play(url, transport="udp", extra_input_args=["-ss", "3"])
    assert seeked.ok, seeked.describe()
    # From the key frame at 3 s (GOP = 1 s): about half the clip, never the whole of it.
    assert 0.4 * spec.video_frames <= seeked.video_frames <= 0.6 * spec.video_frames, seeked.describe()
    wait_for_log(proxy.log_path, r"PLAY -> 200")


@pytest.mark.parametrize("stale_if_error", [0, 60])
def test_origin_down_when_stale(gst_origin, proxyd_process, peer_players, tmp_path, stale_if_error):
    cache_dir = tmp_path / "cache"
    proxy = proxy_for(proxyd_process, gst_origin, cache_dir, "--cache-ttl", "1",
                      "--stale-if-error", str(stale_if_error))
    url = proxy.url("/vod/clip")
    assert peer_players.ffmpeg_play(url, transport="tcp", decode=False).ok
    wait_for_log(proxy.log_path, COMMITTED.format("clip"))
    gst_origin.stop()
    _wait_expired(cache_dir)
    result = peer_players.ffmpeg_play(url, transport="tcp", decode=False, timeout=15)
    if stale_if_error:
        assert result.ok, result.describe()
        wait_for_log(proxy.log_path, r"serving stale")
    else:
        assert not result.ok and result.video_frames == 0
        wait_for_log(proxy.log_path, r"DESCRIBE -> 50[24]")
