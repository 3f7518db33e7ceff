"""Datagrams for many destinations, each with its own bytes, sent from one socket in one sendmmsg.

net/burst.py sends the same packets to every destination (a split). Here every destination gets
different bytes (cache replays, each at its own position with its own SSRC and sequence): the
caller writes datagrams into `view` at `used` and describes them with `emit` (a run of equal-size
datagrams to one destination, the last one possibly shorter, is one message with UDP GSO); `flush`
sends every message with one system call per MAX_MESSAGES. The mmsghdr array, iovecs and GSO
control messages are preallocated; a message costs a few word writes, a datagram nothing in Python.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import socket

from proxyd.net.burst import CMSG_HEADER, CMSG_SPACE, GSO_REFUSED, MMSGHDR, SOL_UDP, UDP_SEGMENT, gso_supported
from proxyd.net.udp import libc_sendmmsg, sockaddr_of

MAX_MESSAGES = 1024  # UIO_MAXIOV: what one sendmmsg takes
CAPACITY = 1 << 20  # bytes of datagrams per flush (a flush makes room, so any datagram fits)
_WORDS = 8  # struct mmsghdr on LP64 is 8 words (see burst.MMSGHDR)
_CMSG_U16 = CMSG_SPACE // 2
_SEGMENT_U16 = CMSG_HEADER.size // 2  # where a control message's UDP_SEGMENT value is


class Destination:
    """A datagram destination: its sockaddr (kept alive while a message points at it) and the
    counters its failed datagrams are taken off (`packets_out`) and added to (`packets_dropped`)."""

    __slots__ = ("address", "name", "name_ptr", "name_len", "counters")

    def __init__(self, family: int, address: tuple, counters) -> None:
        self.address = address
        self.name = ctypes.create_string_buffer(sockaddr_of(family, address[0], address[1]))
        self.name_ptr = ctypes.addressof(self.name)
        self.name_len = len(self.name.raw)
        self.counters = counters


class SendBatch:
    def __init__(self, sock: socket.socket, capacity: int = CAPACITY, max_messages: int = MAX_MESSAGES) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.capacity = capacity
        self.max_messages = max_messages
        self.buffer = ctypes.create_string_buffer(capacity)
        self.view = memoryview(self.buffer).cast("B")
        self.base = ctypes.addressof(self.buffer)
        self.used = 0  # bytes of `view` written (the caller advances it)
        self.count = 0  # messages emitted
        self.owners: list[Destination] = []  # per message
        self.iovs = (ctypes.c_uint64 * (2 * max_messages))()
        self.iov_words = memoryview(self.iovs).cast("B").cast("Q")
        self.cmsgs = ctypes.create_string_buffer(CMSG_SPACE * max_messages)
        self.segment_sizes = memoryview(self.cmsgs).cast("B").cast("H")
        self.msgs = ctypes.create_string_buffer(MMSGHDR.size * max_messages) if MMSGHDR else None
        self.msg_words = memoryview(self.msgs).cast("B").cast("Q") if MMSGHDR else None
        self.gso = gso_supported(sock)
        iov_base, cmsg_base = ctypes.addressof(self.iovs), ctypes.addressof(self.cmsgs)
        for m in range(max_messages):
            CMSG_HEADER.pack_into(self.cmsgs, m * CMSG_SPACE, CMSG_HEADER.size + 2, SOL_UDP, UDP_SEGMENT)
            if MMSGHDR:
                MMSGHDR.pack_into(self.msgs, m * MMSGHDR.size, 0, 0, iov_base + 16 * m, 1,
                                  cmsg_base + m * CMSG_SPACE, CMSG_SPACE if self.gso else 0, 0, 0)
        self.send_errors = 0  # datagrams the kernel refused
        self.gso_refused = 0  # messages a route refused to segment (re-sent datagram by datagram)
        self.flushes = 0
        self.scheduled = False
        self.closed = False
        self._loop = asyncio.get_running_loop()

    def emit(self, dest: Destination, start: int, length: int, segment: int) -> None:
        """One message: bytes start..start+length of `view` to `dest`, a datagram every `segment`
        bytes (the last one may be shorter; without GSO, length == segment). The caller keeps
        `count` below `max_messages` (flushing first)."""
        m = self.count
        self.count = m + 1
        words = self.msg_words
        if words is not None:
            words[_WORDS * m] = dest.name_ptr
            words[_WORDS * m + 1] = dest.name_len
        iovs = self.iov_words
        iovs[2 * m] = self.base + start
        iovs[2 * m + 1] = length
        self.segment_sizes[_CMSG_U16 * m + _SEGMENT_U16] = segment
        self.owners.append(dest)

    def flush_soon(self) -> None:
        """Flush at the next loop iteration: every sender of this pass shares the system call."""
        if not self.scheduled and self.count:
            self.scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        count = self.count
        self.count = self.used = 0
        if not count or self.closed:
            self.owners.clear()
            return
        self.flushes += 1
        done = 0
        while done < count:
            if self.msg_words is None or libc_sendmmsg is None:
                self._send_plain(done)
                done += 1
                continue
            rc = libc_sendmmsg(self.fd, ctypes.byref(self.msgs, done * MMSGHDR.size), count - done, 0)
            if rc >= 0:
                done += rc
                continue
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            if self.gso and err in GSO_REFUSED:
                self._refuse_gso()
                for m in range(done, count):  # the rest were built as runs: datagram by datagram
                    self._send_plain(m)
                break
            self._dropped(done)  # EAGAIN, ENOBUFS: this message's datagrams are lost, not the rest
            done += 1
        self.owners.clear()

    def _segments(self, m: int) -> tuple[int, int, int]:
        length = self.iov_words[2 * m + 1]
        return self.iov_words[2 * m], length, self.segment_sizes[_CMSG_U16 * m + _SEGMENT_U16] or length

    def _dropped(self, m: int) -> None:
        _base, length, segment = self._segments(m)
        lost = -(-length // segment)
        self.send_errors += lost
        counters = self.owners[m].counters
        counters.packets_out -= lost
        counters.packets_dropped += lost

    def _send_plain(self, m: int) -> None:
        """Message `m` datagram by datagram with sendto (no sendmmsg, or a route refusing GSO)."""
        base, length, segment = self._segments(m)
        data = ctypes.string_at(base, length)
        dest = self.owners[m]
        for offset in range(0, length, segment):
            try:
                self.sock.sendto(data[offset:offset + segment], dest.address)
            except OSError:
                self.send_errors += 1
                dest.counters.packets_out -= 1
                dest.counters.packets_dropped += 1

    def _refuse_gso(self) -> None:
        """A route that refuses UDP_SEGMENT (no checksum offload, IPsec): no more runs from here on."""
        self.gso = False
        self.gso_refused += 1
        for m in range(self.max_messages):
            self.msg_words[_WORDS * m + 5] = 0  # msg_controllen

    def close(self) -> None:
        """Send what is pending, then never touch the socket again (its descriptor may be reused)."""
        self.flush()
        self.closed = True
