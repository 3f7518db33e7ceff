"""Remote event bodies carried by SendEvent ([MS-RTSP] 2.2.7.11, [MS-WMSP] 2.2.5).

    remote-event-message = EncodingFormat CRLF EncodingVersion "," EventType "," EventReason CRLF
                           [ 2(content-description) ]        ; present iff EventType = 30

A content description is a CDL ([MS-WMSP] 2.2.4): `<name length>,<name>,<VT>,<value length>,<value>`
pairs separated by commas and ended by CRLF. Lengths are taken as UTF-8 byte counts (the spec
says "length" without further detail; see the brief, section 4.12).
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_TYPES = {28: "remote-open", 29: "remote-close", 30: "remote-log"}
VT_I4, VT_LPWSTR = 3, 31


@dataclass(frozen=True)
class RemoteEvent:
    encoding_format: int
    encoding_version: int
    event_type: int
    reason: int
    descriptions: tuple[tuple[tuple[str, int, str], ...], ...]  # per CDL: (name, VT, value)

    @property
    def name(self) -> str:
        return EVENT_TYPES.get(self.event_type, str(self.event_type))

    def value(self, name: str) -> str | None:
        for cdl in self.descriptions:
            for key, _vt, value in cdl:
                if key == name:
                    return value
        return None


def parse_remote_event(body: bytes) -> tuple[RemoteEvent | None, str | None]:
    """Strict parse. Returns (event, None) or (None, error text); never raises."""
    try:
        head1, rest = body.split(b"\r\n", 1)
        head2, rest = rest.split(b"\r\n", 1)
        version, event_type, reason = (int(x) for x in head2.split(b","))
        descriptions = []
        while rest:
            cdl, rest = _parse_cdl(rest)
            descriptions.append(cdl)
        event = RemoteEvent(int(head1), version, event_type, reason, tuple(descriptions))
    except (ValueError, IndexError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if event.event_type not in EVENT_TYPES:
        return None, f"unknown EventType {event.event_type}"
    if (event.event_type == 30) != (len(descriptions) == 2):
        return None, f"EventType {event.event_type} with {len(descriptions)} content descriptions"
    return event, None


def _parse_cdl(data: bytes) -> tuple[tuple[tuple[str, int, str], ...], bytes]:
    pos, items = 0, []
    while True:
        name, pos = _counted(data, pos)
        if data[pos:pos + 1] != b",":
            raise ValueError(f"expected ',' after a name at byte {pos}")
        pos += 1
        vt_end = data.index(b",", pos)
        vt = int(data[pos:vt_end])
        value, pos = _counted(data, vt_end + 1)
        items.append((name, vt, value))
        if data[pos:pos + 2] == b"\r\n":
            return tuple(items), data[pos + 2:]
        if data[pos:pos + 1] != b",":
            raise ValueError(f"expected ',' or CRLF at byte {pos}")
        pos += 1


def _counted(data: bytes, pos: int) -> tuple[str, int]:
    comma = data.index(b",", pos)
    length = int(data[pos:comma])
    start = comma + 1
    if start + length > len(data):
        raise ValueError(f"length {length} runs past the body")
    return data[start:start + length].decode("utf-8"), start + length


def _cdl(items: list[tuple[str, int, str]]) -> bytes:
    parts = []
    for name, vt, value in items:
        raw = value.encode("utf-8")
        parts.append(f"{len(name.encode())},{name},{vt},{len(raw)},".encode() + raw)
    return b",".join(parts) + b"\r\n"


def build_remote_log(*, user_agent: str, player_guid: str, url: str, rendering_log: str,
                     reason: int = 0) -> bytes:
    """A remote-log (EventType 30) event as a player sends it after playback (3.1.4.9)."""
    return b"1\r\n" + f"1,30,{reason}\r\n".encode() + _cdl([
        ("context-type", VT_I4, "2"), ("WMS_USER_AGENT", VT_LPWSTR, user_agent),
        ("WMS_USER_GUID", VT_LPWSTR, "{" + player_guid + "}"),
    ]) + _cdl([
        ("context-type", VT_I4, "5"), ("@WMS_COMMAND_CONTEXT_URL", VT_LPWSTR, url),
        ("@.REMOTE_LOG", VT_LPWSTR, rendering_log),
    ])
