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
        direct = pool.submit(ffmpeg_play, live_origin.url("/live"), transport="udp", duration=6, decode=False,
                             timeout=40)
        proxied = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"] * 10, duration=6)
        base = direct.result()
        results = [f.result() for f in proxied]
    assert base.ok, base.describe()
    for r in results:
        assert r.ok and r.video_frames >= 0.95 * base.video_frames, \
            r.describe() + f"\ndirect: {base.video_frames}"
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
        direct = pool.submit(ffmpeg_play, live_origin.url("/live"), transport="udp", duration=12, timeout=40)
        others = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], duration=12)
        base = direct.result()
        results = [f.result() for f in others]
        for p in stalled:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
            p.stderr.close()
    for r in results:
        assert r.ok and r.video_frames >= 0.95 * base.video_frames, \
            r.describe() + f"\ndirect: {base.video_frames}"


def test_a_late_joiner_decodes_its_first_frame_without_errors(live_origin, split_proxy):
    proxy = split_proxy()
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(ffmpeg_play, proxy.url("/tv/live"), transport="tcp", duration=8, timeout=30)
        wait_log(proxy, "joins split")
        late = [pool.submit(ffmpeg_play, proxy.url("/tv/live"), transport=t, duration=3, timeout=20)
                for t in ("udp", "tcp")]
        results = [f.result() for f in late] + [first.result()]
    for r in results:
        assert r.ok and r.first_frame_s is not None, r.describe()
        assert not DECODE_ERRORS.search(r.stderr_tail), r.describe()
        assert r.video_frames >= 0.95 * 3 * FPS, r.describe()


def test_origin_restart_mid_stream_is_survived(live_origin, split_proxy):
    proxy = split_proxy("--split-reconnect-wait", "15")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], duration=12, timeout=45)
        wait_log(proxy, "joins split", count=2)
        mark = live_origin.mark()
        started = time.monotonic()
        live_origin.restart()
        live_origin.wait_for(lambda e: e["event"] == "session-created", after=mark, timeout=20)
        outage = time.monotonic() - started
        results = [f.result() for f in futures]
    assert "reconnect" in proxy.log_path.read_text()
    for r in results:
        # Timestamps keep running through the outage, so 12 s of output include it.
        assert r.ok and r.video_frames >= (12 - outage - 3) * FPS, r.describe() + f"\noutage {outage:.1f}s"


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
