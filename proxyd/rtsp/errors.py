"""RTSP error types.

RemoteProtocolError is the peer's fault and carries the status the caller should answer with
(`status_hint`, `reason`); LocalProtocolError means our own code tried to send something invalid.

Status hints used by the parser (RFC 2326 §7.1.1 / §11, which inherit HTTP/1.1's table):
  400 Bad Request              malformed start line, header, CSeq, Content-Length, framing;
                               header block over max_header_bytes or max_headers ("Request Header
                               Too Large": RTSP/1.0 has no 431, and 413 is about the entity body)
  413 Request Entity Too Large Content-Length over max_body_bytes, or an interleaved frame over
                               max_frame_bytes
  414 Request-URI Too Large    request-URI over max_uri_bytes
  505 RTSP Version not supported
501 is never raised here: any method token parses, the dispatcher decides what it implements.
"""

from __future__ import annotations

REASONS = {
    400: "Bad Request",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    505: "RTSP Version not supported",
}


class RtspError(Exception):
    """Base class: every error raised by proxyd.rtsp."""

    def __init__(self, message: str, *, status_hint: int = 400, reason: str | None = None) -> None:
        super().__init__(message)
        self.status_hint = status_hint
        self.reason = reason or REASONS.get(status_hint, "Bad Request")


class RemoteProtocolError(RtspError):
    """The peer sent something we cannot accept; answer `status_hint` and close."""


class LocalProtocolError(RtspError):
    """We were asked to send something invalid (a bug on our side, not the peer's)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_hint=500, reason="Internal Server Error")


class HeaderParseError(RemoteProtocolError):
    """A structured header value (Transport, Range, Session, ...) is malformed."""
