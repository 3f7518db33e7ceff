"""RTP/RTCP forwarding between one origin session and one player (no per-packet rewriting in this issue).

Hot path rules: UDP sockets are read with add_reader into one preallocated 64 KiB buffer (no stdlib
datagram transport, so no 256 KiB max_size allocation per datagram), a burst is drained per wakeup,
UDP is forwarded with sendto from the advertised server port, TCP interleaved frames are joined
into one write per loop iteration, and a slow TCP player gets packets dropped, then disconnected
(live media cannot wait). A sender that can wait (a cache replay) asks `congested` first and, when
it is, `when_drained`: the transport's own flow control (limits set to the high-water mark) calls
the player connection's resume_writing once the buffer is down to a quarter of it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

from proxyd.net.udp import close_watched, drain
from proxyd.rtp.rtcp import first_report_block

FRAME_HEADER = struct.Struct("!cBH")
FRAME_PLACEHOLDER = bytes(FRAME_HEADER.size)
SEQ_TS_SSRC = struct.Struct("!HII")  # at byte 2
MAX_DATAGRAM = 65536


class StreamCounters:
    """Per-stream counters; loss from RTP sequence gaps, jitter from the player's receiver reports."""

    __slots__ = ("packets_in", "bytes_in", "packets_out", "bytes_out", "packets_lost", "packets_dropped",
                 "jitter_units", "_last_seq")

    def __init__(self) -> None:
        self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0
        self.packets_lost = self.packets_dropped = self.jitter_units = 0
        self._last_seq = -1

    def count_rtp_in(self, data) -> None:
        self.packets_in += 1
        self.bytes_in += len(data)
        if len(data) < 12:
            return
        seq = (data[2] << 8) | data[3]
        last = self._last_seq
        if last >= 0:
            gap = (seq - last) & 0xFFFF
            if gap == 0 or gap >= 0x8000:  # duplicate or reordered: not a loss, keep the high mark
                return
            self.packets_lost += gap - 1
        self._last_seq = seq


def aggregate_counters(streams) -> dict:
    """Session totals in the report shape (session.counters / session.ended)."""
    totals = dict.fromkeys(("bytes_out", "packets_out", "bytes_in", "packets_in", "packets_lost"), 0)
    for stream in streams:
        c = stream.counters
        totals["bytes_out"] += c.bytes_out
        totals["packets_out"] += c.packets_out
        totals["bytes_in"] += c.bytes_in
        totals["packets_in"] += c.packets_in
        totals["packets_lost"] += c.packets_lost
    totals["jitter_ms"] = round(max((s.jitter_ms for s in streams), default=0.0), 3)
    return totals


class InterleavedWriter:
    """Joins interleaved frames for one player TCP connection into one write per loop iteration."""

    def __init__(self, transport: asyncio.Transport, *, high_water: int, drop_limit: int,
                 max_dropped: int, on_overflow: Callable[[str], None]) -> None:
        self.transport = transport
        self.high_water = high_water
        self.drop_limit = drop_limit
        self.max_dropped = max_dropped
        self.on_overflow = on_overflow
        self.pending = bytearray()
        self.pending_packets = 0
        self.dropped = 0
        self.closed = False
        self.drain_waiters: list[Callable[[], None]] = []
        self._loop = asyncio.get_running_loop()
        # pause_writing/resume_writing at our mark (low: a quarter of it), so a waiting sender is
        # woken by the transport rather than by polling its buffer.
        transport.set_write_buffer_limits(high=high_water)

    @property
    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    @property
    def congested(self) -> bool:
        """Past the high-water mark: what is flushed now would be dropped."""
        return self.buffered > self.high_water

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the buffer has drained (at once, on the loop, if it already has)."""
        if not self.congested:
            self._loop.call_soon(callback)
        elif callback not in self.drain_waiters:
            self.drain_waiters.append(callback)

    def forget_drained(self, callback: Callable[[], None]) -> None:
        if callback in self.drain_waiters:
            self.drain_waiters.remove(callback)

    def drained(self) -> None:
        """The player connection's resume_writing: wake the waiting senders."""
        waiters, self.drain_waiters = self.drain_waiters, []
        for callback in waiters:
            callback()

    def add(self, channel: int, data) -> None:
        if self.closed:
            return
        if not self.pending:
            self._loop.call_soon(self.flush)
        self.pending += FRAME_HEADER.pack(b"$", channel, len(data))
        self.pending += data
        self.pending_packets += 1

    def add_rtp_stream(self, channel: int, packets, stamps, streams, index: int, first: int, last: int,
                       seq: int, ts_offset: int, ssrc: int) -> tuple[int, int]:
        """Append packets[first:last] of stream `index` (streams[i] == index) as frames with their headers
        rewritten in place: sequence numbers from `seq` on, timestamp stamps[i] moved by `ts_offset`,
        `ssrc`; no object per packet. The caller flushes (once per wakeup). Returns (packets, bytes)."""
        if self.closed:
            return 0, 0
        pending, frame, rewrite = self.pending, FRAME_HEADER.pack_into, SEQ_TS_SSRC.pack_into
        count = octets = 0
        for i in range(first, last):
            if streams[i] != index:
                continue
            packet = packets[i]
            n = len(packet)
            at = len(pending)
            pending += FRAME_PLACEHOLDER
            pending += packet
            frame(pending, at, b"$", channel, n)
            rewrite(pending, at + 6, (seq + count) & 0xFFFF, (stamps[i] + ts_offset) & 0xFFFFFFFF, ssrc)
            count += 1
            octets += n
        self.pending_packets += count
        return count, octets

    def flush(self) -> None:
        if not self.pending or self.closed:
            return
        buffered = self.transport.get_write_buffer_size()
        if buffered > self.high_water:
            self.dropped += self.pending_packets
            if buffered > self.drop_limit or self.dropped > self.max_dropped:
                self.closed = True
                self.on_overflow(f"slow player: {buffered} bytes buffered, {self.dropped} packets dropped")
        else:
            self.transport.write(bytes(self.pending))
        self.pending.clear()
        self.pending_packets = 0

    def close(self) -> None:
        self.closed = True
        self.pending.clear()
        self.drain_waiters.clear()


class StreamRelay:
    """One media stream: origin RTP/RTCP in (UDP socket pair or interleaved channels), player out."""

    def __init__(self, index: int, clock_rate: int = 90000) -> None:
        self.index = index
        self.clock_rate = clock_rate
        self.counters = StreamCounters()
        self.first_packet = asyncio.Event()
        # Player side: exactly one of udp addresses or tcp writer+channels.
        self.player_rtp_addr: tuple | None = None
        self.player_rtcp_addr: tuple | None = None
        self.player_writer: InterleavedWriter | None = None
        self.player_channels = (0, 1)
        # Origin side: UDP addresses for RTCP back, or an interleaved sender.
        self.origin_rtcp_addr: tuple | None = None
        self.origin_ip: str | None = None  # UDP media is accepted from this address only
        self.origin_frame_sender: Callable[[int, bytes], None] | None = None
        self.origin_channels = (0, 1)
        self.pair: UdpPair | None = None
        self.player_seen = False  # set by player RTCP; the idle reaper reads and clears it

    @property
    def player_transport(self) -> str:
        return "tcp" if self.player_writer is not None else "udp"

    # --- origin -> player ---
    def rtp_from_origin(self, data) -> None:
        c = self.counters
        c.count_rtp_in(data)
        if c.packets_in == 1:
            self.first_packet.set()
        writer = self.player_writer
        if writer is not None:
            writer.add(self.player_channels[0], data)
        elif self.player_rtp_addr is not None and self.pair is not None:
            try:
                self.pair.rtp.sendto(data, self.player_rtp_addr)
            except OSError:
                c.packets_dropped += 1
                return
        else:
            return
        c.packets_out += 1
        c.bytes_out += len(data)

    def rtcp_from_origin(self, data) -> None:
        if self.player_writer is not None:
            self.player_writer.add(self.player_channels[1], data)
        elif self.player_rtcp_addr is not None and self.pair is not None:
            try:
                self.pair.rtcp.sendto(data, self.player_rtcp_addr)
            except OSError:
                pass

    # --- player -> origin (receiver reports) ---
    def rtcp_from_player(self, data) -> None:
        self.player_seen = True
        block = first_report_block(data)
        if block is not None:
            self.counters.jitter_units = block.jitter
        if self.origin_frame_sender is not None:
            self.origin_frame_sender(self.origin_channels[1], bytes(data))
        elif self.origin_rtcp_addr is not None and self.pair is not None:
            try:
                self.pair.rtcp.sendto(data, self.origin_rtcp_addr)
            except OSError:
                pass

    @property
    def jitter_ms(self) -> float:
        return self.counters.jitter_units * 1000.0 / self.clock_rate if self.clock_rate else 0.0

    def close(self) -> None:
        if self.pair is not None:
            self.pair.close()
            self.pair = None
        if self.player_writer is not None:
            self.player_writer = None


class UdpPair:
    """An RTP/RTCP socket pair read with add_reader; datagrams go to the stream by direction."""

    def __init__(self, rtp: socket.socket, rtcp: socket.socket, stream: StreamRelay) -> None:
        self.rtp = rtp
        self.rtcp = rtcp
        self.stream = stream
        self.rtp_port = rtp.getsockname()[1]
        self._buf = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buf)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(rtp.fileno(), self._on_rtp)
        self._loop.add_reader(rtcp.fileno(), self._on_rtcp)
        self.closed = False

    def _on_rtp(self) -> None:
        sock, view, stream = self.rtp, self._view, self.stream
        origin_ip, player = stream.origin_ip, stream.player_rtp_addr
        for n, addr in drain(sock, self._buf):
            if addr[0] != origin_ip or addr == player:  # NAT punches and strangers' packets are not media
                continue
            stream.rtp_from_origin(view[:n])

    def _on_rtcp(self) -> None:
        sock, view, stream = self.rtcp, self._view, self.stream
        for n, addr in drain(sock, self._buf):
            if addr == stream.player_rtcp_addr:
                stream.rtcp_from_player(view[:n])
            elif addr[0] == stream.origin_ip:
                stream.rtcp_from_origin(view[:n])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        close_watched(self._loop, self.rtp, self.rtcp)
