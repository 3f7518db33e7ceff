"""Interop matrix: ffmpeg plays each origin style through a real proxyd, cache off and on, UDP and
TCP, and gets at least 95% of the frames it gets from the origin directly in the same test; a VOD
played with the cache on then replays from the committed entry with the origin stopped.

Origin styles are in styles.py, their origins in conftest.py. Counting: a VOD is played whole (a
fixed number of frames); a live stream is counted over a fixed span of video time from the first
video frame (players.ffmpeg_play's video_span), so a frame lost anywhere lowers the count and where
the player joined does not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyd.rtsp.oneshot import rtsp_request
from tests.interop.styles import MOUNT
from tests.peers.proxyd_proc import log_tail
from tests.proxyd.cache.helpers import committed_urls, wait_for_log

pytestmark = pytest.mark.peers

MIN_RATIO = 0.95
PLAY_TIMEOUT_S = 20.0
CACHE_TTL_S = "300"  # the origins send no Cache-Control


def play(players, url: str, transport: str, style):
    """A whole VOD, or `style.live_span_s` of a live stream's video."""
    span = style.live_span_s if style.live else None
    return players.ffmpeg_play(url, transport=transport, video_span=span, timeout=PLAY_TIMEOUT_S)


def assert_as_good(played, direct, live: bool, proxyd_log: Path) -> None:
    """`played` (through proxyd) got at least MIN_RATIO of the frames `direct` got."""
    context = f"{played.describe()}\n--- {proxyd_log} ---\n{log_tail(proxyd_log)}"
    assert played.video_frames >= MIN_RATIO * direct.video_frames, (
        f"{played.video_frames}/{direct.video_frames} video frames\n{context}")
    if live:  # audio is only counted up to the end of the video span: present is what we can say
        assert played.audio_frames > 0, context
    else:
        assert played.audio_frames >= MIN_RATIO * direct.audio_frames, (
            f"{played.audio_frames}/{direct.audio_frames} audio frames\n{context}")


def test_origin_answers_in_its_style(running_origin):
    """The DESCRIBE answer has the shape the style names (else the matrix would test another)."""
    style, origin = running_origin
    fill = {"host": origin.host, "port": origin.port}
    answer = rtsp_request(f"rtsp://{origin.host}:{origin.port}/{MOUNT}", "DESCRIBE",
                          headers=[("Accept", "application/sdp")], timeout=10)
    assert answer.status == 200, answer
    expected_base = style.content_base.format(**fill) if style.content_base is not None else None
    assert answer.headers.get("Content-Base") == expected_base
    sdp = answer.body.decode().splitlines()
    for line in style.sdp_has:
        assert line.format(**fill) in sdp, "\n".join(sdp)
    for line in style.sdp_lacks:
        assert line.format(**fill) not in sdp, "\n".join(sdp)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("cache", [False, True], ids=["cache-off", "cache-on"])
def test_ffmpeg_through_proxyd_gets_what_it_gets_direct(request, running_origin, proxyd_process, peer_players,
                                                         tmp_path, cache, transport):
    style, origin = running_origin
    if cache and style.cache_on_bug:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"issue 10: {style.cache_on_bug}"))
    before_direct = origin.mark() if style.shape.slow_live else 0
    direct = play(peer_players, origin.url(MOUNT), style.direct_transport(transport), style)
    assert direct.video_frames > 0 and direct.audio_frames > 0, direct.describe()
    if style.shape.slow_live:  # proxyd's first DESCRIBE meets an idle mount, as a first player would
        origin.wait_for(lambda e: e["event"] == "media-unprepared", timeout=10, after=before_direct)

    cache_dir = tmp_path / "cache" if cache else None
    proxy = proxyd_process(routes={"/o": origin.url("/")}, cache_dir=cache_dir,
                           extra_args=["--cache-ttl", CACHE_TTL_S] if cache else [])
    url = proxy.url(f"/o/{MOUNT}")
    through = play(peer_players, url, transport, style)
    assert_as_good(through, direct, style.live, proxy.log_path)
    if not cache or style.live:
        return

    wait_for_log(proxy.log_path, rf"cache: committed rtsp://\S+/{MOUNT} ")
    assert len(committed_urls(cache_dir)) == 1
    origin.stop()
    replayed = play(peer_players, url, transport, style)
    assert_as_good(replayed, direct, False, proxy.log_path)
    assert replayed.first_video_crcs[:3] == direct.first_video_crcs[:3], replayed.describe()
