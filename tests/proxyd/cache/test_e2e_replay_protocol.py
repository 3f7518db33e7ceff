"""Replay from the cache at the RTSP/RTP level: Range seek to a key frame, RTP-Info matching the
packets, own SSRC, sender reports, PAUSE and resume with continuous sequence numbers."""

from __future__ import annotations

import socket

import pytest

from proxyd.rtp.packet import RtpPacket, parse_rtcp, SenderReport, is_h264_keyframe
from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, Headers, InterleavedFrame, Request, Response
from proxyd.rtsp.headers import parse_range, parse_rtp_info, parse_transport
from proxyd.rtsp.uri import content_base
from tests.proxyd.cache.helpers import wait_for_log

pytestmark = pytest.mark.peers


class RawClient:
    def __init__(self, url: str) -> None:
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.conn = RtspConnection(Role.CLIENT)
        self.frames: list[InterleavedFrame] = []

    def _next(self):
        while (event := self.conn.next_event()) is NEED_DATA:
            data = self.sock.recv(65536)
            assert data, "proxy closed the connection"
            self.conn.receive_data(data)
        return event

    def request(self, method: str, uri: str, headers: list) -> Response:
        self.sock.sendall(self.conn.send_request(Request(method, uri, Headers(headers))))
        while not isinstance(event := self._next(), Response):
            if isinstance(event, InterleavedFrame):
                self.frames.append(event)
        return event

    def any_frame(self) -> InterleavedFrame:
        """The next interleaved frame of any channel (those set aside by frame() first)."""
        if self.frames:
            return self.frames.pop(0)
        while not isinstance(event := self._next(), InterleavedFrame):
            pass
        return event

    def frame(self, channel: int) -> InterleavedFrame:
        for i, f in enumerate(self.frames):
            if f.channel == channel:
                return self.frames.pop(i)
        while True:
            event = self._next()
            if isinstance(event, InterleavedFrame):
                if event.channel == channel:
                    return event
                self.frames.append(event)


def test_seek_pause_resume_rtp_info_and_sender_reports(gst_origin_factory, test_clips, proxyd_process, peer_players,
                                                       tmp_path):
    origin = gst_origin_factory(vod={"clip": test_clips.long.path})  # a seek to 2.5 s, then media to pause
    proxy = proxyd_process(routes={"/vod": origin.url("/")}, cache_dir=tmp_path / "cache",
                           extra_args=["--cache-ttl", "300"])
    url = proxy.url("/vod/clip")
    assert peer_players.ffmpeg_play(url, transport="tcp", decode=False).ok
    wait_for_log(proxy.log_path, r"cache: committed")
    origin.stop()

    c = RawClient(url)
    resp = c.request("DESCRIBE", url, [("Accept", "application/sdp")])
    assert resp.status == 200 and b"m=video" in resp.body
    base = content_base(resp.headers, url)
    sdp = Sdp.parse(resp.body)
    session: list = []
    ssrcs = []
    for i, media_url in enumerate(sdp.media_urls(base)):
        r = c.request("SETUP", media_url, [("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"),
                                           *session])
        assert r.status == 200
        session = [("Session", r.headers.get("Session").split(";")[0])]
        ssrcs.append(int(parse_transport(r.headers.get("Transport"))[0].ssrc, 16))
    aggregate = sdp.aggregate_url(base)

    r = c.request("PLAY", aggregate, [("Range", "npt=2.5-"), *session])
    assert r.status == 200
    shown = parse_range(r.headers.get("Range"))
    assert shown.start == pytest.approx(2.0, abs=0.05)  # preceding key frame (GOP = 1 s)
    info = {e.url.rsplit("/", 1)[-1]: e for e in parse_rtp_info(r.headers.get("RTP-Info"))}
    first = RtpPacket.parse(c.frame(0).payload)
    assert first.ssrc == ssrcs[0]
    assert first.sequence == info["stream=0"].seq and first.timestamp == info["stream=0"].rtptime
    assert is_h264_keyframe(first.payload)
    report = next(p for p in parse_rtcp(c.frame(1).payload) if isinstance(p, SenderReport))
    assert report.ssrc == ssrcs[0]

    assert c.request("PAUSE", aggregate, session).status == 200
    r = c.request("PLAY", aggregate, session)
    assert r.status == 200
    # Frames that arrived before the resume answer were sent before the pause (joined writes may
    # trail the PAUSE answer); the resume starts right after the last of them.
    last_seq = ([first.sequence] + [RtpPacket.parse(f.payload).sequence for f in c.frames if f.channel == 0])[-1]
    c.frames.clear()
    resumed = {e.url.rsplit("/", 1)[-1]: e for e in parse_rtp_info(r.headers.get("RTP-Info"))}
    assert resumed["stream=0"].seq == (last_seq + 1) & 0xFFFF
    assert parse_range(r.headers.get("Range")).start >= shown.start
    assert RtpPacket.parse(c.frame(0).payload).sequence == resumed["stream=0"].seq

    assert c.request("PLAY", aggregate, [("Range", "npt=60-"), *session]).status == 457
    assert c.request("TEARDOWN", aggregate, session).status == 200
