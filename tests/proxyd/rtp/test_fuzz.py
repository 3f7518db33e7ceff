"""Hypothesis: RTP/RTCP/SDP parsers and the structured-header parsers raise only their own errors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from proxyd.rtp.errors import PacketError, SdpError
from proxyd.rtp.packet import RtpPacket, is_h264_keyframe, parse_rtcp, rtp_header
from proxyd.rtp.sdp import parse_sdp
from proxyd.rtsp.errors import HeaderParseError
from proxyd.rtsp.headers import parse_range, parse_rtp_info, parse_scale, parse_session, parse_transport
from proxyd.rtsp.uri import join_control_url, split_rtsp_url


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_rtp_parse_only_raises_packet_error(data: bytes) -> None:
    try:
        marker, pt, seq, ts, ssrc, offset, end = rtp_header(data)
    except PacketError:
        return
    assert 12 <= offset <= end <= len(data)
    assert RtpPacket.parse(data).to_bytes() == data  # anything that parses re-encodes exactly
    is_h264_keyframe(data, offset, end)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_rtcp_parse_only_raises_packet_error(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except PacketError:
        return
    assert packets


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_sdp_parse_only_raises_sdp_error(data: bytes) -> None:
    try:
        sdp = parse_sdp(b"v=0\r\n" + data)
    except SdpError:
        return
    assert sdp.to_bytes() == b"v=0\r\n" + data
    sdp.is_live, sdp.duration_seconds, sdp.media_urls("rtsp://h/x")  # noqa: B018 - must not raise
    for media in sdp.media:
        media.clock_rate  # noqa: B018


HEADER_PARSERS = [parse_transport, parse_range, parse_rtp_info, parse_scale, parse_session, split_rtsp_url]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HEADER_PARSERS), st.text(alphabet=st.sampled_from("rtsp:/RTP/AVP/TCPUDP;=-,.0123456789 "
                                                                          "npt=nowclockurlseqtimeout*x"), max_size=60))
def test_header_parsers_only_raise_header_parse_error(parser, value: str) -> None:
    try:
        parser(value)
    except HeaderParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_join_control_url_never_crashes_on_relative_input(control: str) -> None:
    try:
        result = join_control_url("rtsp://h:554/clip/", control)
    except HeaderParseError:
        return
    assert isinstance(result, str)
