"""Cache replay pacing: a player from the cache sees packets arrive on the recorded media clock, as
steadily as a player of the origin itself: never late, and early by at most one tick plus twice a TCP
player's flush interval (--cache-tcp-flush-interval: its wake-ups fall on that interval's grid, shared
by every TCP replay, and each sends one interval past the grid step); with that interval, a TCP
player's audio and video go out together in fewer, larger writes than the origin's."""

from __future__ import annotations

import time

import pytest

from proxyd.rtp.packet import RtpPacket
from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.uri import content_base
from tests.proxyd.cache.helpers import wait_for_log
from tests.proxyd.cache.test_e2e_replay_protocol import RawClient

pytestmark = pytest.mark.peers

VIDEO_CLOCK = 90000
PLAY_SECONDS = 2.5  # within the 3 s test clip
SETTLE_SECONDS = 0.5  # both the origin and proxyd may send the first packets back to back
BURST_GAP = 0.002  # frames closer than this came in one write (or one origin wakeup)
DEFAULT_FLUSH = 0.02  # proxyd's --cache-tcp-flush-interval


def arrival_spread(url: str) -> tuple[float, int, float]:
    """Play `url` over TCP for PLAY_SECONDS; (spread, packets, bursts per second): the 10-90 percentile
    width, in seconds, of each video packet's arrival time minus its RTP time (0 for perfect pacing),
    and how often RTP of any stream arrived after a pause of more than BURST_GAP."""
    c = RawClient(url)
    resp = c.request("DESCRIBE", url, [("Accept", "application/sdp")])
    assert resp.status == 200, resp
    base = content_base(resp.headers, url)
    sdp = Sdp.parse(resp.body)
    session: list = []
    for i, media_url in enumerate(sdp.media_urls(base)):
        transport = f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
        r = c.request("SETUP", media_url, [("Transport", transport), *session])
        assert r.status == 200, r
        session = [("Session", r.headers.get("Session").split(";")[0])]
    assert c.request("PLAY", sdp.aggregate_url(base), [("Range", "npt=0-"), *session]).status == 200
    offsets = []
    started = time.monotonic()
    first_ts = None
    bursts, last_arrival = 0, 0.0
    while (now := time.monotonic()) - started < PLAY_SECONDS:
        frame = c.any_frame()
        now = time.monotonic()
        if frame.channel % 2:  # RTCP
            continue
        if now - started >= SETTLE_SECONDS and now - last_arrival > BURST_GAP:
            bursts += 1
        last_arrival = now
        if frame.channel != 0:
            continue
        packet = RtpPacket.parse(frame.payload)
        if first_ts is None:
            first_ts = packet.timestamp
        media_s = ((packet.timestamp - first_ts) & 0xFFFFFFFF) / VIDEO_CLOCK
        if now - started >= SETTLE_SECONDS:
            offsets.append(now - started - media_s)
    c.request("TEARDOWN", sdp.aggregate_url(base), session)
    offsets.sort()
    spread = offsets[len(offsets) * 9 // 10] - offsets[len(offsets) // 10]
    return spread, len(offsets), bursts / (PLAY_SECONDS - SETTLE_SECONDS)


@pytest.mark.parametrize("flush", [None, 0.0], ids=["default-flush", "no-flush"])
def test_cache_replay_arrivals_follow_the_media_clock_like_the_origin(gst_origin, proxyd_process,
                                                                      peer_players, tmp_path, flush):
    extra = ["--cache-ttl", "300"] + ([] if flush is None else ["--cache-tcp-flush-interval", str(flush)])
    proxy = proxyd_process(routes={"/vod": gst_origin.url("/")}, cache_dir=tmp_path / "cache", extra_args=extra)
    url = proxy.url("/vod/clip")
    assert peer_players.ffmpeg_play(url, transport="tcp", decode=False).ok
    wait_for_log(proxy.log_path, r"cache: committed")

    origin_spread, origin_packets, origin_bursts = arrival_spread(gst_origin.url("/clip"))
    cache_spread, cache_packets, cache_bursts = arrival_spread(url)
    # Paced, not dumped: as many packets in the same playing time as from the origin.
    assert cache_packets == pytest.approx(origin_packets, rel=0.2)
    # No worse than the origin, give or take two flush intervals (packets leave up to that early), the
    # pacer's 2 ms tick and scheduling on a busy machine.
    early = 2 * (DEFAULT_FLUSH if flush is None else flush)
    assert cache_spread <= max(2 * origin_spread, origin_spread + early + 0.01), (cache_spread, origin_spread)
    if flush is None:  # audio rides with the video frame's write: far fewer wakeups than the origin's
        assert cache_bursts <= 0.7 * origin_bursts, (cache_bursts, origin_bursts)
