"""Every raw fixture gives the same events fed whole, byte by byte, in odd chunks and with
trailing data, and the events carry what the capture says."""

from __future__ import annotations

import pytest

from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed, InterleavedFrame, Request, Response
from proxyd.rtsp.headers import parse_rtp_info, parse_session, parse_supported, parse_transport
from proxyd.rtp.sdp import parse_sdp

from .feeding import drain, feed_bytewise, feed_chunks, feed_whole, load

FIXTURES = {
    "gst_player_requests.rtsp": Role.SERVER,
    "gst_origin_responses.rtsp": Role.CLIENT,
    "wmp_describe_getcontentinfo.rtsp": Role.SERVER,
    "origin_endofstream.rtsp": Role.CLIENT,
    "origin_announce.rtsp": Role.CLIENT,
    "interleaved_play.rtsp": Role.CLIENT,
    "lenient_lf_only.rtsp": Role.SERVER,
}


def summary(event) -> tuple:
    if isinstance(event, Request):
        return ("request", event.method, event.uri, event.cseq, len(event.body))
    if isinstance(event, Response):
        return ("response", event.status, event.cseq, len(event.body))
    assert isinstance(event, InterleavedFrame)
    return ("frame", event.channel, len(event.payload))


@pytest.mark.parametrize("name", sorted(FIXTURES))
@pytest.mark.parametrize("other_role", [False, True])
def test_feeding_strategies_agree(name: str, other_role: bool) -> None:
    data = load(name)
    role = FIXTURES[name]
    if other_role:  # both roles parse both directions
        role = Role.CLIENT if role is Role.SERVER else Role.SERVER
    whole = feed_whole(data, role)
    assert whole
    assert feed_bytewise(data, role) == whole
    assert feed_chunks(data, role, 7) == whole
    assert feed_chunks(data, role, 1000) == whole


@pytest.mark.parametrize("name", sorted(FIXTURES))
@pytest.mark.parametrize("trailer", [b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSe", b"$\x00\x05ab", b"$", b"RTSP/1.0 200"])
def test_trailing_partial_data_waits(name: str, trailer: bytes) -> None:
    data = load(name)
    conn = RtspConnection(FIXTURES[name])
    conn.receive_data(data + trailer)
    assert drain(conn) == feed_whole(data, FIXTURES[name])
    assert conn.next_event() is NEED_DATA


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_eof_after_whole_fixture_is_clean_close(name: str) -> None:
    conn = RtspConnection(FIXTURES[name])
    conn.receive_data(load(name))
    conn.receive_data(b"")
    events = drain(conn)
    assert events == feed_whole(load(name), FIXTURES[name])
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_gst_player_requests() -> None:
    events = feed_whole(load("gst_player_requests.rtsp"), Role.SERVER)
    assert [summary(e) for e in events] == [
        ("request", "OPTIONS", "rtsp://127.0.0.1:8554/test", 1, 0),
        ("request", "DESCRIBE", "rtsp://127.0.0.1:8554/test", 2, 0),
        ("request", "SETUP", "rtsp://127.0.0.1:8554/test/stream=0", 3, 0),
        ("request", "SETUP", "rtsp://127.0.0.1:8554/test/stream=1", 4, 0),
        ("request", "PLAY", "rtsp://127.0.0.1:8554/test/", 5, 0),
    ]
    udp, tcp = parse_transport(events[2].headers.get("transport"))
    assert (udp.lower, udp.client_port, tcp.lower, tcp.interleaved) == ("UDP", (41226, 41227), "TCP", (0, 1))
    assert events[4].headers.get("Range") == "npt=0-"


def test_gst_origin_responses() -> None:
    events = feed_whole(load("gst_origin_responses.rtsp"), Role.CLIENT)
    assert [summary(e)[:3] for e in events] == [("response", 200, n) for n in range(1, 6)]
    describe = events[1]
    assert describe.headers.get("content-base") == "rtsp://127.0.0.1:8554/test/"
    sdp = parse_sdp(describe.body)
    assert sdp.to_bytes() == describe.body
    assert sdp.media_urls("rtsp://127.0.0.1:8554/test/") == [
        "rtsp://127.0.0.1:8554/test/stream=0",
        "rtsp://127.0.0.1:8554/test/stream=1",
    ]
    setup = parse_transport(events[2].headers.get("Transport"))[0]
    assert (setup.server_port, setup.ssrc, setup.mode) == ((51802, 51803), "6A5E4C3B", "PLAY")
    assert parse_session(events[2].headers.get("Session")).timeout == 60
    info = parse_rtp_info(events[4].headers.get("RTP-Info"))
    assert [(i.seq, i.rtptime) for i in info] == [(29012, 3422541851), (1764, 2175433070)]


def test_wmp_describe_and_getcontentinfo() -> None:
    describe, probe = feed_whole(load("wmp_describe_getcontentinfo.rtsp"), Role.SERVER)
    assert describe.method == "DESCRIBE" and describe.cseq == 1
    assert "com.microsoft.wm.eosmsg" in parse_supported(*describe.headers.get_all("Supported"))
    assert describe.headers.get("user-agent").startswith("WMPlayer/11.0")
    assert probe.method == "GET_PARAMETER" and probe.body == b"\x00"
    assert probe.headers.get("Content-Type") == "application/x-wms-getcontentinfo"


def test_origin_endofstream() -> None:
    (eos,) = feed_whole(load("origin_endofstream.rtsp"), Role.CLIENT)
    assert eos.method == "SET_PARAMETER" and eos.cseq == 9
    assert eos.headers.get("x-notice") == '2101 "End-of-Stream Reached"'
    assert eos.body.split(b"\r\n")[1] == b"EOF: true"
    assert [e.seq for e in parse_rtp_info(eos.headers.get("RTP-Info"))] == [26968, 46497]


def test_origin_announce_carries_sdp() -> None:
    (announce,) = feed_whole(load("origin_announce.rtsp"), Role.CLIENT)
    assert announce.method == "ANNOUNCE"
    sdp = parse_sdp(announce.body)
    assert [m.kind for m in sdp.media] == ["audio", "video", "application"]
    assert sdp.duration_seconds == pytest.approx(57.312)


def test_interleaved_frames_between_messages() -> None:
    events = feed_whole(load("interleaved_play.rtsp"), Role.CLIENT)
    assert [summary(e) for e in events] == [
        ("frame", 0, 34),
        ("response", 200, 5, 0),
        ("frame", 0, 1414),
        ("frame", 0, 314),
        ("frame", 1, 28),
        ("frame", 0, 0),
        ("request", "SET_PARAMETER", "rtsp://origin.example/ServerSidePlaylist.wsx", 9, 70),
        ("frame", 0, 64),
    ]
    assert all(type(e.payload) is bytes for e in events if isinstance(e, InterleavedFrame))


def test_lenient_input() -> None:
    setup, packetpair, response = feed_whole(load("lenient_lf_only.rtsp"), Role.SERVER)
    assert setup.method == "setup" and setup.cseq == 3  # method tokens are case-sensitive: kept as sent
    assert setup.headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
    assert setup.headers.get("X-Folded") == "first part second part"
    assert setup.headers.get("user-agent") == "LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)"
    assert packetpair.body == b"type: high-entropy-packetpair variable-size"
    assert (response.status, response.cseq) == (200, 12)


def test_a_folded_line_of_only_whitespace_adds_nothing_to_the_value() -> None:
    """Found by the rtsp_client fuzz target: the value read was "first part " (a trailing space no
    unfolded value has), so re-sending it changed it."""
    (request,) = feed_whole(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Folded: first part\r\n\t \r\n second\r\n\t\r\n\r\n",
                            Role.SERVER)
    assert request.headers.get("X-Folded") == "first part second"
