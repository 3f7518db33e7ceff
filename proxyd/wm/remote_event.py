"""[MS-WMSP] 2.2.5 remote events: the SendEvent body ([MS-RTSP] 2.2.7.11), parse (lenient) and build (strict).

Body::

    1<CRLF>                                   EncodingFormat
    1,<EventType>,<EventReason><CRLF>         28 remote-open, 29 remote-close, 30 remote-log; HRESULT
    [2 content descriptions, each <CRLF>-terminated; only for 30]

A content description is a comma list of ``<name-len>,<name>,<type>,<value-len>,<value>`` items
(WMSP 2.2.4) with byte lengths of the UTF-8 text. Values (the XML rendering log in particular) contain
commas and line breaks, so items are cut by their length prefix, not by separators. When a sender got a
length wrong, we fall back to the separators, and for an XML value to its ``</XML>``, and say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REMOTE_OPEN, REMOTE_CLOSE, REMOTE_LOG = 28, 29, 30
EVENT_NAMES = {REMOTE_OPEN: "remote-open", REMOTE_CLOSE: "remote-close", REMOTE_LOG: "remote-log"}
EVENT_TYPES = {name: number for number, name in EVENT_NAMES.items()}
VT_I4, VT_LPWSTR = 3, 31
REMOTE_LOG_NAME = "@.REMOTE_LOG"
CONTEXT_URL_NAME = "@WMS_COMMAND_CONTEXT_URL"
DEFAULT_MAX_BYTES = 256 * 1024
MAX_ITEMS = 256

_NUMBER = re.compile(rb"\s*(\d{1,10})\s*,")
_XML_END = re.compile(rb"</XML\s*>?", re.IGNORECASE)

Item = tuple[str, int, str]  # (name, value type, value)


@dataclass(frozen=True)
class RemoteEvent:
    event_type: int | None  # None: unreadable
    reason: int = 0  # HRESULT
    descriptions: tuple[tuple[Item, ...], ...] = ()
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        return EVENT_NAMES.get(self.event_type) if self.event_type is not None else None

    def value(self, name: str) -> str | None:
        """First value with this name in any description."""
        for description in self.descriptions:
            for item_name, _type, item_value in description:
                if item_name == name:
                    return item_value
        return None

    @property
    def remote_log(self) -> str | None:
        return self.value(REMOTE_LOG_NAME)


def _read_field(data: bytes, pos: int, errors: list[str]) -> tuple[bytes | None, int]:
    """One ``<len>,<bytes>`` field starting at ``pos``; returns (value, position after it)."""
    match = _NUMBER.match(data, pos)
    if match is None:
        return None, pos
    start = match.end()
    end = start + int(match.group(1))
    if end <= len(data) and (end == len(data) or data[end:end + 1] in (b",", b"\r", b"\n")):
        return data[start:end], end
    errors.append(f"length {int(match.group(1))} at byte {pos} does not end at a separator")
    xml_end = _XML_END.search(data, start) if data[start:start + 1] == b"<" else None
    if xml_end is not None:
        return data[start:xml_end.end()], xml_end.end()
    stop = len(data)
    for sep in (b",", b"\r\n", b"\n"):
        found = data.find(sep, start)
        if found != -1:
            stop = min(stop, found)
    return data[start:stop], stop


def _read_description(data: bytes, pos: int, errors: list[str]) -> tuple[tuple[Item, ...], int]:
    items: list[Item] = []
    while pos < len(data) and len(items) < MAX_ITEMS:
        name, pos = _read_field(data, pos, errors)
        type_match = _NUMBER.match(data, pos + 1) if name is not None else None
        if name is None or type_match is None or data[pos:pos + 1] != b",":
            errors.append(f"unreadable content description item at byte {pos}")
            break
        value, pos = _read_field(data, type_match.end(), errors)
        if value is None:
            errors.append(f"missing value for {name.decode('utf-8', 'replace')!r}")
            break
        items.append((name.decode("utf-8", "replace"), int(type_match.group(1)), value.decode("utf-8", "replace")))
        if data[pos:pos + 1] != b",":
            break
        pos += 1
    while data[pos:pos + 1] in (b"\r", b"\n"):
        pos += 1
    return tuple(items), pos


def parse_remote_event(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> RemoteEvent:
    """Read a SendEvent body; never raises. Unreadable parts are listed in ``errors``."""
    errors: list[str] = []
    if len(body) > max_bytes:
        errors.append(f"body longer than {max_bytes} bytes; truncated")
        body = body[:max_bytes]
    first, _, rest = body.partition(b"\n")
    if first.strip() != b"1":
        errors.append("EncodingFormat is not 1")
    header, _, rest = rest.partition(b"\n")
    parts = [p.strip() for p in header.decode("ascii", "replace").split(",")]
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        return RemoteEvent(None, errors=errors + ["unreadable EncodingVersion,EventType,EventReason line"])
    version, event_type, reason = (int(p) for p in parts)
    if version != 1:
        errors.append(f"EncodingVersion {version} is not 1")
    if event_type not in EVENT_NAMES:
        errors.append(f"unknown EventType {event_type}")
    descriptions: list[tuple[Item, ...]] = []
    pos = 0
    while pos < len(rest) and len(descriptions) < 2:
        description, new_pos = _read_description(rest, pos, errors)
        if not description or new_pos <= pos:
            break
        descriptions.append(description)
        pos = new_pos
    if event_type == REMOTE_LOG and len(descriptions) != 2:
        errors.append(f"remote-log carries {len(descriptions)} content descriptions, expected 2")
    if event_type in (REMOTE_OPEN, REMOTE_CLOSE) and descriptions:
        errors.append("content descriptions present on an event other than remote-log")
    return RemoteEvent(event_type, min(reason, 0xFFFFFFFF), tuple(descriptions), errors)


def _item(name: str, value_type: int, value: str) -> bytes:
    name_b, value_b = name.encode("utf-8"), value.encode("utf-8")
    return b"%d,%s,%d,%d,%s" % (len(name_b), name_b, value_type, len(value_b), value_b)


def build_remote_event(
    event_type: int,
    *,
    reason: int = 0,
    user_agent: str = "",
    user_guid: str = "",
    url: str = "",
    rendering_log: str = "",
) -> bytes:
    """Strict body with lengths computed from the UTF-8 bytes. Descriptions only for remote-log (2.2.5)."""
    if event_type not in EVENT_NAMES:
        raise ValueError(f"EventType must be 28, 29 or 30, not {event_type}")
    if not 0 <= reason <= 0xFFFFFFFF:
        raise ValueError("EventReason is an unsigned 32-bit HRESULT")
    out = b"1\r\n1,%d,%d\r\n" % (event_type, reason)
    if event_type != REMOTE_LOG:
        return out
    first = [("context-type", VT_I4, "2"), ("WMS_USER_AGENT", VT_LPWSTR, user_agent),
             ("WMS_USER_GUID", VT_LPWSTR, user_guid)]
    second = [("context-type", VT_I4, "5"), (CONTEXT_URL_NAME, VT_LPWSTR, url),
              (REMOTE_LOG_NAME, VT_LPWSTR, rendering_log)]
    for description in (first, second):
        out += b",".join(_item(*item) for item in description) + b"\r\n"
    return out


def rebuild_with_log(event: RemoteEvent, rendering_log: str, *, url: str | None = None) -> bytes:
    """The same remote-log event with a replaced @.REMOTE_LOG (and URL), lengths recomputed."""
    if event.event_type != REMOTE_LOG:
        raise ValueError("only remote-log events carry a rendering log")
    return build_remote_event(
        REMOTE_LOG,
        reason=event.reason,
        user_agent=event.value("WMS_USER_AGENT") or "",
        user_guid=event.value("WMS_USER_GUID") or "",
        url=url if url is not None else (event.value(CONTEXT_URL_NAME) or ""),
        rendering_log=rendering_log,
    )


def parse_subscription(events) -> frozenset[int]:
    """EventType numbers named in an ``x-wms-event-subscription`` list (None or empty: none)."""
    return frozenset(EVENT_TYPES[e] for e in (events or ()) if e in EVENT_TYPES)


def may_forward(event_type: int | None, subscription) -> bool:
    """A client MUST NOT send an event type the server did not list for the URL (2.2.7.11)."""
    return event_type is not None and event_type in parse_subscription(subscription)
