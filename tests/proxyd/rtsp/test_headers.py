"""Structured header parse/format and URL helpers."""

from __future__ import annotations

import pytest

from proxyd.rtsp.errors import HeaderParseError, RemoteProtocolError
from proxyd.rtsp.headers import (
    RangeHeader,
    RtpInfoEntry,
    SessionHeader,
    TransportSpec,
    format_range,
    format_rtp_info,
    format_scale,
    format_session,
    format_supported,
    format_transport,
    parse_cseq,
    parse_range,
    parse_rtp_info,
    parse_scale,
    parse_session,
    parse_supported,
    parse_transport,
)


@pytest.mark.parametrize("value", [
    "RTP/AVP;unicast;client_port=41226-41227",
    "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=6095d7d7;mode=PLAY",
    "RTP/AVP/UDP;unicast;client_port=5000-5001;server_port=6970-6971;ssrc=0D1E2F30;mode=PLAY",
    "RTP/AVP;multicast;destination=239.1.2.3;port=5000-5001;ttl=16",
    "RTP/AVP/TCP;unicast;source=10.0.0.1;interleaved=2;x-dynamic-rate=1;blocksize=1450",
    "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1",
])
def test_transport_round_trip(value: str) -> None:
    assert format_transport(parse_transport(value)) == value


def test_transport_fields_and_unknown_params() -> None:
    (spec,) = parse_transport(' rtp/avp/tcp ; Unicast ; Interleaved = 4-5 ; mode="PLAY" ; Foo ; bar=baz ')
    assert spec.lower == "TCP" and spec.is_tcp and spec.delivery == "unicast"
    assert spec.interleaved == (4, 5) and spec.mode == "PLAY"
    assert spec.extra == (("Foo", None), ("bar", "baz"))
    built = TransportSpec(lower="TCP", interleaved=(0, 1), ssrc="1234ABCD")
    assert format_transport(built) == "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1234ABCD"


@pytest.mark.parametrize("value", ["", "RTP", "RTP/AVP/SCTP", "RTP/AVP;client_port=x-1",
                                   "RTP/AVP;client_port=70000", "RTP/AVP/TCP;interleaved=300",
                                   "RTP/AVP;client_port=5001-5000", "RTP/AVP;ttl=999"])
def test_transport_errors(value: str) -> None:
    with pytest.raises(HeaderParseError) as info:
        parse_transport(value)
    assert isinstance(info.value, RemoteProtocolError) and info.value.status_hint == 400


def test_session() -> None:
    assert parse_session("8134007897615700187;timeout=60") == SessionHeader("8134007897615700187", 60)
    assert parse_session(" abc ; Timeout = 30 ") == SessionHeader("abc", 30)
    assert parse_session("abc").timeout is None
    assert format_session(SessionHeader("abc", 60)) == "abc;timeout=60"
    for bad in ("", ";timeout=5", "abc;timeout=x"):
        with pytest.raises(HeaderParseError):
            parse_session(bad)


@pytest.mark.parametrize(("value", "expected"), [
    ("npt=0-", RangeHeader("npt", 0.0, None)),
    ("npt=0.000-", RangeHeader("npt", 0.0, None)),
    ("npt=now-", RangeHeader("npt", None, None, start_now=True)),
    ("npt=10-25.5", RangeHeader("npt", 10.0, 25.5)),
    ("npt=-30", RangeHeader("npt", None, 30.0)),
    ("npt=1:02:03.5-", RangeHeader("npt", 3723.5, None)),
    ("clock=19961108T142300Z-19961108T143520Z", RangeHeader("clock", "19961108T142300Z", "19961108T143520Z")),
    ("smpte=10:07:00-10:07:33:05.01", RangeHeader("smpte", "10:07:00", "10:07:33:05.01")),
    ("npt=5-;time=19970123T143720Z", RangeHeader("npt", 5.0, None, time="19970123T143720Z")),
    ("x-asf-packet=100-", RangeHeader("x-asf-packet", 100.0, None)),
    ("X-ASF-BYTE=2048-4096", RangeHeader("x-asf-byte", 2048.0, 4096.0)),
])
def test_range_parse(value: str, expected: RangeHeader) -> None:
    assert parse_range(value) == expected


def test_range_format() -> None:
    assert format_range(RangeHeader("npt", 0.0, None)) == "npt=0.000-"
    assert format_range(RangeHeader("npt", None, None, start_now=True)) == "npt=now-"
    assert format_range(parse_range("npt=1.5-20")) == "npt=1.500-20.000"
    assert format_range(parse_range("clock=19961108T142300Z-")) == "clock=19961108T142300Z-"


@pytest.mark.parametrize("value", ["npt", "npt=", "npt=-", "npt=abc-", "npt=1:99:00-", "npt=inf-", "=1-2"])
def test_range_errors(value: str) -> None:
    with pytest.raises(HeaderParseError):
        parse_range(value)


def test_rtp_info() -> None:
    value = "url=rtsp://h/a/stream=0;seq=29012;rtptime=3422541851, URL=rtsp://h/a,b/stream=1;Seq=1764"
    entries = parse_rtp_info(value)
    assert entries == [RtpInfoEntry("rtsp://h/a/stream=0", 29012, 3422541851),
                       RtpInfoEntry("rtsp://h/a,b/stream=1", 1764, None)]
    assert parse_rtp_info(format_rtp_info(entries)) == entries
    for bad in ("seq=1", "url=x;seq=70000", "url=x;rtptime=-1"):
        with pytest.raises(HeaderParseError):
            parse_rtp_info(bad)


def test_supported_scale_cseq() -> None:
    assert parse_supported("com.microsoft.wm.eosmsg, com.microsoft.wm.sswitch", "dlna.rtx") == [
        "com.microsoft.wm.eosmsg", "com.microsoft.wm.sswitch", "dlna.rtx"]
    assert format_supported(["a", "b"]) == "a, b"
    assert parse_scale(" -2.0 ") == -2.0 and format_scale(0.5) == "0.5" and format_scale(1.0) == "1"
    assert parse_cseq(" 17 ") == 17
    for bad in ("nan", "x", "inf"):
        with pytest.raises(HeaderParseError):
            parse_scale(bad)
    with pytest.raises(HeaderParseError):
        parse_cseq("1.5")
