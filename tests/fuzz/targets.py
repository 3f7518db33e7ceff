"""Fuzz targets: one function per parser, `target(data: bytes) -> None`, raising only on a bug.

Each target feeds arbitrary bytes to a pure proxyd parser and checks what the parser promises: it
raises only its own error type (or never raises), a parse that succeeds re-encodes to what it read,
and incremental input gives the same result as input in one piece. An AssertionError or any other
exception is a finding. Run by tests/fuzz/run.py under atheris (coverage-guided) and by
tests/fuzz/test_targets.py (bounded, in the suite).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from proxyd.rtp.errors import PacketError, SdpError
from proxyd.rtp.packet import RtpPacket, is_h264_keyframe, rtp_header
from proxyd.rtp.rtcp import parse_rtcp
from proxyd.rtp.sdp import parse_sdp
from proxyd.rtsp.auth import AuthError, parse_challenges
from proxyd.rtsp.connection import ParserLimits, Role, RtspConnection
from proxyd.rtsp.errors import HeaderParseError, LocalProtocolError, RemoteProtocolError
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed, InterleavedFrame, Request, Response, wire_bytes
from proxyd.rtsp.headers import parse_range, parse_rtp_info, parse_session, parse_transport
from proxyd.wm.cache_control import format_cache_control, parse_cache_control
from proxyd.wm.messages import parse_end_of_stream_body
from proxyd.wm.remote_event import build_remote_event, parse_remote_event
from proxyd.wm.wmlog import parse_log

# Small limits so the fuzzer reaches every limit check with inputs under RTSP_MAX_LEN bytes (the cost
# of an input grows with its length: short inputs let a long run reach a million of them).
FUZZ_LIMITS = ParserLimits(max_header_bytes=640, max_headers=16, max_body_bytes=512, max_frame_bytes=256,
                           max_uri_bytes=256)
RTSP_MAX_LEN = 1024
STATUS_HINTS = {400, 413, 414, 505}


def _events(role: Role, data: bytes, chunk: int, limits: ParserLimits = FUZZ_LIMITS) -> list:
    """Every event (or the error) the connection yields for `data` fed `chunk` bytes at a time, then EOF."""
    conn = RtspConnection(role, limits)
    out: list = []
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for piece in pieces:
        conn.receive_data(piece)
        # Each event consumes at least one byte, so more events than bytes means a loop that does not advance.
        for _ in range(len(data) + 2):
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                assert exc.status_hint in STATUS_HINTS, exc.status_hint
                assert conn.broken
                out.append(("error", str(exc), exc.status_hint))
                return out
            if event is NEED_DATA:
                break
            out.append(event)
            if isinstance(event, ConnectionClosed):
                return out
        else:
            raise AssertionError("next_event() kept returning events without consuming input")
    raise AssertionError("no ConnectionClosed or error after EOF")


def _check_round_trip(role: Role, event: Request | Response) -> None:
    """A parsed message that we are able to send again reads back the same."""
    sender = RtspConnection(Role.CLIENT if isinstance(event, Request) else Role.SERVER)
    try:
        wire = sender.send_request(event) if isinstance(event, Request) else sender.send_response(event)
    except LocalProtocolError:
        return  # lenient input (odd reason phrase, header names) that we would never send ourselves
    # Default limits: the added Content-Length can make the message longer than the fuzz limits.
    again = [e for e in _events(role, wire, len(wire) or 1, ParserLimits()) if not isinstance(e, ConnectionClosed)]
    assert len(again) == 1 and not isinstance(again[0], tuple), (event, again)
    back = again[0]
    assert back.body == event.body
    if isinstance(event, Request):
        assert (back.method, back.uri) == (event.method, event.uri)
    else:
        assert (back.status, wire_bytes(back.reason)) == (event.status, wire_bytes(event.reason))

    def without_length(headers):  # values as the bytes they go out as: not UTF-8 is re-sent byte-exact
        return [(n, wire_bytes(v)) for n, v in headers if n.lower() != "content-length"]

    assert without_length(back.headers) == without_length(event.headers)


def _rtsp(role: Role, data: bytes) -> None:
    if not data:
        return
    # A second parse is fed in pieces of 1..32 bytes. Feeding pieces costs several times the rest of
    # the target, so one input in four is also parsed so, picked (with the piece size) by a checksum:
    # the fuzzer mostly keeps an input's first bytes, so a byte of the input would pick the same few.
    digest = zlib.crc32(data)
    in_pieces = digest % 4 == 0
    chunk = (digest >> 2) % 32 + 1
    data = data[1:]
    whole = _events(role, data, max(len(data), 1))
    if in_pieces:
        assert _events(role, data, chunk) == whole, "chunked input parsed differently"
    for event in whole:
        if isinstance(event, InterleavedFrame):
            assert 0 <= event.channel <= 255 and len(event.payload) <= FUZZ_LIMITS.max_frame_bytes
        elif isinstance(event, Request | Response):
            _check_round_trip(role, event)


def rtsp_server(data: bytes) -> None:
    """proxyd's player-facing side: requests (and responses to EndOfStream etc.) with '$' frames."""
    _rtsp(Role.SERVER, data)


def rtsp_client(data: bytes) -> None:
    """proxyd's origin-facing side: responses, ANNOUNCE/SET_PARAMETER requests and '$' frames."""
    _rtsp(Role.CLIENT, data)


RTSP_HEADER_PARSERS = (parse_transport, parse_range, parse_rtp_info, parse_session)


def rtsp_headers(data: bytes) -> None:
    """Structured header values (Transport, Range, RTP-Info, Session, WWW-Authenticate)."""
    if not data:
        return
    text = data[1:].decode("utf-8", "replace")
    which = data[0] % (len(RTSP_HEADER_PARSERS) + 1)
    if which == len(RTSP_HEADER_PARSERS):
        try:
            parse_challenges(text)
        except AuthError:
            pass
        return
    try:
        RTSP_HEADER_PARSERS[which](text)
    except HeaderParseError:
        pass


def sdp(data: bytes) -> None:
    try:
        parsed = parse_sdp(data)
    except SdpError:
        return
    assert parsed.to_bytes() == data
    parsed.is_live, parsed.duration_seconds, parsed.media_urls("rtsp://h/x")  # noqa: B018 - must not raise
    rewritten = parsed.rewrite(lambda url: "rtsp://proxy/" + url, address="192.0.2.1")
    assert len(rewritten.media) == len(parsed.media)
    for media in parsed.media:
        media.clock_rate  # noqa: B018


def rtp(data: bytes) -> None:
    try:
        marker, pt, seq, ts, ssrc, offset, end = rtp_header(data)
    except PacketError:
        return
    assert 12 <= offset <= end <= len(data)
    assert RtpPacket.parse(data).to_bytes() == data
    is_h264_keyframe(data, offset, end)


def rtcp(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except PacketError:
        return
    assert packets


def wmlog(data: bytes) -> None:
    """[MS-WMLOG] bodies of LogConnect / LogPlay / SendEvent, in any form; never raises."""
    hint = (None, "logplay", "logconnect", "sendevent")[data[0] % 4] if data else None
    parsed = parse_log(data[1:], hint=hint)
    assert isinstance(parsed.fields, dict) and all(isinstance(v, str) for v in parsed.fields.values())


def remote_event(data: bytes) -> None:
    """SendEvent bodies ([MS-WMSP] 2.2.5); never raises; a readable remote-log rebuilds to the same log."""
    event = parse_remote_event(data)
    log = event.remote_log
    if event.event_type == 30 and log is not None and not event.errors:
        again = parse_remote_event(build_remote_event(30, user_agent="ua", user_guid="g", url="rtsp://h/x",
                                                      rendering_log=log))
        assert again.remote_log == log


def wm_headers(data: bytes) -> None:
    """Cache-Control (WM directives) and EndOfStream bodies; never raise; Cache-Control re-emits stably."""
    parse_end_of_stream_body(data)
    cc = parse_cache_control(data.decode("utf-8", "replace"))
    again = parse_cache_control(format_cache_control(cc))
    assert format_cache_control(again) == format_cache_control(cc)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "rtsp_server": rtsp_server,
    "rtsp_client": rtsp_client,
    "rtsp_headers": rtsp_headers,
    "sdp": sdp,
    "rtp": rtp,
    "rtcp": rtcp,
    "wmlog": wmlog,
    "remote_event": remote_event,
    "wm_headers": wm_headers,
}
