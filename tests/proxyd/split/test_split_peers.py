"""Live splitting with real peers: a GStreamer live origin, proxyd with --live, ffmpeg players."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.peers.players import ffmpeg_play
from tests.proxyd.split.players import DECODE_ERRORS, ffmpeg_popen, play_many

pytestmark = pytest.mark.peers

FPS = 25
# Players that count frames set up the video stream only. With two streams, ffmpeg's RTSP client
# moves a stream's timestamps when the first RTCP sender report arrives (to sync it with the other
# stream), so neither `-t` (from the earliest stream's first timestamp) nor a span of video time
# held a fixed number of frames (139 of 150, 69 of 150 seen on a loaded machine). With one stream
# they are the RTP timestamps: a span of video time holds a fixed number unless frames were lost.
VIDEO_ONLY = ("-allowed_media_types", "video")


def assert_span_played(r, frames: float) -> None:
    """A play stopped (SIGINT) at the end of its video span got at least `frames` video frames."""
    assert r.span_complete and r.returncode in (0, 255) and not r.timed_out, r.describe()
    assert r.video_frames >= frames, r.describe()


def wait_log(proxy, text: str, timeout: float = 10.0, count: int = 1) -> None:
    """Wait (polling the log file, bounded) until proxyd logged `text` `count` times."""
    deadline = time.monotonic() + timeout
    while proxy.log_path.read_text().count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"proxyd did not log {text!r} within {timeout}s:\n"
                                 f"{proxy.log_path.read_text()[-3000:]}")
        time.sleep(0.05)  # polling interval of a log file, not synchronisation by time


def test_twenty_players_udp_and_tcp_share_one_origin_session(live_origin, split_proxy):
    proxy = split_proxy()
    mark = live_origin.mark()
    with ThreadPoolExecutor(max_workers=21) as pool:
        direct = pool.submit(ffmpeg_play, live_origin.url("/live"), transport="udp", video_span=6,
                             decode=False, timeout=40, extra_input_args=VIDEO_ONLY)
        proxied = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"] * 10, video_span=6,
                            extra_input_args=VIDEO_ONLY)
        base = direct.result()
        results = [f.result() for f in proxied]
    assert_span_played(base, 0.95 * 6 * FPS)
    for r in results:
        assert_span_played(r, 0.95 * base.video_frames)
    # One origin session for the direct player, exactly one for proxyd.
    assert live_origin.session_count("/live", after=mark) == 2


def test_a_stopped_player_does_not_reduce_what_the_others_receive(live_origin, split_proxy):
    # (Dropping and disconnecting a TCP player whose buffer overflows: test_stream.py; here the
    # kernel's socket buffers absorb 10 s of this small stream.)
    proxy = split_proxy()
    with ThreadPoolExecutor(max_workers=5) as pool:
        stalled = [ffmpeg_popen(proxy.url("/tv/live"), t, 16) for t in ("tcp", "udp")]
        wait_log(proxy, "joins split", count=2)
        for p in stalled:
            p.send_signal(signal.SIGSTOP)
        direct = pool.submit(ffmpeg_play, live_origin.url("/live"), transport="udp", video_span=12,
                             timeout=40, extra_input_args=VIDEO_ONLY)
        others = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], video_span=12,
                           extra_input_args=VIDEO_ONLY)
        base = direct.result()
        results = [f.result() for f in others]
        for p in stalled:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
            p.stderr.close()
    assert_span_played(base, 0.95 * 12 * FPS)
    for r in results:
        assert_span_played(r, 0.95 * base.video_frames)


def test_a_late_joiner_decodes_its_first_frame_without_errors(live_origin, split_proxy):
    proxy = split_proxy()
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(ffmpeg_play, proxy.url("/tv/live"), transport="tcp", duration=8, timeout=30)
        wait_log(proxy, "joins split")
        late = [pool.submit(ffmpeg_play, proxy.url("/tv/live"), transport=t, video_span=3, timeout=20,
                            extra_input_args=VIDEO_ONLY) for t in ("udp", "tcp")]
        results = [f.result() for f in late]
        first = first.result()
    for r in results + [first]:
        assert r.first_frame_s is not None, r.describe()
        assert not DECODE_ERRORS.search(r.stderr_tail), r.describe()
    for r in results:
        assert_span_played(r, 0.95 * 3 * FPS)
    assert first.ok and first.video_frames >= 0.95 * 3 * FPS, first.describe()  # 8 s (-t) of its own hub


def test_origin_restart_mid_stream_is_survived(live_origin, split_proxy):
    proxy = split_proxy("--split-reconnect-wait", "15")
    span = 12
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], video_span=span, timeout=60,
                            extra_input_args=VIDEO_ONLY)
        wait_log(proxy, "joins split", count=2)
        mark = live_origin.mark()
        live_origin.restart()
        live_origin.wait_for(lambda e: e["event"] == "session-created", after=mark, timeout=20)
        results = [f.result() for f in futures]
    assert "reconnect" in proxy.log_path.read_text()
    for r in results:
        # Timestamps keep running through the outage, so the span (from the first frame, before the
        # restart) ends with media sent after it, and every frame of the span but the outage's arrived.
        times = sorted(r.video_times)
        outage = max(later - earlier for earlier, later in zip(times, times[1:]))
        assert_span_played(r, 0.95 * (span - outage) * FPS)


def test_origin_gone_ends_players_cleanly_within_the_limit(live_origin, split_proxy):
    proxy = split_proxy("--split-reconnect-wait", "2", "--split-backoff-max", "0.5")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], duration=30, timeout=40)
        wait_log(proxy, "joins split", count=2)
        live_origin.stop()
        stopped = time.monotonic()
        results = [f.result() for f in futures]
        ended = time.monotonic() - stopped
    wait_log(proxy, "ended: origin_error")
    assert ended < 2 + 6, f"players took {ended:.1f}s to end"
    for r in results:  # RTCP BYE (UDP) and BYE + close (TCP) end ffmpeg normally
        assert r.returncode == 0 and not r.timed_out and r.video_frames > 0, r.describe()


def test_origin_session_lingers_for_a_quick_return_then_is_torn_down(live_origin, split_proxy):
    proxy = split_proxy("--split-linger", "3")
    mark = live_origin.mark()
    first = ffmpeg_play(proxy.url("/tv/live"), transport="udp", duration=1, decode=False, timeout=20)
    again = ffmpeg_play(proxy.url("/tv/live"), transport="tcp", duration=1, decode=False, timeout=20)
    assert first.ok and again.ok, first.describe() + again.describe()
    assert live_origin.session_count("/live", after=mark) == 1
    live_origin.wait_for(lambda e: e["event"] == "session-closed", after=mark, timeout=3 + 5)
    wait_log(proxy, "ended: linger expired")
    later = ffmpeg_play(proxy.url("/tv/live"), transport="udp", duration=1, decode=False, timeout=20)
    assert later.ok, later.describe()
    assert live_origin.session_count("/live", after=mark) == 2


def test_shutdown_tears_down_a_lingering_origin_session(live_origin, split_proxy):
    proxy = split_proxy("--split-linger", "60")
    mark = live_origin.mark()
    played = ffmpeg_play(proxy.url("/tv/live"), transport="udp", duration=1, decode=False, timeout=20)
    assert played.ok, played.describe()
    assert live_origin.open_sessions()  # lingering: the origin session is still up
    assert proxy.stop() == 0
    live_origin.wait_for(lambda e: e["event"] == "session-closed", after=mark, timeout=5)
    assert live_origin.requests("TEARDOWN", after=mark)
