"""SDP (RFC 4566) read/rewrite that keeps every line, its order and its line ending.

An SDP that is parsed and not rewritten serializes to exactly the bytes it came from. Rewrites
replace only the lines they touch (a=control, and o=/c= when an address is given), so players see
the proxy's URLs while everything else the origin said (MS a=pgmpu, b=AS, a=stream...) survives.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..rtsp.errors import HeaderParseError
from ..rtsp.headers import parse_range
from ..rtsp.uri import is_absolute_url, join_control_url
from .errors import SdpError

# only CR/LF end SDP lines (str.splitlines would also split on \x1c, \x85, U+2028...)
_LINE_END = re.compile(r"(\r\n|\n|\r)")

# RFC 3551 static payload types: clock rates
STATIC_CLOCK_RATES = {0: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000, 10: 44100,
                      11: 44100, 12: 8000, 13: 8000, 14: 90000, 15: 8000, 16: 11025, 17: 22050, 18: 8000,
                      25: 90000, 26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000, 34: 90000}


@dataclass(frozen=True)
class SdpLine:
    kind: str  # the one-letter type; "" for a line that is not "<x>=...", kept verbatim
    value: str
    eol: str  # "\r\n", "\n", "\r" or "" (last line without newline)

    @property
    def attribute(self) -> tuple[str, str] | None:
        """(name, value) of an a= line; a flag attribute like a=recvonly has value ""."""
        if self.kind != "a":
            return None
        name, _, value = self.value.partition(":")
        return name, value

    def render(self) -> str:
        return (f"{self.kind}={self.value}" if self.kind else self.value) + self.eol


@dataclass(frozen=True)
class RtpMap:
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None


class _Section:
    lines: tuple[SdpLine, ...]

    def attributes(self, name: str) -> list[str]:
        name = name.lower()
        return [a[1] for line in self.lines if (a := line.attribute) and a[0].lower() == name]

    def attribute(self, name: str) -> str | None:
        values = self.attributes(name)
        return values[0] if values else None

    @property
    def control(self) -> str | None:
        value = self.attribute("control")
        return value.strip() if value is not None else None


@dataclass(frozen=True)
class MediaSection(_Section):
    lines: tuple[SdpLine, ...]  # starts with the m= line

    @property
    def _m(self) -> list[str]:
        return self.lines[0].value.split()

    @property
    def kind(self) -> str:
        return self._m[0] if self._m else ""

    @property
    def port(self) -> int:
        try:
            return int(self._m[1].split("/")[0])
        except (IndexError, ValueError):
            return 0

    @property
    def proto(self) -> str:
        return self._m[2] if len(self._m) > 2 else ""

    @property
    def formats(self) -> list[str]:
        return self._m[3:]

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        for value in self.attributes("rtpmap"):
            pt, _, spec = value.strip().partition(" ")
            if pt == str(payload_type):
                parts = spec.strip().split("/")
                try:
                    rate = int(parts[1])
                    channels = int(parts[2]) if len(parts) > 2 else None
                except (IndexError, ValueError):
                    return None
                return RtpMap(payload_type, parts[0], rate, channels)
        return None

    def fmtp(self, payload_type: int) -> str | None:
        for value in self.attributes("fmtp"):
            pt, _, params = value.strip().partition(" ")
            if pt == str(payload_type):
                return params.strip()
        return None

    @property
    def clock_rate(self) -> int | None:
        """Clock rate of the first payload format (rtpmap, else the RFC 3551 static table)."""
        if not self.formats or not self.formats[0].isdigit():
            return None
        pt = int(self.formats[0])
        rtpmap = self.rtpmap(pt)
        return rtpmap.clock_rate if rtpmap else STATIC_CLOCK_RATES.get(pt)


@dataclass(frozen=True)
class Sdp(_Section):
    lines: tuple[SdpLine, ...]  # session-level lines only (everything before the first m=)
    media: tuple[MediaSection, ...]

    @classmethod
    def parse(cls, body: bytes) -> Sdp:
        text = body.decode("utf-8", "surrogateescape")  # surrogateescape: exact bytes come back out
        if not text.strip():
            raise SdpError("empty SDP")
        session: list[SdpLine] = []
        media: list[list[SdpLine]] = []
        pieces = _LINE_END.split(text)  # content, eol, content, eol, ..., last content
        if not pieces[-1]:
            pieces.pop()
        else:
            pieces.append("")
        for content, eol in zip(pieces[::2], pieces[1::2], strict=True):
            line = _split_line(content, eol)
            if line.kind == "m":
                media.append([line])
            elif media:
                media[-1].append(line)
            else:
                session.append(line)
        if not session or session[0].kind != "v":
            raise SdpError("SDP does not start with v=")
        return cls(tuple(session), tuple(MediaSection(tuple(m)) for m in media))

    def to_bytes(self) -> bytes:
        parts = [line.render() for line in self.lines]
        for section in self.media:
            parts.extend(line.render() for line in section.lines)
        return "".join(parts).encode("utf-8", "surrogateescape")

    # ---- control URLs ---------------------------------------------------------------------

    def aggregate_url(self, base: str) -> str:
        """The presentation URL: session a=control resolved against `base` (Content-Base)."""
        control = self.control
        return base if control in (None, "", "*") else join_control_url(base, control)

    def media_urls(self, base: str) -> list[str]:
        """Each media section's control URL, resolved (RFC 2326 C.1.1, C.3)."""
        aggregate = self.aggregate_url(base)
        media_base = aggregate if self.control not in (None, "", "*") else base
        urls = []
        for section in self.media:
            control = section.control
            if control in (None, "", "*"):
                urls.append(aggregate)
            else:
                urls.append(join_control_url(media_base, control))
        return urls

    def rewrite(self, control_url: Callable[[str], str] | None = None, address: str | None = None) -> Sdp:
        """A copy with absolute a=control URLs mapped through `control_url` and, when `address` is
        given, the o= and c= addresses replaced by it. Relative and "*" controls are kept."""

        def fix(line: SdpLine) -> SdpLine:
            attribute = line.attribute
            if control_url and attribute and attribute[0].lower() == "control":
                value = attribute[1].strip()
                if is_absolute_url(value):
                    return replace(line, value=f"{attribute[0]}:{control_url(value)}")
            if address and line.kind in ("o", "c"):
                return replace(line, value=_with_address(line.value, address, 5 if line.kind == "o" else 2))
            return line

        return Sdp(tuple(fix(x) for x in self.lines),
                   tuple(MediaSection(tuple(fix(x) for x in m.lines)) for m in self.media))

    # ---- content kind -------------------------------------------------------------------------

    def _ranges(self) -> list[str]:
        values = self.attributes("range")
        for section in self.media:
            values.extend(section.attributes("range"))
        return values

    @property
    def is_live(self) -> bool:
        """a=type:broadcast (MS-RTSP), or an npt range starting at "now" or without an end."""
        types = ",".join(self.attributes("type")).lower()
        if "broadcast" in [t.strip() for t in types.split(",")]:
            return True
        for value in self._ranges():
            try:
                parsed = parse_range(value)
            except HeaderParseError:
                continue
            if parsed.unit == "npt" and (parsed.start_now or parsed.end is None):
                return True
        return False

    @property
    def duration_seconds(self) -> float | None:
        """Length from the session a=range (else the longest media a=range), None when unknown."""
        longest = None
        for value in self._ranges():
            try:
                parsed = parse_range(value)
            except HeaderParseError:
                continue
            if parsed.unit == "npt" and isinstance(parsed.end, float) and not parsed.start_now:
                length = parsed.end - (parsed.start if isinstance(parsed.start, float) else 0.0)
                longest = length if longest is None else max(longest, length)
        return longest

    @property
    def has_duration(self) -> bool:
        return self.duration_seconds is not None


def media_clock_rates(body: bytes, base: str) -> dict[str, int]:
    """Each media section's resolved control URL -> its RTP clock rate (90000 when the SDP does not
    say); empty for an unparsable SDP. The one SDP clock-rate reading of the proxy."""
    try:
        sdp = parse_sdp(body)
    except SdpError:
        return {}
    return {url: section.clock_rate or 90000 for url, section in zip(sdp.media_urls(base), sdp.media,
                                                                       strict=True)}


def parse_sdp(body: bytes) -> Sdp:
    return Sdp.parse(body)


def _split_line(content: str, eol: str) -> SdpLine:
    if len(content) >= 2 and content[1] == "=" and content[0].isalpha():
        return SdpLine(content[0], content[2:], eol)
    return SdpLine("", content, eol)


def _with_address(value: str, address: str, index: int) -> str:
    fields = value.split(" ")
    if len(fields) <= index:
        return value
    fields[index] = address
    fields[index - 1] = "IP6" if ":" in address else "IP4"
    return " ".join(fields)
