"""Cache replay pacing: a player from the cache sees packets arrive on the recorded media clock, as
steadily as a player of the origin itself: never late, and early by at most one tick plus twice a TCP
player's flush interval (--cache-tcp-flush-interval: its wake-ups fall on that interval's grid, shared
by every TCP replay, and each sends one interval past the grid step) or one UDP player's
(--cache-udp-flush-interval: the same grid while other replays play, each wake-up sends through the
end of its step; alone, its own packet times and one interval ahead); with
those intervals, a player's audio and video go out together in fewer, larger bursts than the origin's."""

from __future__ import annotations

import select
import time

import pytest

from proxyd.net.udp import bind_port_pair
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
DEFAULT_UDP_FLUSH = 0.02  # proxyd's --cache-udp-flush-interval
TICK = 0.002  # proxyd's --cache-pace-tick


class UdpReceiver:
    """RTP/RTCP socket pairs of a UDP player, one per stream; `next` yields (stream, RTP payload)."""

    def __init__(self, streams: int) -> None:
        self.pairs = [bind_port_pair("127.0.0.1") for _ in range(streams)]  # even/odd: as origins want

    def transport(self, i: int) -> str:
        rtp, rtcp = self.pairs[i]
        return f"RTP/AVP;unicast;client_port={rtp.getsockname()[1]}-{rtcp.getsockname()[1]}"

    def next(self) -> tuple[int, bytes]:
        socks = [rtp for rtp, _ in self.pairs]
        ready, _, _ = select.select(socks, [], [], 10)
        assert ready, "no RTP for 10 s"
        sock = ready[0]
        return socks.index(sock), sock.recv(65536)

    def close(self) -> None:
        for pair in self.pairs:
            for sock in pair:
                sock.close()


def start_playing(url: str, transport: str) -> tuple[RawClient, UdpReceiver | None, str, list]:
    """DESCRIBE, SETUP every stream over `transport` and PLAY `url`: (client, UDP receiver or None,
    aggregate URL, Session header)."""
    c = RawClient(url)
    resp = c.request("DESCRIBE", url, [("Accept", "application/sdp")])
    assert resp.status == 200, resp
    base = content_base(resp.headers, url)
    sdp = Sdp.parse(resp.body)
    media_urls = sdp.media_urls(base)
    udp = UdpReceiver(len(media_urls)) if transport == "udp" else None
    session: list = []
    for i, media_url in enumerate(media_urls):
        spec = udp.transport(i) if udp else f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
        r = c.request("SETUP", media_url, [("Transport", spec), *session])
        assert r.status == 200, r
        session = [("Session", r.headers.get("Session").split(";")[0])]
    assert c.request("PLAY", sdp.aggregate_url(base), [("Range", "npt=0-"), *session]).status == 200
    return c, udp, sdp.aggregate_url(base), session


def arrival_spread(url: str, transport: str = "tcp", burst_starts: list | None = None) -> tuple[float, int, float]:
    """Play `url` over `transport` for PLAY_SECONDS; (spread, packets, bursts per second): the 10-90
    percentile width, in seconds, of each video packet's arrival time minus its RTP time (0 for perfect
    pacing), and how often RTP of any stream arrived after a pause of more than BURST_GAP (their
    monotonic clock times appended to `burst_starts`)."""
    c, udp, aggregate_url, session = start_playing(url, transport)
    offsets = []
    started = time.monotonic()
    first_ts = None
    bursts, last_arrival = 0, 0.0
    while (now := time.monotonic()) - started < PLAY_SECONDS:
        if udp:
            stream, payload = udp.next()
        else:
            frame = c.any_frame()
            if frame.channel % 2:  # RTCP
                continue
            stream, payload = frame.channel // 2, frame.payload
        now = time.monotonic()
        if now - started >= SETTLE_SECONDS and now - last_arrival > BURST_GAP:
            bursts += 1
            if burst_starts is not None:
                burst_starts.append(now)
        last_arrival = now
        if stream != 0:
            continue
        packet = RtpPacket.parse(payload)
        if first_ts is None:
            first_ts = packet.timestamp
        media_s = ((packet.timestamp - first_ts) & 0xFFFFFFFF) / VIDEO_CLOCK
        if now - started >= SETTLE_SECONDS:
            offsets.append(now - started - media_s)
    c.request("TEARDOWN", aggregate_url, session)
    if udp:
        udp.close()
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


def grid_share(starts: list[float], interval: float) -> float:
    """The share of burst starts in the first 35 % of a grid step of `interval` (proxyd's loop clock
    is this monotonic clock): about 1 for wake-ups on the grid, spread evenly for per-packet ones."""
    return sum(1 for t in starts if (t % interval) / interval < 0.35) / len(starts)


@pytest.mark.parametrize("flush", [None, 0.0], ids=["default-flush", "no-flush"])
def test_cache_replay_to_a_udp_player_stays_within_one_flush_interval_of_the_origin(
        gst_origin, proxyd_process, peer_players, tmp_path, flush):
    """A lone UDP replay wakes at its own next packet and sends one --cache-udp-flush-interval ahead
    (the grid would wake it more often for nothing to share): a packet leaves at most one interval
    plus a tick early, never late, so the player's jitter exceeds the origin's by at most that."""
    extra = ["--cache-ttl", "300"] + ([] if flush is None else ["--cache-udp-flush-interval", str(flush)])
    proxy = proxyd_process(routes={"/vod": gst_origin.url("/")}, cache_dir=tmp_path / "cache", extra_args=extra)
    url = proxy.url("/vod/clip")
    assert peer_players.ffmpeg_play(url, transport="tcp", decode=False).ok
    wait_for_log(proxy.log_path, r"cache: committed")

    origin_spread, origin_packets, origin_bursts = arrival_spread(gst_origin.url("/clip"), "udp")
    starts: list[float] = []
    cache_spread, cache_packets, cache_bursts = arrival_spread(url, "udp", starts)
    assert cache_packets == pytest.approx(origin_packets, rel=0.2)
    interval = DEFAULT_UDP_FLUSH if flush is None else flush
    # The spread is a 10-90 percentile width: earliness between 0 and interval + tick widens it by at
    # most that; 10 ms for scheduling on a busy machine.
    assert cache_spread <= max(2 * origin_spread, origin_spread + interval + TICK + 0.01), (cache_spread,
                                                                                          origin_spread)
    if flush is None:  # audio rides with the video frame's wake-up: fewer bursts than the origin's
        assert cache_bursts <= 0.9 * origin_bursts, (cache_bursts, origin_bursts)
        # Not on the grid: bursts start at packet times (from PLAY on), not in the grid steps' first
        # ticks; the audio frames' times drift through the grid's phases, so at most about 35 % of
        # the audio-led bursts and the video-led ones start there (on the grid: all of them).
        share = grid_share(starts, interval)
        assert share < 0.8, share


def test_udp_replays_share_the_grid_once_there_are_several(gst_origin, proxyd_process, peer_players,
                                                           tmp_path):
    """With another replay playing, a UDP replay wakes on the grid of --cache-udp-flush-interval
    (shared by all, one sendmmsg per port and grid step): bursts start in the first ticks of a grid
    step, each sends through the end of its step, so the jitter bound stays interval + tick."""
    proxy = proxyd_process(routes={"/vod": gst_origin.url("/")}, cache_dir=tmp_path / "cache",
                           extra_args=["--cache-ttl", "300"])
    url = proxy.url("/vod/clip")
    assert peer_players.ffmpeg_play(url, transport="tcp", decode=False).ok
    wait_for_log(proxy.log_path, r"cache: committed")

    origin_spread, origin_packets, origin_bursts = arrival_spread(gst_origin.url("/clip"), "udp")
    other, other_udp, other_url, other_session = start_playing(url, "udp")  # not read: the kernel drops
    try:
        starts: list[float] = []
        cache_spread, cache_packets, cache_bursts = arrival_spread(url, "udp", starts)
    finally:
        other.request("TEARDOWN", other_url, other_session)
        other_udp.close()
    assert cache_packets == pytest.approx(origin_packets, rel=0.2)
    interval = DEFAULT_UDP_FLUSH
    assert cache_spread <= max(2 * origin_spread, origin_spread + interval + TICK + 0.01), (cache_spread,
                                                                                          origin_spread)
    assert cache_bursts <= 0.9 * origin_bursts, (cache_bursts, origin_bursts)
    assert cache_bursts <= 1.2 / interval, cache_bursts
    share = grid_share(starts, interval)
    assert share >= 0.8, share
