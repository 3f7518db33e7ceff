"""Faults, cache disk: the cache directory on a filesystem too small for the clip (a 64 KiB tmpfs).

The fill cannot be stored: players still get the whole clip, nothing (not even a partial entry) is
committed, proxyd logs the failure without a traceback and keeps serving the next players.
Needs root (mount); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.proxyd.cache.helpers import committed_urls, wait_for_log

pytestmark = pytest.mark.peers

DISK_BYTES = 64 * 1024  # the 3 s test clip's entry is ~93 kB


@pytest.fixture
def tiny_disk(tmp_path):
    mount_point = tmp_path / "cache"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_full_cache_disk_stops_the_fill_and_serving_goes_on(shared_gst_origin, test_clips, proxyd_process,
                                                              peer_players, tiny_disk):
    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url()}, cache_dir=tiny_disk,
                           extra_args=["--cache-ttl", "300", "--log-level", "DEBUG"])
    for transport in ("tcp", "udp", "tcp"):
        result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=transport)
        assert result.ok, result.describe()
        assert result.video_frames >= 0.95 * test_clips.main.video_frames, result.describe()
    wait_for_log(proxy.log_path, r"cache: (cannot store|fill of \S+ failed)")
    assert committed_urls(tiny_disk) == []
    leftovers = [p for p in (tiny_disk / "tmp").rglob("*") if p.is_file()] if (tiny_disk / "tmp").exists() else []
    assert leftovers == []  # a failed commit frees what it wrote: the next fill gets the whole disk
    assert "Traceback" not in proxy.log_path.read_text(errors="replace")
