"""The RTSP/RTP core against a real GStreamer RTSP server (tests.peers harness).

oneshot probes it; a small blocking client built on RtspConnection(Role.CLIENT) runs
DESCRIBE / SETUP (TCP interleaved) / PLAY and checks the media with proxyd.rtp.
"""

from __future__ import annotations

import socket
import time

import pytest

from proxyd.rtp.packet import SenderReport, is_h264_keyframe, parse_rtcp, rtp_header
from proxyd.rtp.sdp import parse_sdp
from proxyd.rtp.stats import StreamStats
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, Headers, InterleavedFrame, Request, Response
from proxyd.rtsp.headers import parse_rtp_info, parse_session, parse_transport
from proxyd.rtsp.uri import content_base
from proxyd.rtsp.oneshot import rtsp_request

pytestmark = pytest.mark.peers

DEADLINE_S = 20.0


class BlockingClient:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=DEADLINE_S)
        self.conn = RtspConnection(Role.CLIENT)
        self.frames: list[InterleavedFrame] = []
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def next_event(self):
        while (event := self.conn.next_event()) is NEED_DATA:
            self.conn.receive_data(self.sock.recv(65536))
        return event

    def request(self, method: str, url: str, headers=()) -> Response:
        self.cseq += 1
        headers = [("CSeq", str(self.cseq)), *headers]
        self.sock.sendall(self.conn.send_request(Request(method, url, Headers(headers))))
        cseq = self.cseq
        while True:
            event = self.next_event()
            if isinstance(event, InterleavedFrame):
                self.frames.append(event)
            elif isinstance(event, Response) and event.cseq == cseq:
                assert self.conn.pending_request(cseq).method == method
                return event


@pytest.fixture
def vod_url(shared_gst_origin) -> str:
    return shared_gst_origin.url("clip")


@pytest.fixture
def live_url(shared_gst_origin) -> str:
    return shared_gst_origin.url("live")


def test_oneshot_options_and_describe(vod_url: str, live_url: str) -> None:
    options = rtsp_request(vod_url, "OPTIONS", timeout=DEADLINE_S)
    assert options.status == 200 and "DESCRIBE" in options.headers.get("Public", "")
    describe = rtsp_request(vod_url, "DESCRIBE", [("Accept", "application/sdp")], timeout=DEADLINE_S)
    assert describe.status == 200
    sdp = parse_sdp(describe.body)
    assert sdp.to_bytes() == describe.body
    assert "video" in [m.kind for m in sdp.media]
    assert [m.clock_rate for m in sdp.media if m.kind == "video"] == [90000]
    live = rtsp_request(live_url, "DESCRIBE", [("Accept", "application/sdp")], timeout=DEADLINE_S)
    assert parse_sdp(live.body).is_live, live.body.decode()
    missing = rtsp_request(vod_url + "-missing", "DESCRIBE", timeout=DEADLINE_S)
    assert missing.status == 404


def test_tcp_interleaved_live_session(live_url: str) -> None:
    """Live mount: it streams for as long as we read, so an RTCP SR is sure to come (every ~5 s)."""
    host, port = live_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    client = BlockingClient(host, int(port))
    try:
        describe = client.request("DESCRIBE", live_url, [("Accept", "application/sdp")])
        sdp = parse_sdp(describe.body)
        base = content_base(describe.headers, live_url)
        video_index = [m.kind for m in sdp.media].index("video")
        session_id = None
        for index, media_url in enumerate(sdp.media_urls(base)):
            headers = [("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * index}-{2 * index + 1}")]
            if session_id:
                headers.append(("Session", session_id))
            setup = client.request("SETUP", media_url, headers)
            assert setup.status == 200
            assert parse_transport(setup.headers.get("Transport"))[0].interleaved == (2 * index, 2 * index + 1)
            session_id = parse_session(setup.headers.get("Session")).id
        play = client.request("PLAY", sdp.aggregate_url(base), [("Session", session_id), ("Range", "npt=0-")])
        assert play.status == 200
        start_seq = {info.url: info.seq for info in parse_rtp_info(play.headers.get("RTP-Info"))}

        stats, keyframe, sender_report = StreamStats(), False, None
        video_channel = 2 * video_index
        deadline = time.monotonic() + DEADLINE_S
        while (stats.packets < 100 or not keyframe or sender_report is None) and time.monotonic() < deadline:
            event = client.next_event()
            if not isinstance(event, InterleavedFrame):
                continue
            if event.channel == video_channel:
                _, _, seq, _, _, offset, end = rtp_header(event.payload)
                stats.on_packet(seq, len(event.payload))
                keyframe = keyframe or is_h264_keyframe(event.payload, offset, end)
            elif event.channel % 2:  # RTCP of any stream
                reports = [p for p in parse_rtcp(event.payload) if isinstance(p, SenderReport)]
                sender_report = reports[0] if reports else sender_report
        assert stats.packets >= 100 and stats.lost == 0  # TCP: no gaps
        assert keyframe
        assert stats.base_seq == start_seq[sdp.media_urls(base)[video_index]]
        assert sender_report is not None and sender_report.packet_count > 0
        teardown = client.request("TEARDOWN", sdp.aggregate_url(base), [("Session", session_id)])
        assert teardown.status == 200
    finally:
        client.close()
