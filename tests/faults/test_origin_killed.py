"""Faults, proxyd side: the origin SIGKILLed in the middle of a stream that is being cached.

Players end cleanly (ffmpeg exits by itself, no hang, what it got is decodable), the half-filled
entry is never committed nor served, and proxyd logs no traceback and exits 0 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tests.proxyd.cache.helpers import committed_urls, wait_for_log

pytestmark = pytest.mark.peers


def test_origin_killed_mid_fill_ends_players_and_never_serves_the_fill(gst_origin_factory, test_clips,
                                                                       proxyd_process, peer_players, tmp_path):
    origin = gst_origin_factory(vod={"clip": test_clips.long.path})
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/vod": origin.url("/")}, cache_dir=cache_dir,
                           extra_args=["--cache-ttl", "300", "--log-level", "DEBUG"])
    results = []
    players = [threading.Thread(target=lambda t=t: results.append(
        peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=t, timeout=30))) for t in ("tcp", "udp")]
    for player in players:
        player.start()
    wait_for_log(proxy.log_path, r"cache: filling")
    origin.wait_for(lambda e: e["event"] == "request" and e["method"] == "PLAY", timeout=20)
    os.kill(origin.pid, signal.SIGKILL)
    for player in players:
        player.join(timeout=40)
    assert not any(p.is_alive() for p in players), "a player hung after the origin died"
    assert len(results) == 2
    for result in results:
        assert not result.timed_out, result.describe()
        # The players got the part of the 6 s clip sent before the kill, never the whole of it.
        assert result.video_frames < test_clips.long.video_frames, result.describe()
    assert committed_urls(cache_dir) == []
    # With the origin gone, a new player gets an error, not the partial fill.
    again = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp", timeout=20)
    assert again.video_frames == 0 and not again.ok, again.describe()
    assert "Traceback" not in proxy.log_path.read_text(errors="replace")
