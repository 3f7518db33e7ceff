"""Bounded incremental receive buffer.

The end-of-headers search resumes where the previous one stopped, so a header block that trickles
in byte by byte is scanned once overall, not once per byte.
"""

from __future__ import annotations

from .events import InterleavedFrame
from .grammar import HEADER_END_RE


class ReceiveBuffer:
    __slots__ = ("_data", "_search_from")

    def __init__(self) -> None:
        self._data = bytearray()
        self._search_from = 0

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def append(self, data: bytes) -> None:
        self._data += data

    def first_byte(self) -> int:
        return self._data[0]

    def skip_blank_lines(self) -> None:
        """Drop CR/LF between messages (tolerated like HTTP's robustness rule)."""
        data = self._data
        n = 0
        while n < len(data) and data[n] in (0x0D, 0x0A):
            n += 1
        if n:
            del data[:n]
            self._search_from = 0

    def find_header_end(self) -> int:
        """Index just past the blank line ending the header block, or -1 if not here yet."""
        match = HEADER_END_RE.search(self._data, self._search_from)
        if match is None:
            # the terminator is at most 3 bytes long; rescan only the tail next time
            self._search_from = max(0, len(self._data) - 2)
            return -1
        return match.end()

    def peek_frame_header(self) -> tuple[int, int] | None:
        """(channel, length) of an interleaved frame at the front, or None if < 4 bytes."""
        data = self._data
        if len(data) < 4:
            return None
        return data[1], (data[2] << 8) | data[3]

    def take(self, n: int) -> bytes:
        """Remove and return the first n bytes (one copy)."""
        with memoryview(self._data) as view:
            out = bytes(view[:n])
        del self._data[:n]
        self._search_from = 0
        return out

    def pop_frame(self, max_payload: int) -> InterleavedFrame | None:
        """Remove and return a complete interleaved frame at the front (payload copied once),
        or None when there is none or it is over `max_payload` (the caller reports that)."""
        data = self._data
        if len(data) < 4 or data[0] != 0x24:
            return None
        end = 4 + ((data[2] << 8) | data[3])
        if end - 4 > max_payload or len(data) < end:
            return None
        channel = data[1]
        with memoryview(data) as view:
            payload = bytes(view[4:end])
        del data[:end]
        self._search_from = 0
        return InterleavedFrame(channel, payload)
