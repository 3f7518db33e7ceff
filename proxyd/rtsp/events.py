"""Events produced by RtspConnection.next_event and accepted by its send_* methods."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple


class Latin1Text(str):
    """A header value or reason phrase whose bytes were not UTF-8: read byte for byte as Latin-1 and
    sent back as the same bytes (a plain str is sent as UTF-8). Any edit gives a plain str."""

    __slots__ = ()

    def to_bytes(self) -> bytes:
        return self.encode("latin-1")


def wire_bytes(text: str) -> bytes:
    """The bytes a header value or reason phrase goes out as."""
    return text.to_bytes() if isinstance(text, Latin1Text) else text.encode("utf-8")


class Headers:
    """Immutable, order-preserving header list with case-insensitive lookup.

    Names keep the spelling they were given (sent as is); lookups ignore case.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple(
            (str(n), v if isinstance(v, str) else str(v)) for n, v in items)  # keeps Latin1Text
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            index.setdefault(name.lower(), []).append(value)
        self._index = index

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def set(self, name: str, value: str) -> Headers:
        """Replace every `name` header by one, at the first one's position (appended if absent)."""
        key = name.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for item in self._items:
            if item[0].lower() == key:
                if not placed:
                    out.append((name, value))
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append((name, value))
        return Headers(out)

    def remove(self, name: str) -> Headers:
        key = name.lower()
        return Headers(item for item in self._items if item[0].lower() != key)

    def items(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


def _cseq_of(headers: Headers) -> int | None:
    value = headers.get("CSeq")
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and value.isascii() else None


@dataclass(frozen=True)
class Request:
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def cseq(self) -> int | None:
        return _cseq_of(self.headers)


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def cseq(self) -> int | None:
        return _cseq_of(self.headers)


class InterleavedFrame(NamedTuple):
    """RFC 2326 §10.12: '$' + channel + 16-bit length + payload on the RTSP TCP stream.

    A NamedTuple rather than a frozen dataclass: it is built once per media packet and is
    three times cheaper to construct, while staying immutable.
    """

    channel: int
    payload: bytes


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed its sending side (receive_data(b"")) at a message boundary."""


class NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()

Event = Request | Response | InterleavedFrame | ConnectionClosed
