"""Split hot path: one received packet goes to every player with one system call (UDP) or one
shared joined write per wakeup (TCP).

UDP: the packet is received into a ctypes buffer whose header is rewritten in place, and one
`sendmmsg` goes over a prebuilt mmsghdr array whose entries all point at that buffer (no copy, no
per-destination Python work). All players of a split share the hub's SSRC/sequence/timestamp
mapping, so the bytes are the same for everyone; each player's start point is told by RTP-Info.
TCP: frames of one wakeup are joined once per channel layout and the same bytes object is written
to every player of that layout; a player whose write buffer is past the high-water mark loses those
packets (counted), past the drop limit or the drop budget it is disconnected.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import socket
import struct
from collections.abc import Callable, Iterable

from proxyd.net.udp import _Iovec, _Mmsghdr, _sendmmsg, _sockaddr

FRAME_HEADER = struct.Struct("!cBH")
MAX_DATAGRAM = 65536


class UdpFanout:
    """sendmmsg of the first `n` bytes of a fixed ctypes buffer to a set of destinations."""

    def __init__(self, sock: socket.socket, buffer) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self.buffer = buffer
        self._iov = _Iovec(ctypes.addressof(buffer), 0)
        self._msgs = (_Mmsghdr * 0)()
        self._names = ctypes.create_string_buffer(1)
        self.count = 0
        self.destinations: tuple[tuple[str, int], ...] = ()
        self.send_errors = 0

    def set_destinations(self, destinations: Iterable[tuple[str, int]]) -> None:
        dests = tuple(destinations)
        names = [_sockaddr(self.family, h, p) for h, p in dests]
        size = len(names[0]) if names else 0
        self._names = ctypes.create_string_buffer(b"".join(names), max(1, size * len(names)))
        base = ctypes.addressof(self._names)
        msgs = (_Mmsghdr * len(dests))()
        iov_ptr = ctypes.pointer(self._iov)
        for i in range(len(dests)):
            hdr = msgs[i].msg_hdr
            hdr.msg_name = base + i * size
            hdr.msg_namelen = size
            hdr.msg_iov = iov_ptr
            hdr.msg_iovlen = 1
        self._msgs, self.count, self.destinations = msgs, len(dests), dests

    def send(self, n: int) -> int:
        """Send buffer[:n] to every destination; returns datagrams accepted by the kernel."""
        count = self.count
        if not count:
            return 0
        self._iov.iov_len = n
        if _sendmmsg is None:
            return self._send_loop(n)
        sent = done = 0
        size = ctypes.sizeof(_Mmsghdr)
        while done < count:
            rc = _sendmmsg(self.fd, ctypes.byref(self._msgs, done * size), count - done, 0)
            if rc < 0:
                if ctypes.get_errno() == errno.EINTR:
                    continue
                # This destination failed (EAGAIN, ENOBUFS, an ICMP error): skip it, not the rest.
                self.send_errors += 1
                done += 1
                continue
            sent += rc
            done += rc
        return sent

    def _send_loop(self, n: int) -> int:
        data = ctypes.string_at(self.buffer, n)
        sent = 0
        for dest in self.destinations:
            try:
                self.sock.sendto(data, dest)
                sent += 1
            except OSError:
                self.send_errors += 1
        return sent


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

    def __init__(self, layout: tuple, *, high_water: int, drop_limit: int, max_dropped: int) -> None:
        self.layout = layout
        self.high_water = high_water
        self.drop_limit = drop_limit
        self.max_dropped = max_dropped
        self.members: list[TcpMember] = []
        self.pending = bytearray()
        self.pending_packets = 0
        self._loop = asyncio.get_running_loop()

    def add(self, stream_index: int, rtcp: bool, data) -> None:
        channels = self.layout[stream_index]
        if channels is None or not self.members:
            return
        if not self.pending:
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
