"""The real-peer harness works against the GStreamer origin directly (no proxy in between)."""

from __future__ import annotations

import socket
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.peers.media import make_clip
from tests.peers.origin import LiveOptions
from tests.peers.proxyd_proc import ProxydError, ProxydProcess

pytestmark = pytest.mark.peers

# Loopback UDP can in principle drop a datagram; anything beyond this is a harness bug.
MIN_RECEIVED_SHARE = 0.95


def assert_close_to(actual: int, expected: int, what: str) -> None:
    assert expected * MIN_RECEIVED_SHARE <= actual <= expected, f"{what}: got {actual}, expected ~{expected}"


def rtsp_exchange(host: str, port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send one request, return the response head (up to the blank line)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def test_clips_are_deterministic_and_variants_differ(tmp_path, test_clips):
    again = make_clip(test_clips.main.spec, tmp_path / "a")
    assert again.path.read_bytes() == test_clips.main.path.read_bytes()
    assert test_clips.changed.path.read_bytes() != test_clips.main.path.read_bytes()
    assert test_clips.changed.video_frames == test_clips.main.video_frames


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_ffmpeg_receives_whole_clip(gst_origin, test_clips, peer_players, transport):
    result = peer_players.ffmpeg_play(gst_origin.url("/clip"), transport=transport, timeout=30)
    assert result.ok, result.describe()
    assert_close_to(result.video_frames, test_clips.main.video_frames, "video frames")
    # The decoder drops AAC priming, so a frame or two fewer than in the file is expected.
    assert_close_to(result.audio_frames, test_clips.main.audio_frames, "audio frames")
    assert result.first_frame_s is not None and result.first_frame_s < result.wall_s
    assert gst_origin.session_count("/clip") == 1


def test_ffprobe_reports_codecs_and_shape(shared_gst_origin, test_clips, peer_players):
    probe = peer_players.ffprobe(shared_gst_origin.url("/clip"))
    spec = test_clips.main.spec
    video, audio = probe.first("video"), probe.first("audio")
    assert (video.codec_name, video.width, video.height) == ("h264", spec.width, spec.height)
    assert (audio.codec_name, audio.sample_rate, audio.channels) == \
        ("aac", spec.audio_rate, spec.audio_channels)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_gst_launch_plays_clip(shared_gst_origin, test_clips, peer_players, transport):
    result = peer_players.gst_play(shared_gst_origin.url("/clip"), transport=transport, timeout=30)
    assert result.ok, result.describe()
    assert_close_to(result.video_frames, test_clips.main.video_frames, "video frames")
    assert result.audio_frames > 0, result.describe()


def test_live_mount_serves_two_players_at_once(gst_origin, peer_players):
    seconds = 3.0
    url = gst_origin.url("/live")
    with ThreadPoolExecutor(2) as pool:
        ffmpeg = pool.submit(peer_players.ffmpeg_play, url, transport="udp", duration=seconds, timeout=20)
        gst = pool.submit(peer_players.gst_play, url, transport="tcp", duration=seconds, timeout=20)
        results = [ffmpeg.result(), gst.result()]
    fps = LiveOptions().fps
    for result in results:
        assert result.ok, result.describe()
        # Late join waits for a key frame (GOP = 1 s), so allow most of a second of start-up.
        assert result.video_frames >= fps * (seconds - 1.5), result.describe()
        assert result.audio_frames > 0, result.describe()
    gst_origin.wait_until(lambda events: sum(e["event"] == "session-closed" for e in events) >= 2, timeout=10)
    assert gst_origin.session_count("/live") == 2
    assert {e.get("user_agent", "")[:4] for e in gst_origin.requests("PLAY")} >= {"Lavf", "GStr"}


def test_changed_mount_has_same_shape_different_content(shared_gst_origin, peer_players):
    probe = peer_players.ffprobe(shared_gst_origin.url("/changed"))
    assert probe.first("video").codec_name == "h264"
    assert probe.first("audio").codec_name == "aac"


def test_swapping_vod_content_changes_what_new_sessions_play(gst_origin, test_clips, peer_players):
    def first_frames(path):
        result = peer_players.ffmpeg_play(gst_origin.url(path), transport="tcp", duration=0.5, timeout=20)
        assert result.ok and len(result.first_video_crcs) == 5, result.describe()
        return result.first_video_crcs

    original, changed = first_frames("/clip"), first_frames("/changed")
    assert original != changed
    gst_origin.set_vod_content("clip", test_clips.changed.path)
    assert first_frames("/clip") == changed
    assert gst_origin.session_count("/clip") == 2


def test_origin_extra_headers_and_restart_keep_port(gst_origin_factory, test_clips):
    origin = gst_origin_factory(vod={"clip": test_clips.main.path}, headers={"Cache-Control": "max-age=30"})
    port = origin.port
    request = f"OPTIONS {origin.url('/clip')} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()
    head = rtsp_exchange("127.0.0.1", port, request)
    assert head.startswith(b"RTSP/1.0 200"), head
    assert b"\r\nCache-Control: max-age=30" in head
    mark = origin.mark()
    origin.restart()
    assert origin.port == port
    assert origin.wait_for(lambda e: e["event"] == "ready", after=mark)["port"] == port
    assert rtsp_exchange("127.0.0.1", port, request).startswith(b"RTSP/1.0 200")
    assert [e["event"] for e in origin.events[mark:]].count("exited") == 1


def test_tcp_only_origin_refuses_udp_player(gst_origin_factory, test_clips, peer_players):
    origin = gst_origin_factory(vod={"clip": test_clips.main.path}, protocols="tcp")
    refused = peer_players.ffmpeg_play(origin.url("/clip"), transport="udp", timeout=20)
    assert not refused.ok and refused.video_frames == 0, refused.describe()
    accepted = peer_players.ffmpeg_play(origin.url("/clip"), transport="tcp", duration=1, timeout=20)
    assert accepted.ok, accepted.describe()


# --- the proxyd process wrapper, exercised with stand-in daemons (proxyd itself is tested elsewhere) ---

STANDIN = textwrap.dedent("""
    import signal, socket, sys, time
    args = sys.argv[1:]
    assert args[:2] == ["-m", "proxyd"], args
    if "--fail" in args:
        print("stand-in: refusing to start", flush=True)
        sys.exit(3)
    host, port = args[args.index("--listen") + 1].rsplit(":", 1)
    print("routes", [args[i + 1] for i, a in enumerate(args) if a == "--route"], flush=True)
    if "--ignore-term" in args:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen()
    if "--slow-start" in args:  # listening, but still starting other listeners (proxyd's metrics)
        time.sleep(1.0)
    print(f"proxyd ready rtsp://{host}:{port}/", flush=True)
    while True:
        s.accept()[0].close()
""")


@pytest.fixture
def standin_python(tmp_path):
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    launcher = tmp_path / "python"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    launcher.chmod(0o755)
    return str(launcher)


def test_proxyd_wrapper_waits_for_listener_and_stops_cleanly(standin_python, tmp_path):
    proc = ProxydProcess(routes={"/vod": "rtsp://127.0.0.1:1/"}, log_path=tmp_path / "p.log",
                         python=standin_python)
    with proc:
        socket.create_connection(("127.0.0.1", proc.port), timeout=2).close()
    assert proc.returncode == 0 and not proc.killed
    assert "routes ['/vod=rtsp://127.0.0.1:1/']" in (tmp_path / "p.log").read_text()


def test_proxyd_wrapper_waits_for_the_ready_line_not_only_the_rtsp_port(standin_python, tmp_path):
    proc = ProxydProcess(routes={}, log_path=tmp_path / "p.log", python=standin_python,
                         extra_args=["--slow-start"])
    with proc:
        assert "proxyd ready rtsp://" in (tmp_path / "p.log").read_text()


def test_proxyd_wrapper_reports_early_exit_with_log(standin_python, tmp_path):
    proc = ProxydProcess(routes={}, log_path=tmp_path / "p.log", python=standin_python, extra_args=["--fail"])
    with pytest.raises(ProxydError, match="exited with 3(.|\n)*refusing to start"):
        proc.start()


def test_proxyd_wrapper_kills_a_daemon_ignoring_sigterm(standin_python, tmp_path):
    proc = ProxydProcess(routes={}, log_path=tmp_path / "p.log", python=standin_python,
                         extra_args=["--ignore-term"])
    proc.start()
    assert proc.stop(timeout=1.0) == -9 and proc.killed


def test_proxyd_process_fixture_runs_the_real_daemon(gst_origin, proxyd_process, peer_players, tmp_path):
    """The fixture's contract with proxyd's CLI: it starts, relays, and exits cleanly on SIGTERM."""
    proxy = proxyd_process(routes={"/vod": gst_origin.url("/")}, cache_dir=tmp_path / "cache")
    result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp", duration=1, timeout=20)
    assert result.ok, result.describe() + "\n--- proxyd log ---\n" + proxy.log_path.read_text()[-2000:]
    assert gst_origin.session_count("/clip") == 1
