"""Strict serialization, CSeq assignment and response matching, in both roles."""

from __future__ import annotations

import pytest

from proxyd.rtsp.connection import ParserLimits, Role, RtspConnection
from proxyd.rtsp.errors import LocalProtocolError
from proxyd.rtsp.events import Headers, Request, Response

from .feeding import drain, feed_whole


def test_send_request_assigns_cseq_and_exact_bytes() -> None:
    conn = RtspConnection(Role.CLIENT)
    wire = conn.send_request(Request("GET_PARAMETER", "rtsp://o/clip.wmv",
                                     Headers([("Content-Type", "application/x-wms-getcontentinfo")]), b"\x00"))
    assert wire == (b"GET_PARAMETER rtsp://o/clip.wmv RTSP/1.0\r\nCSeq: 1\r\n"
                    b"Content-Type: application/x-wms-getcontentinfo\r\nContent-Length: 1\r\n\r\n\x00")
    second = conn.send_request(Request("OPTIONS", "*"))
    assert second == b"OPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n"


def test_explicit_cseq_is_kept_and_advances_the_counter() -> None:
    conn = RtspConnection(Role.SERVER)
    conn.send_request(Request("SET_PARAMETER", "rtsp://p/x", Headers([("CSeq", "41")])))
    wire = conn.send_request(Request("SET_PARAMETER", "rtsp://p/x"))
    assert b"CSeq: 42\r\n" in wire


def test_send_round_trips_through_the_parser() -> None:
    sender, receiver = RtspConnection(Role.SERVER), RtspConnection(Role.CLIENT)
    body = b"Session: 81\r\nEOF: true\r\n"
    request = Request("SET_PARAMETER", "rtsp://p/clip.wmv",
                      Headers([("Content-Type", "application/x-wms-extension-cmd"), ("Session", "81")]), body)
    receiver.receive_data(sender.send_request(request))
    (received,) = drain(receiver)
    assert (received.method, received.uri, received.body, received.cseq) == ("SET_PARAMETER", request.uri, body, 1)
    assert received.headers.get("content-length") == str(len(body))


def test_response_matching_in_server_role() -> None:
    """A proxy's player-facing side sends EndOfStream and matches the player's answer."""
    conn = RtspConnection(Role.SERVER)
    conn.send_request(Request("SET_PARAMETER", "rtsp://p/clip", Headers([("Session", "7")])))
    assert conn.pending_request(1).method == "SET_PARAMETER"
    conn.receive_data(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nSession: 7\r\n\r\n")
    (response,) = drain(conn)
    assert conn.pending_request(response.cseq).headers.get("Session") == "7"
    assert conn.pending_request(2) is None


def test_pipelined_requests_match_their_own_responses() -> None:
    conn = RtspConnection(Role.CLIENT)
    for uri in ("rtsp://o/c/audio", "rtsp://o/c/video"):
        conn.send_request(Request("SETUP", uri))
    conn.receive_data(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n")
    drain(conn)
    assert conn.pending_request(2).uri == "rtsp://o/c/video"
    assert conn.pending_request(1).uri == "rtsp://o/c/audio"  # still waiting
    conn.receive_data(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
    drain(conn)
    assert conn.pending_request(1).uri == "rtsp://o/c/audio"
    assert conn.pending_request(2) is None


def test_pending_requests_are_bounded() -> None:
    conn = RtspConnection(Role.CLIENT, ParserLimits(max_pending_requests=2))
    conn.send_request(Request("OPTIONS", "*"))
    conn.send_request(Request("OPTIONS", "*"))
    with pytest.raises(LocalProtocolError, match="too many"):
        conn.send_request(Request("OPTIONS", "*"))


def test_send_response_sets_content_length_from_body() -> None:
    conn = RtspConnection(Role.SERVER)
    headers = Headers([("CSeq", "2"), ("Content-Length", "999"), ("Content-Type", "application/sdp")])
    wire = conn.send_response(Response(200, "OK", headers, b"v=0\r\n"))
    assert wire == (b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 5\r\nContent-Type: application/sdp\r\n"
                    b"\r\nv=0\r\n")
    empty = conn.send_response(Response(200, "OK", Headers([("CSeq", "3"), ("Content-Length", "5")])))
    assert empty == b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Length: 0\r\n\r\n"
    assert feed_whole(empty, Role.CLIENT)[0].body == b""


def test_send_frame() -> None:
    conn = RtspConnection(Role.SERVER)
    assert conn.send_frame(1, b"abc") == b"$\x01\x00\x03abc"
    assert feed_whole(conn.send_frame(3, b"x" * 65535), Role.CLIENT)[0].payload == b"x" * 65535
    with pytest.raises(LocalProtocolError):
        conn.send_frame(256, b"")
    with pytest.raises(LocalProtocolError):
        conn.send_frame(0, b"x" * 65536)


@pytest.mark.parametrize("request_", [
    Request("BAD METHOD", "rtsp://h/"),
    Request("OPTIONS", "rtsp://h/ x"),
    Request("OPTIONS", "rtsp://h/", Headers([("X-Evil", "a\r\nInjected: 1")])),
    Request("OPTIONS", "rtsp://h/", Headers([("Bad Name", "v")])),
    Request("OPTIONS", "rtsp://h/", Headers([("CSeq", "abc")])),
])
def test_invalid_outgoing_request_is_a_local_error(request_: Request) -> None:
    with pytest.raises(LocalProtocolError):
        RtspConnection(Role.CLIENT).send_request(request_)


def test_invalid_outgoing_response_is_a_local_error() -> None:
    conn = RtspConnection(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        conn.send_response(Response(20, "OK"))
    with pytest.raises(LocalProtocolError):
        conn.send_response(Response(200, "OK\r\nX: y"))


def test_headers_api() -> None:
    h = Headers([("CSeq", "1"), ("Supported", "a"), ("supported", "b")])
    assert h.get("SUPPORTED") == "a" and h.get_all("Supported") == ["a", "b"] and "cseq" in h
    assert h.get("missing", "d") == "d" and 5 not in h
    replaced = h.set("SUPPORTED", "c")
    assert replaced.items() == (("CSeq", "1"), ("SUPPORTED", "c"))
    assert h.get_all("supported") == ["a", "b"]  # immutable
    assert h.remove("supported").items() == (("CSeq", "1"),)
    assert h.set("Session", "9").items()[-1] == ("Session", "9")
