"""The relay benchmark and its /proc helpers keep working (short real runs, no proxy needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.players_pool import transports_for
from bench.procstat import cpu_seconds, peak_rss_kib
from tests.peers.proxyd_proc import REPO_ROOT

pytestmark = pytest.mark.peers


def test_cpu_seconds_grows_with_work_and_rss_is_reported():
    before = cpu_seconds(os.getpid())
    busy = sum(i * i for i in range(3_000_000))
    assert busy > 0
    assert cpu_seconds(os.getpid()) > before
    assert peak_rss_kib(os.getpid()) > 1024


def test_mixed_transport_alternates():
    assert transports_for(4, "mixed") == ["udp", "tcp", "udp", "tcp"]
    assert transports_for(2, "tcp") == ["tcp", "tcp"]


def test_bench_direct_half_measures_a_real_origin(_gst_origin_available, peer_players, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.relay", "--clients", "2", "--seconds", "4", "--bitrate", "300",
         "--skip-proxyd", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.split()[:2] == ["2", "direct"])
    assert row.split()[2] == "2/2", done.stdout


def test_bench_reports_a_proxyd_that_cannot_start(_gst_origin_available, peer_players, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.relay", "--clients", "1", "--seconds", "1", "--bitrate", "300",
         "--workdir", str(tmp_path), "--proxyd-arg=--no-such-option-for-the-bench-test"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "proxyd did not start" in done.stderr
    assert any(line.split()[:3] == ["1", "direct", "1/1"] for line in done.stdout.splitlines()), done.stdout


def test_a_client_stream_second_counts_video_and_audio_of_one_client_once():
    from bench.relay import ModeResult
    from tests.peers.players import PlayResult

    def played(video: int, audio: int) -> PlayResult:
        return PlayResult("ffmpeg", "rtsp://x/", "udp", 0, video, audio, 1.0, 11.0, False, "")

    # 10 s of 25 fps video with its 48 kHz AAC audio (1024 samples a frame) is 10 client-seconds.
    row = ModeResult("proxyd", 2, results=[played(250, 469), played(0, 469)])
    assert row.client_stream_seconds(25) == pytest.approx(10 + 469 * 1024 / 48000)


def test_split_bench_measures_a_gstreamer_relay_as_reference(_gst_origin_available, peer_players, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.split", "--clients", "2", "--seconds", "4", "--bitrate", "300",
         "--modes", "proxyd", "--reference", "gst", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {tuple(line.split()[:2]): line.split() for line in done.stdout.splitlines()}
    for mode in ("proxyd", "gst-relay"):
        row = rows[("2", mode)]
        # K mode ok frames ttff cpu-s cpu-ms/css sys% rss origin-cpu% origin-sess clk-ms/css csw/s
        assert row[2] == "2/2" and row[10] == "1", done.stdout  # both ok, one origin session each
    assert "gst-relay" in done.stdout and "CPU s per client-stream-second" in done.stdout


def test_raw_players_play_from_their_start_positions_over_udp_and_tcp(gst_origin, test_clips):
    from bench.raw_players import run_raw_players

    seconds, fps = 2.0, test_clips.long.spec.fps
    results = run_raw_players(gst_origin.url("/long"), 2, seconds, "mixed", ramp_s=0,
                              start_at=lambda i: 3.0 * i)
    assert [r.transport for r in results] == ["udp", "tcp"]
    for r in results:
        assert r.ok, r.describe()
        # paced by the origin: about `seconds` of video each, audio too
        assert 0.7 * seconds * fps <= r.video_frames <= 1.3 * seconds * fps + 5, r.describe()
        assert r.audio_frames > 0, r.describe()


@pytest.mark.parametrize("player_class", ["TcpPlayer", "UdpPlayer"])
def test_raw_player_counts_rtp_of_every_stream_through_proxyd(player_class, shared_gst_origin, proxyd_process,
                                                               tmp_path):
    import bench.rtsp_player

    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url("/")}, cache_dir=tmp_path / "cache")
    with getattr(bench.rtsp_player, player_class)(proxy.url("/vod/clip"), timeout=20) as player:
        player.play()
        counts = player.count_rtp(2.0)
    assert len(counts) == 2  # video and audio of the test clip
    assert min(counts) >= 20, counts  # 2 s of 25 fps video and of AAC audio


def test_raw_player_reports_a_refused_describe(shared_gst_origin, proxyd_process, tmp_path):
    from bench.rtsp_player import UdpPlayer

    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url("/")}, cache_dir=tmp_path / "cache")
    with UdpPlayer(proxy.url("/vod/no-such-clip"), timeout=20) as player, pytest.raises(ConnectionError, match="404"):
        player.play()


def test_short_soak_plays_every_route_with_both_kinds_of_player(_gst_origin_available, peer_players):
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--players", "12", "--ffmpeg-players", "6", "--seconds", "20",
         "--play-seconds", "4", "--warmup", "4", "--sample-interval", "4", "--settle", "5"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    played = {line.split()[0] for line in done.stdout.splitlines() if " plays " in line and "/" in line.split()[0]}
    assert played == {f"{route}/{kind}/{transport}" for route in ("vod", "relay", "tv")
                      for kind in ("ffmpeg", "raw") for transport in ("tcp", "udp")}, done.stdout
    assert "all: plays" in done.stdout and ", failed 0" in done.stdout
