"""Recorded media of one presentation: RTP packets in arrival order with their media time.

The same object serves a fill that is still growing (replays follow it) and an entry loaded from
disk. Each packet carries its stream index, a key-frame flag and its media time (microseconds
from npt 0, derived from RTP timestamps so a faster-than-real-time fill keeps the original pacing).
On disk: a sequence of records `RECORD` + packet bytes.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Callable


RECORD = struct.Struct("!BBHq")  # stream index, flags, packet length, media time (us)
FLAG_KEY = 0x01


class MediaFormatError(ValueError):
    """A data file does not parse as records (truncated or corrupt)."""


class EntryMedia:
    """Packets (bytes or memoryview slices) plus parallel arrays of stream, flags and media time."""

    def __init__(self, stream_count: int, key_streams: tuple[int, ...] = ()) -> None:
        self.stream_count = stream_count
        self.key_streams = key_streams  # streams whose key frames define seek points
        self.packets: list = []
        self.streams = array("B")
        self.flags = array("B")
        self.times = array("q")
        self.bytes = 0
        self.finished = False  # no more packets will come (fill ended, or loaded from disk)
        self._waiters: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self.packets)

    def append(self, stream: int, packet: bytes, media_us: int, key: bool) -> None:
        self.packets.append(packet)
        self.streams.append(stream)
        self.flags.append(FLAG_KEY if key else 0)
        self.times.append(media_us)
        self.bytes += len(packet)
        if self._waiters:
            self._wake()

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
        times, streams, flags = self.times, self.streams, self.flags
        if self.key_streams:
            best, best_time = 0, -1
            for i in range(len(times)):
                t = times[i]
                # the earliest packet of the latest key frame time not after the position
                if t <= position_us and t > best_time and streams[i] in self.key_streams and flags[i] & FLAG_KEY:
                    best, best_time = i, t
            return best
        for i in range(len(times)):
            if times[i] >= position_us:
                return i
        return len(times)

    def duration_us(self) -> int:
        return max(self.times) if self.times else 0

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
        view = memoryview(blob)
        pos, size = 0, len(blob)
        while pos < size:
            if pos + RECORD.size > size:
                raise MediaFormatError(f"truncated record header at byte {pos}")
            stream, flags, length, media_us = RECORD.unpack_from(blob, pos)
            pos += RECORD.size
            if pos + length > size or stream >= stream_count or length < 12:
                raise MediaFormatError(f"bad record at byte {pos - RECORD.size}")
            media.append(stream, view[pos:pos + length], media_us, bool(flags & FLAG_KEY))
            pos += length
        media.finished = True
        return media
