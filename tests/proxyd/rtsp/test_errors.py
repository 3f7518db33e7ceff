"""Malformed input raises RemoteProtocolError with the status the caller should answer."""

from __future__ import annotations

import pytest

from proxyd.rtsp.connection import ParserLimits, Role, RtspConnection
from proxyd.rtsp.errors import LocalProtocolError, RemoteProtocolError
from proxyd.rtsp.events import NEED_DATA

from .feeding import feed_bytewise, feed_whole

OK_HEAD = b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\n"

CASES = [
    # (input, status_hint, reason, message fragment)
    (b"OPTIONS rtsp://h/\r\nCSeq: 1\r\n\r\n", 400, "Bad Request", "malformed request line"),
    (b"OPTIONS  RTSP/1.0\r\nCSeq: 1\r\n\r\n", 400, "Bad Request", "malformed request line"),
    (b"OPTIONS rtsp://h/ RTSP/2.0\r\nCSeq: 1\r\n\r\n", 505, "RTSP Version not supported", "RTSP/2.0"),
    (b"GET / HTTP/1.1\r\nCSeq: 1\r\n\r\n", 505, "RTSP Version not supported", "HTTP/1.1"),
    (b"OPTIONS rtsp://h/ RTSP1.0\r\nCSeq: 1\r\n\r\n", 400, "Bad Request", "malformed request line"),
    (b"RTSP/1.1 200 OK\r\nCSeq: 1\r\n\r\n", 505, "RTSP Version not supported", "RTSP/1.1"),
    (b"RTSP/1.0 2000 OK\r\nCSeq: 1\r\n\r\n", 400, "Bad Request", "malformed status line"),
    (b"OPTIONS rtsp://h/ RTSP/1.0\r\n\r\n", 400, "Bad Request", "CSeq missing"),
    (b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: one\r\n\r\n", 400, "Bad Request", "malformed CSeq"),
    (b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: -1\r\n\r\n", 400, "Bad Request", "malformed CSeq"),
    (b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\nCSeq: 2\r\n\r\n", 400, "Bad Request", "conflicting CSeq"),
    (OK_HEAD + b"no colon here\r\n\r\n", 400, "Bad Request", "malformed header line"),
    (OK_HEAD + b"Bad Name: x\r\n\r\n", 400, "Bad Request", "malformed header line"),
    (OK_HEAD + b"X: a\rb\r\n\r\n", 400, "Bad Request", "malformed header line"),
    (b"OPTIONS rtsp://h/ RTSP/1.0\r\n folded: first\r\nCSeq: 1\r\n\r\n", 400, "Bad Request", "folded"),
    (OK_HEAD + b"X: a\x00b\r\n\r\n", 400, "Bad Request", "NUL"),
    (OK_HEAD + b"Content-Length: ten\r\n\r\n", 400, "Bad Request", "malformed Content-Length"),
    (OK_HEAD + b"Content-Length: -5\r\n\r\n", 400, "Bad Request", "malformed Content-Length"),
    (OK_HEAD + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "Bad Request", "conflicting Content-Length"),
    (OK_HEAD + b"Content-Length: 1048577\r\n\r\n", 413, "Request Entity Too Large", "max_body_bytes"),
]


@pytest.mark.parametrize(("data", "status", "reason", "fragment"), CASES)
@pytest.mark.parametrize("feed", [feed_whole, feed_bytewise])
def test_malformed_input(data: bytes, status: int, reason: str, fragment: str, feed) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        feed(data, Role.SERVER)
    assert info.value.status_hint == status
    assert info.value.reason == reason
    assert fragment in str(info.value)


def test_header_block_over_limit_is_400_request_header_too_large() -> None:
    limits = ParserLimits(max_header_bytes=256)
    data = OK_HEAD + b"X-Pad: " + b"a" * 300 + b"\r\n\r\n"
    for feed in (feed_whole, feed_bytewise):
        with pytest.raises(RemoteProtocolError) as info:
            feed(data, Role.SERVER, limits)
        assert (info.value.status_hint, info.value.reason) == (400, "Request Header Too Large")


def test_unterminated_header_block_is_refused_once_over_limit() -> None:
    conn = RtspConnection(Role.SERVER, ParserLimits(max_header_bytes=64))
    conn.receive_data(b"OPTIONS rtsp://h/ RTSP/1.0\r\nX: " + b"a" * 20)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"a" * 40)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reason == "Request Header Too Large"


def test_too_many_headers() -> None:
    data = OK_HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(10)) + b"\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        feed_whole(data, Role.SERVER, ParserLimits(max_headers=8))
    assert (info.value.status_hint, info.value.reason) == (400, "Request Header Too Large")
    assert len(feed_whole(data, Role.SERVER, ParserLimits(max_headers=11))) == 1


def test_uri_over_limit_is_414() -> None:
    data = b"DESCRIBE rtsp://h/" + b"x" * 100 + b" RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        feed_whole(data, Role.SERVER, ParserLimits(max_uri_bytes=64))
    assert info.value.status_hint == 414


def test_frame_over_limit_is_413() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        feed_whole(b"$\x00\x04\x01" + b"x" * 1025, Role.CLIENT, ParserLimits(max_frame_bytes=1024))
    assert info.value.status_hint == 413


def test_unknown_method_is_parsed_not_refused() -> None:
    (request,) = feed_whole(b"RECORD_X rtsp://h/ RTSP/1.0\r\nCSeq: 4\r\n\r\n", Role.SERVER)
    assert request.method == "RECORD_X"  # 501 is the dispatcher's call


def test_response_without_cseq_is_accepted() -> None:
    (response,) = feed_whole(b"RTSP/1.0 454 Session Not Found\r\n\r\n", Role.CLIENT)
    assert (response.status, response.reason, response.cseq) == (454, "Session Not Found", None)


@pytest.mark.parametrize("partial", [b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\n", OK_HEAD
                                     + b"Content-Length: 5\r\n\r\nab", b"$\x01\x00\x10abc", b"$\x01"])
def test_eof_in_the_middle_of_a_message(partial: bytes) -> None:
    conn = RtspConnection(Role.SERVER)
    conn.receive_data(partial)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="closed in the middle"):
        conn.next_event()


def test_broken_connection_keeps_raising() -> None:
    conn = RtspConnection(Role.SERVER)
    conn.receive_data(b"garbage\r\n\r\nOPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.broken
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_receive_after_eof_is_a_local_error() -> None:
    conn = RtspConnection(Role.SERVER)
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
