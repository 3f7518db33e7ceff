"""RTSP/1.0 framing for the test origin and player (RFC 2326 sections 6, 7 and 10.12).

Deliberately independent of proxyd.rtsp: the origin is the oracle that checks what the proxy
sends, so it must not share the proxy's parser (a parser bug would hide itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_HEAD = 16 * 1024
MAX_BODY = 1 << 20


class WireError(Exception):
    """Malformed RTSP input; `status` is the response code the peer deserves."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Message:
    """A request (method set) or a response (status set)."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    @property
    def cseq(self) -> int | None:
        value = self.header("CSeq")
        return int(value) if value and value.strip().isdigit() else None

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def encode(self) -> bytes:
        start = (f"{self.method} {self.uri} RTSP/1.0" if self.method
                 else f"RTSP/1.0 {self.status} {self.reason}")
        lines = [start]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        if self.body or self.method:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


@dataclass(frozen=True)
class Frame:
    channel: int
    payload: bytes


async def read_item(reader: asyncio.StreamReader) -> Message | Frame | None:
    """Next interleaved frame or message; None at a clean EOF between items."""
    first = await reader.read(1)
    if not first:
        return None
    if first == b"$":
        head = await reader.readexactly(3)
        size = int.from_bytes(head[1:3], "big")
        return Frame(head[0], await reader.readexactly(size))
    try:
        head = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise WireError("header section too large", 431) from exc
    except asyncio.IncompleteReadError as exc:
        raise WireError("connection closed inside a message header") from exc
    if len(head) > MAX_HEAD:
        raise WireError("header section too large", 431)
    msg = _parse_head(head[:-4].decode("utf-8", "surrogateescape"))  # bytes that are not UTF-8 kept
    length_text = msg.header("Content-Length", "0") or "0"
    if not length_text.strip().isdigit():
        raise WireError(f"bad Content-Length {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY:
        raise WireError("body too large", 413)
    msg.body = await reader.readexactly(length) if length else b""
    return msg


def _parse_head(text: str) -> Message:
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2:
        raise WireError(f"bad start line {lines[0]!r}")
    if parts[0].startswith("RTSP/"):
        if parts[0] != "RTSP/1.0" or not parts[1].isdigit():
            raise WireError(f"bad status line {lines[0]!r}", 505)
        msg = Message(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "")
    else:
        if len(parts) != 3 or parts[2] != "RTSP/1.0":
            raise WireError(f"bad request line {lines[0]!r}", 505 if len(parts) == 3 else 400)
        if not parts[0].isalpha() and "_" not in parts[0]:
            raise WireError(f"bad method {parts[0]!r}")
        msg = Message(method=parts[0], uri=parts[1])
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and msg.headers:  # folded continuation line
            key, value = msg.headers[-1]
            msg.headers[-1] = (key, value + " " + line.strip())
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or " " in key.strip():
            raise WireError(f"bad header line {line!r}")
        msg.headers.append((key.strip(), value.strip()))
    return msg


def frame(channel: int, payload: bytes) -> bytes:
    return b"$" + bytes((channel,)) + len(payload).to_bytes(2, "big") + payload


def response(request: Message, status: int, reason: str, headers: list[tuple[str, str]] | None = None,
             body: bytes = b"") -> Message:
    out = [("CSeq", str(request.cseq if request.cseq is not None else 0))]
    return Message(status=status, reason=reason, headers=out + list(headers or []), body=body)
