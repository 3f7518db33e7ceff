"""SDP: byte-faithful round trip, attribute lookup, control URL resolution and rewriting, live/VOD."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyd.rtp.errors import SdpError
from proxyd.rtp.sdp import parse_sdp
from proxyd.rtsp.connection import Role, RtspConnection

RTSP_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtsp"


def body_of(fixture: str) -> bytes:
    """The SDP body carried by the first message with one in an RTSP fixture."""
    conn = RtspConnection(Role.CLIENT)
    conn.receive_data((RTSP_FIXTURES / fixture).read_bytes())
    while True:
        event = conn.next_event()
        if getattr(event, "body", b"").startswith(b"v=0"):
            return event.body


GST = body_of("gst_origin_responses.rtsp")
WMS = body_of("origin_announce.rtsp")

MIXED = (b"v=0\no=- 5 5 IN IP4 10.0.0.9\r\ns=mixed endings\nc=IN IP4 10.0.0.9\r\nt=0 0\n"
         b"a=x-qt-text-nam:caf\xc3\xa9 \xff raw\r\nnot an sdp line\nm=audio 0 RTP/AVP 0\na=control:track1")


@pytest.mark.parametrize("body", [GST, WMS, MIXED])
def test_unchanged_sdp_serializes_byte_identically(body: bytes) -> None:
    assert parse_sdp(body).to_bytes() == body
    assert parse_sdp(body).rewrite().to_bytes() == body


def test_gstreamer_sdp_media() -> None:
    sdp = parse_sdp(GST)
    video, audio = sdp.media
    assert (video.kind, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", ["96"])
    assert video.rtpmap(96).encoding == "H264" and video.clock_rate == 90000
    assert video.fmtp(96).startswith("packetization-mode=1;profile-level-id=42c01f")
    assert audio.rtpmap(97).channels == 2 and audio.clock_rate == 48000
    assert audio.rtpmap(96) is None and audio.fmtp(96) is None
    assert sdp.attribute("tool") == "GStreamer" and sdp.control == "*"
    assert not sdp.is_live and sdp.duration_seconds == 30.0 and sdp.has_duration


def test_windows_media_sdp() -> None:
    sdp = parse_sdp(WMS)
    assert [m.attribute("stream") for m in sdp.media] == ["1", "2", "65536"]
    assert sdp.media[2].rtpmap(97).encoding == "x-wms-rtx" and sdp.media[0].clock_rate == 1000
    assert len(sdp.attributes("pgmpu")) == 2 and sdp.attribute("maxps") == "1518"
    assert sdp.media_urls("rtsp://ignored/") == [
        "rtsp://origin.example/ServerSidePlaylist.wsx/audio",
        "rtsp://origin.example/ServerSidePlaylist.wsx/video",
        "rtsp://origin.example/ServerSidePlaylist.wsx/rtx",
    ]


@pytest.mark.parametrize(("session_control", "media_control", "aggregate", "media"), [
    (None, None, "rtsp://h/c", "rtsp://h/c"),
    ("*", "trackID=1", "rtsp://h/c", "rtsp://h/c/trackID=1"),
    ("rtsp://o/x/", "audio", "rtsp://o/x/", "rtsp://o/x/audio"),
    ("sub", "*", "rtsp://h/c/sub", "rtsp://h/c/sub"),
    (None, "rtsp://elsewhere/a", "rtsp://h/c", "rtsp://elsewhere/a"),
])
def test_control_url_resolution(session_control, media_control, aggregate, media) -> None:
    lines = ["v=0", "o=- 1 1 IN IP4 h", "s=x", "t=0 0"]
    if session_control is not None:
        lines.append(f"a=control:{session_control}")
    lines.append("m=video 0 RTP/AVP 96")
    if media_control is not None:
        lines.append(f"a=control:{media_control}")
    sdp = parse_sdp(("\r\n".join(lines) + "\r\n").encode())
    assert sdp.aggregate_url("rtsp://h/c") == aggregate
    assert sdp.media_urls("rtsp://h/c") == [media]


def test_rewrite_controls_and_addresses_only() -> None:
    sdp = parse_sdp(WMS)

    def to_proxy(url: str) -> str:
        return url.replace("rtsp://origin.example/", "rtsp://proxy:8554/vod/")

    rewritten = sdp.rewrite(to_proxy, address="192.0.2.10")
    out = rewritten.to_bytes()
    assert b"origin.example" not in out and b"10.1.2.3" not in out
    assert b"a=control:rtsp://proxy:8554/vod/ServerSidePlaylist.wsx/\r\n" in out
    assert b"o=- 202611251200 202611251200 IN IP4 192.0.2.10\r\n" in out
    assert b"c=IN IP4 192.0.2.10\r\n" in out
    assert rewritten.media_urls("x") == [f"rtsp://proxy:8554/vod/ServerSidePlaylist.wsx/{c}"
                                         for c in ("audio", "video", "rtx")]
    # every other line is untouched, in order
    changed = [a for a, b in zip(WMS.split(b"\r\n"), out.split(b"\r\n"), strict=True) if a != b]
    assert len(changed) == 3
    assert parse_sdp(GST).rewrite(to_proxy).to_bytes() == GST  # relative controls stay relative


def test_rewrite_to_ipv6_address() -> None:
    out = parse_sdp(GST).rewrite(address="::1").to_bytes()
    assert b"o=- 1188340656180883 1 IN IP6 ::1\r\n" in out and b"c=IN IP6 ::1\r\n" in out


@pytest.mark.parametrize(("extra", "live", "duration"), [
    ("a=range:npt=now-", True, None),
    ("a=range:npt=0-", True, None),
    ("a=type:notseekable,broadcast", True, None),
    ("a=range:npt=0-120.5", False, 120.5),
    ("a=range:npt=10-70", False, 60.0),
    ("a=range:clock=19961108T142300Z-19961108T143520Z", False, None),
    ("a=range:garbage", False, None),
    ("a=recvonly", False, None),
])
def test_live_and_duration(extra: str, live: bool, duration) -> None:
    sdp = parse_sdp(f"v=0\r\ns=x\r\nt=0 0\r\n{extra}\r\nm=video 0 RTP/AVP 96\r\n".encode())
    assert sdp.is_live is live
    assert sdp.duration_seconds == duration and sdp.has_duration is (duration is not None)


def test_media_level_range() -> None:
    sdp = parse_sdp(b"v=0\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=range:npt=0-5\r\nm=audio 0 RTP/AVP 0\r\n"
                    b"a=range:npt=0-7.5\r\n")
    assert sdp.duration_seconds == 7.5


def test_only_cr_lf_end_lines() -> None:
    body = "v=0\r\ns=title \x1c with \x85 odd\u2028 separators\r\nm=audio 0 RTP/AVP 0".encode()
    sdp = parse_sdp(body)
    assert [line.kind for line in sdp.lines] == ["v", "s"] and len(sdp.media) == 1
    assert sdp.to_bytes() == body


@pytest.mark.parametrize("body", [b"", b"   \r\n", b"s=no version\r\nv=0\r\n"])
def test_invalid_sdp(body: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(body)


def test_static_payload_clock_rate_and_bad_rtpmap() -> None:
    sdp = parse_sdp(b"v=0\r\nm=audio 0 RTP/AVP 8\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264\r\n"
                    b"m=application 0 RTP/AVP x\r\n")
    pcma, broken, odd = sdp.media
    assert pcma.clock_rate == 8000
    assert broken.rtpmap(96) is None and broken.clock_rate is None
    assert odd.clock_rate is None


def test_a_rooted_media_control_below_a_non_rtsp_presentation_url_resolves():
    """Found by the sdp fuzz target: an origin's SDP naming its presentation with another scheme
    made media_urls() raise the URL parser's error (a traceback where the SDP is read); the SETUP
    of such a URL fails at the origin instead."""
    sdp = parse_sdp(b"v=0\r\na=control:http://h/x\r\nm=video 0 RTP/AVP 96\r\na=control:/track1\r\n")
    assert sdp.media_urls("rtsp://h/x") == ["http://h/track1"]
