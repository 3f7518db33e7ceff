"""Faults, cache disk: the cache directory on a filesystem too small for the clip (a 64 KiB tmpfs).

The fill cannot be stored: players still get the whole clip, nothing (not even a partial entry) is
committed, proxyd logs the failure without a traceback and keeps serving the next players.
Needs root (mount); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e.conftest import api, control_node, controlled_proxyd, wait_until  # noqa: F401 (fixtures)
from tests.peers.proxyd_proc import free_tcp_port
from tests.proxyd.cache.helpers import committed_urls, wait_for_log
from tests.proxyd.metrics import scrape as metrics

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
    metrics_port = free_tcp_port()
    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url()}, cache_dir=tiny_disk,
                           extra_args=["--cache-ttl", "300", "--log-level", "DEBUG",
                                       "--metrics-listen", f"127.0.0.1:{metrics_port}"])
    for transport in ("tcp", "udp", "tcp"):
        result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=transport)
        assert result.ok, result.describe()
        assert result.video_frames >= 0.95 * test_clips.main.video_frames, result.describe()
    wait_for_log(proxy.log_path, r"cache: (cannot store|fill of \S+ failed)")
    assert committed_urls(tiny_disk) == []
    leftovers = [p for p in (tiny_disk / "tmp").rglob("*") if p.is_file()] if (tiny_disk / "tmp").exists() else []
    assert leftovers == []  # a failed commit frees what it wrote: the next fill gets the whole disk
    assert "Traceback" not in proxy.log_path.read_text(errors="replace")
    samples = metrics.scrape(metrics_port)  # the operator's alert
    assert metrics.value(samples, "proxyd_cache_disk_full") == 1
    assert metrics.value(samples, "proxyd_cache_disk_full_total") == metrics.value(
        samples, "proxyd_cache_fills_total", outcome="started") >= 1


@pytest.mark.django_db(transaction=True)
def test_a_full_cache_disk_shows_on_the_dashboard(shared_gst_origin, controlled_proxyd, control_node, live_server,
                                                  peer_players, admin_client, tiny_disk):  # noqa: F811
    node, _ = control_node
    proxy = controlled_proxyd(live_server.url, routes={"/vod": shared_gst_origin.url()}, cache_dir=tiny_disk,
                              extra_args=["--cache-ttl", "300"])
    result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp")
    assert result.ok, result.describe()
    wait_until(lambda: type(node).objects.get(pk=node.pk).cache_disk_full, timeout=30,
               what="the node reporting its full cache disk")
    page = admin_client.get("/").content.decode()
    alert = page[page.index('id="disk-full-alert"'):page.index("</div>", page.index('id="disk-full-alert"'))]
    assert " hidden" not in alert.split(">")[0] and node.name in alert, alert
    assert 'badge-disk-full' in page
    state = admin_client.get("/dashboard/live-state/").json()
    assert [n["cache_disk_full"] for n in state["nodes"] if n["node"] == node.name] == [True]
