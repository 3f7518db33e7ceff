"""Parse/format the structured RTSP headers (RFC 2326 §12); URLs are proxyd.rtsp.uri.

Parsers are lenient (case-insensitive parameter names, extra whitespace, unknown parameters kept)
and raise HeaderParseError (a RemoteProtocolError, status 400) on values they cannot use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .errors import HeaderParseError

PortRange = tuple[int, int]  # (first, last); a single port or channel is (n, n)


# ---- CSeq, Scale/Speed, Supported -----------------------------------------------------------


def parse_cseq(value: str) -> int:
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise HeaderParseError(f"bad CSeq {value!r}")
    return int(value)


def parse_scale(value: str) -> float:
    """Scale / Speed (RFC 2326 §12.34, §12.35): a finite decimal number."""
    try:
        number = float(value.strip())
    except ValueError:
        raise HeaderParseError(f"bad Scale/Speed {value!r}") from None
    if not math.isfinite(number):
        raise HeaderParseError(f"bad Scale/Speed {value!r}")
    return number


def format_scale(number: float) -> str:
    return f"{number:.3f}".rstrip("0").rstrip(".")


def parse_supported(*values: str) -> list[str]:
    """Supported / Require feature tags; pass every header occurrence (get_all)."""
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def format_supported(tags: list[str] | tuple[str, ...]) -> str:
    return ", ".join(tags)


# ---- Session --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionHeader:
    id: str
    timeout: int | None = None


def parse_session(value: str) -> SessionHeader:
    parts = [p.strip() for p in value.split(";")]
    session_id = parts[0]
    if not session_id or any(c.isspace() for c in session_id):
        raise HeaderParseError(f"bad Session {value!r}")
    timeout = None
    for param in parts[1:]:
        name, _, raw = param.partition("=")
        if name.strip().lower() == "timeout":
            raw = raw.strip()
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
                raise HeaderParseError(f"bad Session timeout {raw!r}")
            timeout = int(raw)
    return SessionHeader(session_id, timeout)


def format_session(session: SessionHeader) -> str:
    return session.id if session.timeout is None else f"{session.id};timeout={session.timeout}"


# ---- Transport ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransportSpec:
    """One alternative of a Transport header (RFC 2326 §12.39)."""

    protocol: str = "RTP/AVP"  # transport-protocol "/" profile, as given
    lower: str = "UDP"  # UDP or TCP (an absent lower-transport means UDP)
    lower_given: bool = False  # whether "/UDP" was spelled out, so formatting keeps the form
    delivery: str | None = "unicast"  # unicast | multicast | None (not stated)
    destination: str | None = None
    source: str | None = None
    interleaved: PortRange | None = None
    client_port: PortRange | None = None
    server_port: PortRange | None = None
    port: PortRange | None = None
    ttl: int | None = None
    ssrc: str | None = None  # hex as given (8 digits)
    mode: str | None = None
    extra: tuple[tuple[str, str | None], ...] = field(default=())  # unknown params, in order

    @property
    def is_tcp(self) -> bool:
        return self.lower == "TCP"


def _parse_range(name: str, raw: str, maximum: int) -> PortRange:
    first, dash, last = raw.strip().partition("-")
    try:
        lo = int(first)
        hi = int(last) if dash else lo
    except ValueError:
        raise HeaderParseError(f"bad Transport {name}={raw!r}") from None
    if not (0 <= lo <= maximum and 0 <= hi <= maximum and hi >= lo):
        raise HeaderParseError(f"bad Transport {name}={raw!r}")
    return (lo, hi)


def _format_range(r: PortRange) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


_RANGE_PARAMS = {"interleaved": 255, "client_port": 65535, "server_port": 65535, "port": 65535}


def _parse_one_transport(text: str) -> TransportSpec:
    params = [p.strip() for p in text.split(";")]
    spec = params[0]
    pieces = spec.split("/")
    if len(pieces) not in (2, 3) or not all(pieces):
        raise HeaderParseError(f"bad transport-spec {spec!r}")
    lower = pieces[2].upper() if len(pieces) == 3 else "UDP"
    if lower not in ("UDP", "TCP"):
        raise HeaderParseError(f"bad lower-transport {pieces[2]!r}")
    fields: dict[str, object] = {
        "protocol": "/".join(pieces[:2]),
        "lower": lower,
        "lower_given": len(pieces) == 3,
        "delivery": None,
    }
    extra: list[tuple[str, str | None]] = []
    for param in params[1:]:
        if not param:
            continue
        name, eq, raw = param.partition("=")
        key = name.strip().lower()
        value = raw.strip() if eq else None
        if key in ("unicast", "multicast") and value is None:
            fields["delivery"] = key
        elif key in _RANGE_PARAMS and value is not None:
            fields[key] = _parse_range(key, value, _RANGE_PARAMS[key])
        elif key == "ttl" and value is not None:
            if not value.isdigit() or int(value) > 255:
                raise HeaderParseError(f"bad Transport ttl={value!r}")
            fields["ttl"] = int(value)
        elif key in ("destination", "source", "ssrc") and value is not None:
            fields[key] = value
        elif key == "mode" and value is not None:
            fields["mode"] = value.strip('"')
        else:
            extra.append((name.strip(), value))
    fields["extra"] = tuple(extra)
    return TransportSpec(**fields)  # type: ignore[arg-type]


def parse_transport(value: str) -> list[TransportSpec]:
    """All alternatives of a Transport header, in preference order."""
    specs = [_parse_one_transport(part) for part in value.split(",") if part.strip()]
    if not specs:
        raise HeaderParseError("empty Transport")
    return specs


def format_transport(specs: TransportSpec | list[TransportSpec] | tuple[TransportSpec, ...]) -> str:
    if isinstance(specs, TransportSpec):
        specs = [specs]
    return ",".join(_format_one_transport(s) for s in specs)


def _format_one_transport(s: TransportSpec) -> str:
    head = f"{s.protocol}/{s.lower}" if (s.lower_given or s.lower != "UDP") else s.protocol
    out = [head]
    if s.delivery:
        out.append(s.delivery)
    for key, value in (("destination", s.destination), ("source", s.source)):
        if value is not None:
            out.append(f"{key}={value}")
    for key in ("interleaved", "client_port", "server_port", "port"):
        value = getattr(s, key)
        if value is not None:
            out.append(f"{key}={_format_range(value)}")
    if s.ttl is not None:
        out.append(f"ttl={s.ttl}")
    if s.ssrc is not None:
        out.append(f"ssrc={s.ssrc}")
    if s.mode is not None:
        out.append(f"mode={s.mode}")
    out.extend(name if value is None else f"{name}={value}" for name, value in s.extra)
    return ";".join(out)


# ---- Range ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeHeader:
    """Range (RFC 2326 §12.29). npt and x-asf-* positions are floats (seconds / packets / bytes);
    clock and smpte keep their text. `start_now` is npt=now-."""

    unit: str
    start: float | str | None = None
    end: float | str | None = None
    start_now: bool = False
    time: str | None = None  # ";time=" parameter


_NUMERIC_UNITS = ("npt", "x-asf-packet", "x-asf-byte")


def _parse_npt_time(text: str) -> float:
    try:
        if ":" in text:
            h, m, s = text.split(":")
            value = int(h) * 3600 + int(m) * 60 + float(s)
            if not (0 <= int(m) < 60 and 0 <= float(s) < 60):
                raise ValueError
        else:
            value = float(text)
    except ValueError:
        raise HeaderParseError(f"bad npt time {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise HeaderParseError(f"bad npt time {text!r}")
    return value


def parse_range(value: str) -> RangeHeader:
    spec, *params = [p.strip() for p in value.split(";")]
    unit, eq, span = spec.partition("=")
    unit = unit.strip().lower()
    if not eq or not unit:
        raise HeaderParseError(f"bad Range {value!r}")
    time = next((p.partition("=")[2].strip() for p in params if p.lower().startswith("time=")), None)
    first, dash, last = span.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (not first and not last):
        raise HeaderParseError(f"bad Range {value!r}")
    if unit in _NUMERIC_UNITS:
        start_now = unit == "npt" and first.lower() == "now"
        start = None if (not first or start_now) else _parse_npt_time(first)
        end = _parse_npt_time(last) if last else None
        if start is not None and end is not None and end < start and unit != "npt":
            raise HeaderParseError(f"bad Range {value!r}")
        return RangeHeader(unit, start, end, start_now, time)
    return RangeHeader(unit, first or None, last or None, False, time)


def _format_position(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return f"{value:.3f}"


def format_range(r: RangeHeader) -> str:
    start = "now" if r.start_now else _format_position(r.start)
    out = f"{r.unit}={start}-{_format_position(r.end)}"
    return f"{out};time={r.time}" if r.time else out


# ---- RTP-Info -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RtpInfoEntry:
    url: str
    seq: int | None = None
    rtptime: int | None = None
    extra: tuple[tuple[str, str], ...] = ()


# URLs may contain commas, so entries are split only before the next "url="
_RTP_INFO_SPLIT = re.compile(r",\s*(?=url\s*=)", re.IGNORECASE)


def parse_rtp_info(value: str) -> list[RtpInfoEntry]:
    entries = []
    for part in _RTP_INFO_SPLIT.split(value.strip()):
        url: str | None = None
        numbers: dict[str, int] = {}
        extra = []
        for param in part.split(";"):
            name, _, raw = param.partition("=")
            key, raw = name.strip().lower(), raw.strip()
            if key == "url":
                url = raw
            elif key in ("seq", "rtptime"):
                if not raw.isdigit() or int(raw) > (0xFFFF if key == "seq" else 0xFFFFFFFF):
                    raise HeaderParseError(f"bad RTP-Info {key}={raw!r}")
                numbers[key] = int(raw)
            elif key:
                extra.append((name.strip(), raw))
        if not url:
            raise HeaderParseError(f"RTP-Info entry without url: {part!r}")
        entries.append(RtpInfoEntry(url, numbers.get("seq"), numbers.get("rtptime"), tuple(extra)))
    return entries


def format_rtp_info(entries: list[RtpInfoEntry]) -> str:
    out = []
    for e in entries:
        text = f"url={e.url}"
        if e.seq is not None:
            text += f";seq={e.seq}"
        if e.rtptime is not None:
            text += f";rtptime={e.rtptime}"
        text += "".join(f";{name}={value}" for name, value in e.extra)
        out.append(text)
    return ",".join(out)
