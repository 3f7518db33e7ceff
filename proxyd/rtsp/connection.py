"""RtspConnection: h11-shaped sans-IO RTSP/1.0 connection (RFC 2326), either role.

Both roles receive requests *and* responses on one byte stream, with '$' interleaved frames
allowed between any two messages. Sending is strict (CRLF, header spellings as given); receiving
is lenient (any header case, LF-only line ends, extra whitespace, folded lines).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .buffer import ReceiveBuffer
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    NEED_DATA,
    ConnectionClosed,
    Headers,
    InterleavedFrame,
    Latin1Text,
    NeedData,
    Request,
    Response,
    wire_bytes,
)
from .grammar import (
    FORBIDDEN_VALUE_RE,
    HEADER_FIELD_RE,
    REQUEST_LINE_RE,
    RTSP_VERSION,
    STATUS_LINE_RE,
    TOKEN_STR_RE,
    URI_SEND_RE,
    VERSION_RE,
)

HEADER_TOO_LARGE = "Request Header Too Large"


class Role(enum.Enum):
    SERVER = "server"  # faces players: receives their requests, sends e.g. EndOfStream to them
    CLIENT = "client"  # faces an origin: sends requests, receives ANNOUNCE / SET_PARAMETER from it


@dataclass(frozen=True)
class ParserLimits:
    max_header_bytes: int = 8192  # start line + headers + blank line
    max_headers: int = 64
    max_body_bytes: int = 1 << 20
    max_frame_bytes: int = 65535  # interleaved payload (the wire length is 16 bits anyway)
    max_uri_bytes: int = 4096
    max_pending_requests: int = 64  # requests sent and not yet answered


@dataclass(slots=True)
class _Head:
    """A parsed start line + headers waiting for its body."""

    request_line: tuple[str, str] | None  # (method, uri) for a request
    status_line: tuple[int, str] | None  # (status, reason) for a response
    headers: Headers
    content_length: int


class RtspConnection:
    def __init__(self, role: Role, limits: ParserLimits | None = None) -> None:
        self.role = role
        self.limits = limits or ParserLimits()
        self.broken = False
        self.their_eof = False
        self._buffer = ReceiveBuffer()
        self._head: _Head | None = None
        self._error: RemoteProtocolError | None = None
        self._next_cseq = 1
        self._pending: dict[int, Request] = {}
        self._answered: tuple[int, Request] | None = None
        # Buffered bytes needed before parsing can make progress (a frame's or body's full length):
        # data trickling in is then not re-examined piece by piece.
        self._wanted = 0

    # ---- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the peer closed its side."""
        if self.their_eof:
            if data:
                raise LocalProtocolError("receive_data() after EOF")
            return
        if data:
            self._buffer.append(data)
        else:
            self.their_eof = True

    def next_event(self) -> Request | Response | InterleavedFrame | ConnectionClosed | NeedData:
        if len(self._buffer) < self._wanted and not self.their_eof:
            return NEED_DATA
        self._wanted = 0
        if self._head is None and self._error is None:
            frame = self._buffer.pop_frame(self.limits.max_frame_bytes)  # fast path for media
            if frame is not None:
                return frame
        if self._error is not None:
            raise self._error
        try:
            event = self._next_event()
        except RemoteProtocolError as exc:
            self.broken = True
            self._error = exc
            raise
        if isinstance(event, Response):
            self._match_response(event)
        return event

    def _next_event(self) -> Request | Response | InterleavedFrame | ConnectionClosed | NeedData:
        buf = self._buffer
        if self._head is None:
            buf.skip_blank_lines()
            if not buf:
                return ConnectionClosed() if self.their_eof else self._need_more(1)
            if buf.first_byte() == 0x24:  # '$'
                return self._next_frame()
            end = buf.find_header_end()
            if max(end, len(buf) if end < 0 else 0) > self.limits.max_header_bytes:
                raise RemoteProtocolError("header block exceeds max_header_bytes", reason=HEADER_TOO_LARGE)
            if end < 0:
                return self._need_more(len(buf) + 1)
            self._head = self._parse_head(buf.take(end))
        head = self._head
        if len(buf) < head.content_length:
            return self._need_more(head.content_length)
        body = buf.take(head.content_length) if head.content_length else b""
        self._head = None
        if head.request_line is not None:
            return Request(head.request_line[0], head.request_line[1], head.headers, body)
        status, reason = head.status_line or (0, "")
        return Response(status, reason, head.headers, body)

    def _need_more(self, wanted: int) -> NeedData:
        if self.their_eof:
            raise RemoteProtocolError("connection closed in the middle of a message")
        self._wanted = wanted
        return NEED_DATA

    def _next_frame(self) -> InterleavedFrame | NeedData:
        header = self._buffer.peek_frame_header()
        if header is None:
            return self._need_more(4)
        length = header[1]
        if length > self.limits.max_frame_bytes:
            raise RemoteProtocolError(
                f"interleaved frame of {length} bytes exceeds max_frame_bytes", status_hint=413
            )
        return self._buffer.pop_frame(length) or self._need_more(4 + length)

    def _parse_head(self, raw: bytes) -> _Head:
        lines = raw.split(b"\n")
        # raw ends with the blank line: drop the two trailing empty pieces' worth
        while lines and lines[-1] in (b"", b"\r"):
            lines.pop()
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        if b"\x00" in raw:
            raise RemoteProtocolError("NUL byte in message head")
        start = lines[0]
        headers = self._parse_headers(lines[1:])
        request_line = status_line = None
        if start.startswith(b"RTSP/"):
            status_line = self._parse_status_line(start)
        else:
            request_line = self._parse_request_line(start)
            self._check_request_cseq(headers)
        return _Head(request_line, status_line, headers, self._content_length(headers))

    def _parse_request_line(self, line: bytes) -> tuple[str, str]:
        match = REQUEST_LINE_RE.fullmatch(line)
        if match is None:
            raise RemoteProtocolError("malformed request line")
        version = match["version"]
        if version != RTSP_VERSION:
            if VERSION_RE.fullmatch(version):
                raise RemoteProtocolError(f"unsupported version {version.decode('ascii')}", status_hint=505)
            raise RemoteProtocolError("malformed request line")
        uri = match["uri"]
        if len(uri) > self.limits.max_uri_bytes:
            raise RemoteProtocolError("request-URI exceeds max_uri_bytes", status_hint=414)
        return match["method"].decode("ascii"), _decode(uri)

    def _parse_status_line(self, line: bytes) -> tuple[int, str]:
        match = STATUS_LINE_RE.fullmatch(line)
        if match is None:
            raise RemoteProtocolError("malformed status line")
        if match["version"] != RTSP_VERSION:
            raise RemoteProtocolError(
                f"unsupported version {match['version'].decode('ascii')}", status_hint=505
            )
        return int(match["status"]), _decode((match["reason"] or b"").strip())

    def _parse_headers(self, lines: list[bytes]) -> Headers:
        items: list[list] = []  # [name, raw value bytes]: decoded once, folded lines included
        for line in lines:
            if line[:1] in (b" ", b"\t"):  # obsolete line folding: continue the previous value
                if not items:
                    raise RemoteProtocolError("folded header line without a header")
                continuation = line.strip()
                if continuation:  # a line of only whitespace is just folding: it adds nothing
                    items[-1][1] = items[-1][1] + b" " + continuation if items[-1][1] else continuation
                continue
            match = HEADER_FIELD_RE.fullmatch(line)
            if match is None:
                raise RemoteProtocolError("malformed header line")
            if len(items) >= self.limits.max_headers:
                raise RemoteProtocolError("more than max_headers header lines", reason=HEADER_TOO_LARGE)
            items.append([match["name"].decode("ascii"), match["value"]])
        return Headers((name, _decode(value)) for name, value in items)

    @staticmethod
    def _check_request_cseq(headers: Headers) -> None:
        values = {v.strip() for v in headers.get_all("CSeq")}
        if len(values) != 1:
            raise RemoteProtocolError("CSeq missing" if not values else "conflicting CSeq headers")
        value = values.pop()
        if not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise RemoteProtocolError("malformed CSeq")

    def _content_length(self, headers: Headers) -> int:
        values = {v.strip() for v in headers.get_all("Content-Length")}
        if not values:
            return 0  # RFC 2326 §12.14: absent means no body
        if len(values) != 1:
            raise RemoteProtocolError("conflicting Content-Length headers")
        value = values.pop()
        if not (value.isascii() and value.isdigit()) or len(value) > 12:
            raise RemoteProtocolError("malformed Content-Length")
        length = int(value)
        if length > self.limits.max_body_bytes:
            raise RemoteProtocolError(f"body of {length} bytes exceeds max_body_bytes", status_hint=413)
        return length

    def _match_response(self, response: Response) -> None:
        cseq = response.cseq
        if cseq is None or response.status < 200:
            return
        request = self._pending.pop(cseq, None)
        if request is not None:
            self._answered = (cseq, request)

    def pending_request(self, cseq: int) -> Request | None:
        """The request we sent with this CSeq: still unanswered, or answered by the last response."""
        request = self._pending.get(cseq)
        if request is None and self._answered is not None and self._answered[0] == cseq:
            return self._answered[1]
        return request

    # ---- sending ------------------------------------------------------------------------------

    def send_request(self, request: Request) -> bytes:
        """Serialize a request, adding a CSeq from our counter when it has none."""
        headers = request.headers
        given = headers.get("CSeq")
        if given is None:
            cseq = self._next_cseq
            headers = Headers((("CSeq", str(cseq)), *headers.items()))
        else:
            if not (given.isascii() and given.isdigit()):
                raise LocalProtocolError(f"bad CSeq {given!r}")
            cseq = int(given)
        if cseq in self._pending:
            raise LocalProtocolError(f"CSeq {cseq} is already pending")
        if len(self._pending) >= self.limits.max_pending_requests:
            raise LocalProtocolError("too many requests awaiting a response")
        if not TOKEN_STR_RE.fullmatch(request.method):
            raise LocalProtocolError(f"bad method {request.method!r}")
        if not URI_SEND_RE.fullmatch(request.uri):
            raise LocalProtocolError(f"bad request-URI {request.uri!r}")
        headers = _with_content_length(headers, request.body)
        self._next_cseq = max(self._next_cseq, cseq + 1)
        self._pending[cseq] = Request(request.method, request.uri, headers, request.body)
        start = f"{request.method} {request.uri} RTSP/1.0\r\n".encode("utf-8")
        return _serialize(start, headers, request.body)

    def send_response(self, response: Response) -> bytes:
        if not 100 <= response.status <= 999:
            raise LocalProtocolError(f"bad status {response.status}")
        if FORBIDDEN_VALUE_RE.search(response.reason):
            raise LocalProtocolError("bad reason phrase")
        headers = _with_content_length(response.headers, response.body)
        start = f"RTSP/1.0 {response.status} ".encode() + wire_bytes(response.reason) + b"\r\n"
        return _serialize(start, headers, response.body)

    def send_frame(self, channel: int, payload: bytes) -> bytes:
        if not 0 <= channel <= 255:
            raise LocalProtocolError(f"bad interleaved channel {channel}")
        if len(payload) > 0xFFFF:
            raise LocalProtocolError(f"interleaved payload of {len(payload)} bytes is over 65535")
        return b"$" + bytes((channel, len(payload) >> 8, len(payload) & 0xFF)) + payload


def _decode(raw: bytes) -> str:
    """Lenient read: UTF-8 text, else Latin-1 kept as Latin1Text so it is re-sent byte-exact."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return Latin1Text(raw.decode("latin-1"))


def _with_content_length(headers: Headers, body: bytes) -> Headers:
    if body:
        return headers.set("Content-Length", str(len(body)))
    if "Content-Length" in headers:
        return headers.set("Content-Length", "0")
    return headers


def _serialize(start: bytes, headers: Headers, body: bytes) -> bytes:
    parts = [start]
    for name, value in headers.items():
        if not TOKEN_STR_RE.fullmatch(name):
            raise LocalProtocolError(f"bad header name {name!r}")
        if FORBIDDEN_VALUE_RE.search(value):
            raise LocalProtocolError(f"bad value for header {name}")
        parts += (name.encode("ascii"), b": ", wire_bytes(value), b"\r\n")
    parts += (b"\r\n", body)
    return b"".join(parts)
