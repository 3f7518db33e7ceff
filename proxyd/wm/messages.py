"""Builders (strict) and parsers (lenient) for MS-RTSP extension messages as plain (headers, body).

Headers are ``list[tuple[str, str]]`` so both the sans-IO core and tests can use them without
depending on ``proxyd.rtsp``; CSeq and Content-Length are left to the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from proxyd.wm.classify import CT_EXTENSION_CMD, CT_GET_CONTENT_INFO

Headers = list[tuple[str, str]]
EosReason = Literal["end-of-playlist-entry", "receding", "administrative"]

GCI_BODY = b"\x00"  # exactly one byte, 0x00 (2.2.7.4)
GCI_DEFAULT_CACHE_CONTROL = "no-cache"  # a server without caching data answers only this (3.2.5.2)
X_NOTICE_EOS = '2101 "End-of-Stream Reached"'  # 2.2.6.18
_EOS_REASON_LINES = {
    "end-of-playlist-entry": "End-Of-Playlist-Entry: true",
    "receding": "RecedingEos: true",
    "administrative": "AdministrativeDisconnection: true",
}
_SAFE_URL_CHARS = frozenset(",;")


def _header_text(value: str, what: str) -> str:
    """Builders are strict: a value that could break the header line is a caller bug."""
    if not value or any(ord(ch) < 0x21 or ord(ch) > 0x7E or ch == '"' for ch in value):
        raise ValueError(f"{what} is not a header-safe token: {value!r}")
    return value


def get_content_info_request(
    identity_headers: Headers, *, accept_authentication: str | None = "Negotiate, NTLM, Digest"
) -> tuple[Headers, bytes]:
    """The proxy's freshness probe: session-less GET_PARAMETER with a 1-byte 0x00 body (2.2.7.4, 3.1.4.1)."""
    headers = list(identity_headers)
    if accept_authentication:
        headers.append(("X-Accept-Authentication", accept_authentication))
    headers.append(("Content-Type", CT_GET_CONTENT_INFO))
    return headers, GCI_BODY


def get_content_info_response(cache_control: str | None) -> tuple[Headers, bytes]:
    """Answer to a downstream GCI: Cache-Control is mandatory, the body empty, no Supported (3.2.5.3)."""
    value = (cache_control or "").strip() or GCI_DEFAULT_CACHE_CONTROL
    return [("Cache-Control", value)], b""


def format_rtp_info(streams: list[tuple[str, int]]) -> str:
    """``url=<u>;seq=<next seq>`` per stream; URLs containing ',' or ';' are quoted (2.2.6.8)."""
    items = []
    for url, seq in streams:
        _header_text(url, "RTP-Info url")
        shown = f'"{url}"' if _SAFE_URL_CHARS & set(url) else url
        items.append(f"url={shown};seq={seq & 0xFFFF}")
    return ", ".join(items)


def end_of_stream_request(
    *,
    session_id: str,
    streams: list[tuple[str, int]],
    playlist_gen_id: int = 0,
    reason: EosReason | None = None,
) -> tuple[Headers, bytes]:
    """EndOfStream SET_PARAMETER from the server role (2.2.7.3, 3.2.4.1).

    ``streams``: (control URL, seq of the *next* RTP packet) for each selected audio/video stream;
    the rtx stream is never listed. ``End-Of-Playlist-Entry`` only when another entry follows.
    """
    _header_text(session_id, "session id")
    headers: Headers = [
        ("Content-Type", CT_EXTENSION_CMD),
        ("X-Notice", X_NOTICE_EOS),
    ]
    if streams:
        headers.append(("RTP-Info", format_rtp_info(streams)))
    if playlist_gen_id:
        headers.append(("X-Playlist-Gen-Id", str(playlist_gen_id)))
    headers.append(("Session", session_id))
    lines = [f"Session: {session_id}", "EOF: true"]
    if reason is not None:
        lines.append(_EOS_REASON_LINES[reason])
    return headers, ("\r\n".join(lines) + "\r\n").encode("ascii")


@dataclass(frozen=True)
class EndOfStream:
    session_id: str | None
    eof: bool
    end_of_playlist_entry: bool = False
    receding: bool = False
    administrative: bool = False


def parse_end_of_stream_body(body: bytes) -> EndOfStream:
    """Read an EndOfStream body leniently (any case, ``True``/``true``, LF or CRLF); never raises."""
    values: dict[str, str] = {}
    for raw in body.decode("ascii", "replace").splitlines()[:16]:
        name, sep, value = raw.partition(":")
        if sep:
            values.setdefault(name.strip().lower(), value.strip())

    def flag(name: str) -> bool:
        return values.get(name, "").lower() == "true"

    return EndOfStream(
        session_id=values.get("session") or None,
        eof=flag("eof"),
        end_of_playlist_entry=flag("end-of-playlist-entry"),
        receding=flag("recedingeos"),
        administrative=flag("administrativedisconnection"),
    )
