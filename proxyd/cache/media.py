"""Recorded media of one presentation: RTP packets in arrival order with their media time.

The same object serves a fill that is still growing (replays follow it) and an entry loaded from
disk. Each packet carries its stream index, a key-frame flag and its media time (microseconds
from npt 0, derived from RTP timestamps so a faster-than-real-time fill keeps the original pacing).
On disk: a sequence of records `RECORD` + packet bytes.

Packet bytes live in a few large ctypes buffers (the loaded file, or fixed-size arenas a fill
appends to), never moved or copied again: every replay of the entry reads the same bytes, by
memoryview slice (TCP) or by address (UDP: memmove into the send batch, no Python object).
"""

from __future__ import annotations

import bisect
import ctypes
import hashlib
import struct
from array import array
from collections.abc import Callable


RECORD = struct.Struct("!BBHq")  # stream index, flags, packet length, media time (us)
RTP_TIMESTAMP = struct.Struct("!I")  # at byte 4 of an RTP header
FLAG_KEY = 0x01
RTP_TIMESTAMP = struct.Struct("!I")  # at byte 4 of an RTP header
ARENA_BYTES = 1 << 20  # a fill's packets are copied into buffers of this size (a larger packet gets its own)


class MediaFormatError(ValueError):
    """A data file does not parse as records (truncated or corrupt)."""


class EntryMedia:
    """Packets (memoryview slices of stable buffers) plus parallel arrays of their address, stream,
    flags and media time."""

    def __init__(self, stream_count: int, key_streams: tuple[int, ...] = ()) -> None:
        self.stream_count = stream_count
        self.key_streams = key_streams  # streams whose key frames define seek points
        self.packets: list = []
        self.addresses = array("Q")  # where packet i's bytes are (they stay there while this object lives)
        self._buffers: list = []  # keeps the memory behind `addresses` alive
        self._arena_view = memoryview(bytearray())
        self._arena_readonly = self._arena_view
        self._arena_base = 0
        self._arena_used = 0
        self.streams = array("B")
        self.flags = array("B")
        self.times = array("q")
        self.stamps = array("I")  # each packet's RTP timestamp (a replay moves it by its offset)
        # Seek indexes (bisected, not scanned, on every PLAY with a Range): the distinct key frame
        # times of the key streams in order with the first packet of each, and the running maximum of
        # `times` (media times need not be sorted: B-frames; the running maximum is).
        self.key_times = array("q")
        self.key_first = array("Q")
        self.max_times = array("q")
        self.bytes = 0
        self.finished = False  # no more packets will come (fill ended, or loaded from disk)
        self._waiters: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self.packets)

    def append(self, stream: int, packet, media_us: int, key: bool, timestamp: int | None = None) -> None:
        """`timestamp`: the RTP timestamp the copy carries instead of the packet's (a resumed fill)."""
        n = len(packet)
        if self._arena_used + n > len(self._arena_view):
            self._new_arena(max(ARENA_BYTES, n))
        start = self._arena_used
        self._arena_view[start:start + n] = packet
        if timestamp is not None:
            RTP_TIMESTAMP.pack_into(self._arena_view, start + 4, timestamp)
        self._arena_used = start + n
        self._add(stream, self._arena_readonly[start:start + n], self._arena_base + start, media_us, key)

    def _new_arena(self, size: int) -> None:
        arena = ctypes.create_string_buffer(size)
        self._buffers.append(arena)
        self._arena_view = memoryview(arena).cast("B")
        self._arena_readonly = self._arena_view.toreadonly()
        self._arena_base = ctypes.addressof(arena)
        self._arena_used = 0

    def _add(self, stream: int, packet, address: int, media_us: int, key: bool) -> None:
        self.packets.append(packet)
        self.addresses.append(address)
        self.streams.append(stream)
        self.flags.append(FLAG_KEY if key else 0)
        self.times.append(media_us)
        self.stamps.append(RTP_TIMESTAMP.unpack_from(packet, 4)[0])
        max_times = self.max_times
        max_times.append(max(media_us, max_times[-1]) if max_times else media_us)
        if key and stream in self.key_streams:
            self._index_key(media_us, len(self.times) - 1)
        self.bytes += len(packet)
        if self._waiters:
            self._wake()

    def _index_key(self, media_us: int, index: int) -> None:
        key_times = self.key_times
        if not key_times or media_us > key_times[-1]:
            key_times.append(media_us)
            self.key_first.append(index)
            return
        at = bisect.bisect_left(key_times, media_us)
        if key_times[at] != media_us:  # an earlier time than the last key frame's (rare): keep order
            key_times.insert(at, media_us)
            self.key_first.insert(at, index)
        # the same time as a known key frame: its first packet is already indexed

    def finish(self) -> None:
        self.finished = True
        self._wake()

    def when_grown(self, callback: Callable[[], None]) -> None:
        """Call `callback` once after the next append or finish (replays that caught up with a fill)."""
        if self.finished:
            callback()
        else:
            self._waiters.append(callback)

    def forget_waiter(self, callback: Callable[[], None]) -> None:
        if callback in self._waiters:
            self._waiters.remove(callback)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for callback in waiters:
            callback()

    def seek_index(self, position_us: int) -> int:
        """Index to start a replay at `position_us`: the last key frame of a key stream at or before it
        (the first packet at or after it when no stream has key frames)."""
        if self.key_streams:
            at = bisect.bisect_right(self.key_times, position_us)
            return self.key_first[at - 1] if at else 0
        return bisect.bisect_left(self.max_times, position_us)

    def duration_us(self) -> int:
        return self.max_times[-1] if self.max_times else 0

    # --- disk format ---
    def encode_into(self, write: Callable[[bytes], object]) -> str:
        """Write every record through `write`; returns the SHA-256 of what was written."""
        digest = hashlib.sha256()
        for packet, stream, flags, media_us in zip(self.packets, self.streams, self.flags, self.times):
            chunk = RECORD.pack(stream, flags, len(packet), media_us) + bytes(packet)
            digest.update(chunk)
            write(chunk)
        return digest.hexdigest()

    @classmethod
    def decode(cls, blob: bytes, stream_count: int, key_streams: tuple[int, ...]) -> EntryMedia:
        media = cls(stream_count, key_streams)
        pos, size = 0, len(blob)
        loaded = (ctypes.c_char * size).from_buffer_copy(blob) if size else ctypes.create_string_buffer(1)
        media._buffers.append(loaded)
        view, base = memoryview(loaded).cast("B").toreadonly(), ctypes.addressof(loaded)
        while pos < size:
            if pos + RECORD.size > size:
                raise MediaFormatError(f"truncated record header at byte {pos}")
            stream, flags, length, media_us = RECORD.unpack_from(blob, pos)
            pos += RECORD.size
            if pos + length > size or stream >= stream_count or length < 12:
                raise MediaFormatError(f"bad record at byte {pos - RECORD.size}")
            media._add(stream, view[pos:pos + length], base + pos, media_us, bool(flags & FLAG_KEY))
            pos += length
        media.finished = True
        return media
