"""A slow TCP player of a cached clip loses nothing: past --write-high-water its replay waits for the
connection to drain instead of dropping packets (recorded media can wait), and other players of the
same clip play on meanwhile. A live (split) TCP player that cannot keep up is still dropped packets,
then disconnected: live media cannot wait."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import pytest

from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import InterleavedFrame, Request
from proxyd.rtsp.uri import content_base
from tests.proxyd.cache.helpers import wait_for_log
from tests.proxyd.cache.test_e2e_replay_protocol import RawClient
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer

pytestmark = pytest.mark.peers

# Tight buffers so a few kilobytes of backlog count as slow: proxyd's own marks, and on the player's
# side a small MSS and receive buffer (over loopback the kernel would otherwise absorb megabytes).
WRITE_LIMITS = ["--write-high-water", "4096", "--write-drop-limit", "16384", "--max-dropped-packets", "1000"]
PLAYER_MSS, PLAYER_RCVBUF = 1400, 4096
CLIP_MS = 6000  # ~210 KB: well past what the kernel buffers hold for a player that stops reading
PAUSED = r"slow player: replay paused until its connection drains"


class SlowTcpPlayer(RawClient):
    """DESCRIBE, SETUP (TCP interleaved, EndOfStream negotiated), PLAY; then it reads only when asked."""

    def __init__(self, url: str) -> None:
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PLAYER_RCVBUF)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, PLAYER_MSS)
        self.sock.settimeout(20)
        self.sock.connect((host, int(port)))
        self.conn = RtspConnection(Role.CLIENT)
        self.frames: list[InterleavedFrame] = []
        self.url = url

    def play(self) -> None:
        resp = self.request("DESCRIBE", self.url, [("Accept", "application/sdp")])
        assert resp.status == 200, resp
        base = content_base(resp.headers, self.url)
        sdp = Sdp.parse(resp.body)
        session: list = []
        for i, media_url in enumerate(sdp.media_urls(base)):
            r = self.request("SETUP", media_url, [("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"),
                                                  ("Supported", "com.microsoft.wm.eosmsg"), *session])
            assert r.status == 200, r
            session = [("Session", r.headers.get("Session").split(";")[0])]
        assert self.request("PLAY", sdp.aggregate_url(base), [("Range", "npt=0-"), *session]).status == 200

    def read_to_end_of_stream(self) -> Counter:
        """Everything up to proxyd's EndOfStream; RTP packets per interleaved channel."""
        while not isinstance(event := self._next(), Request) or event.headers.get("X-Notice") is None:
            if isinstance(event, InterleavedFrame):
                self.frames.append(event)
        self.sock.close()
        return Counter(f.channel for f in self.frames if f.channel % 2 == 0)


def rtp_by_channel(result) -> Counter:
    """A WMPlayer's RTP packets per interleaved channel (its streams are set up in SDP order)."""
    return Counter({2 * i: s.packets for i, s in enumerate(result.entries[0].streams.values())})


def test_slow_tcp_player_of_a_cached_clip_gets_every_packet_and_others_play_on(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="slow", duration_ms=CLIP_MS)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache", extra_args=WRITE_LIMITS)
    url = proxy.url("/wm/clip.wmv")
    fill = asyncio.run(WMPlayer(url, send_event=False).run())
    assert fill.error is None, fill.error
    wait_for_log(proxy.log_path, r"cache: committed")
    expected = rtp_by_channel(fill)

    slow = SlowTcpPlayer(url)
    slow.play()
    # It reads nothing until proxyd says its buffer passed the high-water mark (without the change
    # no such line comes: it then reads anyway and finds packets missing).
    try:
        wait_for_log(proxy.log_path, PAUSED, timeout=CLIP_MS / 1000 + 5)
    except TimeoutError:
        pass
    other = asyncio.run(WMPlayer(url, send_event=False).run())  # meanwhile, from the same entry
    assert other.error is None, other.error
    assert rtp_by_channel(other) == expected
    assert slow.read_to_end_of_stream() == expected  # it caught up: not one packet lost
    assert len(wait_for_log(proxy.log_path, PAUSED)) == 1  # once per session, not per stall
    assert "closing player connection: slow player" not in proxy.log_path.read_text()


def test_slow_tcp_player_of_a_live_split_is_still_dropped_packets_then_disconnected(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/live", seed="slow-live", broadcast=True)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, extra_args=WRITE_LIMITS)
    slow = SlowTcpPlayer(proxy.url("/wm/live"))
    slow.play()
    wait_for_log(proxy.log_path, r"closing player connection: slow player: \d+ bytes buffered, "
                 r"[1-9]\d* packets dropped")
    assert "joins split" in proxy.log_path.read_text()
    assert PAUSED not in proxy.log_path.read_text()
    slow.sock.close()
