"""Split hot path for TCP players: one shared joined write per flush interval (UDP players:
net/burst.py, the packets of a wakeup player by player in one sendmmsg). All players of a split share the hub's
SSRC/sequence/timestamp mapping, so the bytes are the same for everyone; each player's start point
is told by RTP-Info.
TCP: frames of one flush interval (--split-tcp-flush-interval, 20 ms: a video frame and its audio),
or of one coalesced read pass of a UDP origin's streams (split/coalesce.py), are joined once per channel layout and the same bytes object is written to every player of that
layout; a player whose write buffer is past the high-water mark loses those
packets (counted), past the drop limit or the drop budget it is disconnected.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterable


FRAME_HEADER = struct.Struct("!cBH")
MAX_DATAGRAM = 65536


class TcpMember:
    """One TCP player in a TcpGroup. `hold` buffers frames until its PLAY response is on the wire."""

    __slots__ = ("transport", "dropped", "on_overflow", "hold", "closed")

    def __init__(self, transport: asyncio.Transport, on_overflow: Callable[[str], None]) -> None:
        self.transport = transport
        self.dropped = 0
        self.on_overflow = on_overflow
        self.hold: bytearray | None = bytearray()
        self.closed = False

    def release(self) -> None:
        hold, self.hold = self.hold, None
        if hold and not self.closed and not self.transport.is_closing():
            self.transport.write(bytes(hold))


class TcpGroup:
    """TCP players with the same channel layout: per hub stream (rtp, rtcp) channels or None."""

    def __init__(self, layout: tuple, *, high_water: int, drop_limit: int, max_dropped: int,
                 flush_interval: float = 0.0) -> None:
        self.layout = layout
        self.flush_interval = flush_interval  # 0: flush at the end of this event-loop pass
        self.high_water = high_water
        self.drop_limit = drop_limit
        self.max_dropped = max_dropped
        self.members: list[TcpMember] = []
        self.pending = bytearray()
        self.pending_packets = 0
        self.caller_flushes = False  # a coalesced read pass (split/coalesce.py) flushes at its end: no timer
        self._loop = asyncio.get_running_loop()

    def add(self, stream_index: int, rtcp: bool, data) -> None:
        channels = self.layout[stream_index]
        if channels is None or not self.members:
            return
        if not self.pending and not self.caller_flushes:
            if self.flush_interval:
                self._loop.call_later(self.flush_interval, self.flush)
            else:
                self._loop.call_soon(self.flush)
        self.pending += FRAME_HEADER.pack(b"$", channels[1] if rtcp else channels[0], len(data))
        self.pending += data
        self.pending_packets += 1

    def flush(self) -> None:
        if not self.pending:
            return
        blob = bytes(self.pending)
        packets = self.pending_packets
        self.pending.clear()
        self.pending_packets = 0
        for member in self.members:
            if member.hold is not None:
                member.hold += blob
                continue
            buffered = member.transport.get_write_buffer_size()
            if buffered > self.high_water:
                member.dropped += packets
                if (buffered > self.drop_limit or member.dropped > self.max_dropped) and not member.closed:
                    member.closed = True
                    member.on_overflow(f"slow player: {buffered} bytes buffered, "
                                       f"{member.dropped} packets dropped")
            elif not member.closed:
                member.transport.write(blob)

    def frames(self, stream_index: int, packets: Iterable[bytes]) -> bytes:
        """Interleaved frames for `packets` of one stream in this layout (a late joiner's replay)."""
        channel = self.layout[stream_index][0]
        return b"".join(FRAME_HEADER.pack(b"$", channel, len(p)) + p for p in packets)
