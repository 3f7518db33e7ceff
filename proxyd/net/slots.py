"""A wakeup's UDP datagrams read into fixed slots by one recvmmsg, and sent on from those slots to
one destination by one sendmmsg, by address.

`drain` (net/udp.py) makes a recvfrom_into call, an address tuple and string per datagram and ends
each wakeup on a BlockingIOError (whose message libc formats). SlotReader reads up to `slots`
datagrams in one call into a preallocated arena (an anonymous mapping: only touched pages are
resident) and checks each datagram's source against one expected peer by comparing words of the
raw sockaddr. SlotSender points its iovecs at the reader's slots, so a packet rewritten in place
is sent without being copied (net/burst.py copies into its batch, which fans out to many players).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import socket
import struct

from proxyd.net.udp import DRAIN_BURST, Mmsghdr, libc_recvmmsg, libc_sendmmsg, sockaddr_of

MSG_TRUNC, MSG_DONTWAIT = 0x20, 0x40  # linux/socket.h
SLOT_BYTES = 65536  # any UDP datagram fits (65507 bytes of IPv4 payload)
NAME_BYTES = 32  # a sockaddr_in6 (28 bytes) rounded up to whole 64-bit words
_MSG_WORDS = ctypes.sizeof(Mmsghdr) // 4  # 32-bit words per mmsghdr
_FLAGS_WORD = 48 // 4  # msg_hdr.msg_flags on LP64 (batch_io_supported checks the layout)
_LEN_WORD = Mmsghdr.msg_len.offset // 4
_SKIPPED_ERRORS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.EINTR)  # an earlier send's ICMP


def batch_io_supported() -> bool:
    return (libc_recvmmsg is not None and libc_sendmmsg is not None and ctypes.sizeof(Mmsghdr) == 64
            and Mmsghdr.msg_len.offset == 56)


class SlotReader:
    """`read()` fills slots 0..count-1; `from_source(count)` yields (slot, nbytes) of those that
    came from the peer named by `expect_source` and were not truncated."""

    def __init__(self, sock: socket.socket, slots: int = DRAIN_BURST, slot_bytes: int = SLOT_BYTES) -> None:
        self.fd = sock.fileno()
        self.family = sock.family
        self.slots, self.slot_bytes = slots, slot_bytes
        self.arena = mmap.mmap(-1, slots * slot_bytes)
        self._arena_words = (ctypes.c_char * (slots * slot_bytes)).from_buffer(self.arena)
        base = ctypes.addressof(self._arena_words)
        self.slot_addresses = [base + i * slot_bytes for i in range(slots)]
        arena_view = memoryview(self.arena)
        self.slot_views = [arena_view[i * slot_bytes:(i + 1) * slot_bytes] for i in range(slots)]
        self._names = (ctypes.c_uint64 * (slots * NAME_BYTES // 8))()
        self._name_words = memoryview(self._names).cast("B").cast("Q")
        self._iovs = (ctypes.c_uint64 * (2 * slots))()
        self._msgs = (Mmsghdr * slots)()
        for i, msg in enumerate(self._msgs):
            self._iovs[2 * i], self._iovs[2 * i + 1] = self.slot_addresses[i], slot_bytes
            msg.msg_hdr.msg_name = ctypes.addressof(self._names) + i * NAME_BYTES
            msg.msg_hdr.msg_namelen = NAME_BYTES
            msg.msg_hdr.msg_iov = ctypes.cast(ctypes.addressof(self._iovs) + 16 * i, type(msg.msg_hdr.msg_iov))
            msg.msg_hdr.msg_iovlen = 1
        self._msg_words = memoryview(self._msgs).cast("B").cast("I")
        self._source: tuple[int, int, int, int] | None = None  # (mask of word 0, words 0, 1, 2)
        self.truncated = 0  # datagrams longer than a slot (dropped)
        self.strangers = 0  # datagrams from another source (players' NAT punches)

    def expect_source(self, host: str | None, port: int | None) -> None:
        """Accept datagrams from `host` (as the socket reports it: see udp.peer_address), from any
        port when `port` is None; None accepts nothing."""
        if host is None:
            self._source = None
            return
        name = sockaddr_of(self.family, host, port or 0).ljust(NAME_BYTES, b"\0")
        w0, w1, w2 = struct.unpack_from("=QQQ", name)
        if self.family == socket.AF_INET6:
            mask = 0xFFFFFFFF  # family and port; the flow information is not the peer's name
        else:
            mask = 0xFFFFFFFFFFFFFFFF  # family, port, IPv4 address
        if port is None:
            mask &= ~0xFFFF0000  # the port's bytes
        self._source = (mask, w0 & mask, w1, w2)

    def read(self) -> int:
        """Datagrams read in one recvmmsg (0 when none is waiting)."""
        for _ in range(4):  # each pending ICMP error ends one call: skip it
            count = libc_recvmmsg(self.fd, self._msgs, self.slots, MSG_DONTWAIT, None)
            if count >= 0:
                return count
            if ctypes.get_errno() not in _SKIPPED_ERRORS:
                return 0
        return 0

    def from_source(self, count: int):
        """(slot, nbytes) of each of the `count` datagrams read that came whole from the source."""
        source = self._source
        if source is None:
            self.strangers += count
            return
        mask, w0, w1, w2 = source
        names, msgs = self._name_words, self._msg_words
        for slot in range(count):
            name = 4 * slot
            if names[name] & mask != w0 or names[name + 1] != w1 or names[name + 2] != w2:
                self.strangers += 1
                continue
            word = _MSG_WORDS * slot
            if msgs[word + _FLAGS_WORD] & MSG_TRUNC:
                self.truncated += 1
                continue
            yield slot, msgs[word + _LEN_WORD]

    def close(self) -> None:
        self.slot_views.clear()
        del self._arena_words
        try:
            self.arena.close()
        except BufferError:  # a slot view is still referenced: the mapping goes with it
            pass


class SlotSender:
    """Slots of a SlotReader (`add` in order), sent to one destination by `flush` in one sendmmsg."""

    def __init__(self, sock: socket.socket, reader: SlotReader) -> None:
        self.fd = sock.fileno()
        self.family = sock.family
        self._slot_addresses = reader.slot_addresses
        slots = reader.slots
        self._name = ctypes.create_string_buffer(NAME_BYTES)
        self._iovs = (ctypes.c_uint64 * (2 * slots))()
        self._iov_words = memoryview(self._iovs).cast("B").cast("Q")
        self._msgs = (Mmsghdr * slots)()
        for i, msg in enumerate(self._msgs):
            msg.msg_hdr.msg_name = ctypes.addressof(self._name)
            msg.msg_hdr.msg_iov = ctypes.cast(ctypes.addressof(self._iovs) + 16 * i, type(msg.msg_hdr.msg_iov))
            msg.msg_hdr.msg_iovlen = 1
        self.destination: tuple | None = None
        self.pending = 0
        self.flushes = 0  # sendmmsg batches: packets / flushes is the burst size the player is woken for
        self.send_errors = 0  # datagrams the kernel refused (skipped, the rest still sent)

    def set_destination(self, destination: tuple | None) -> None:
        self.flush()
        self.destination = destination
        if destination is not None:
            name = sockaddr_of(self.family, destination[0], destination[1])
            ctypes.memmove(self._name, name, len(name))
            for msg in self._msgs:
                msg.msg_hdr.msg_namelen = len(name)

    def add(self, slot: int, n: int) -> None:
        """Send slot `slot`'s first `n` bytes at the next flush (a reader's slot: at most one
        wakeup's worth are pending)."""
        words, k = self._iov_words, 2 * self.pending
        words[k] = self._slot_addresses[slot]
        words[k + 1] = n
        self.pending += 1

    def flush(self) -> int:
        """Send what was added; returns the datagrams accepted."""
        total, self.pending = self.pending, 0
        if not total or self.destination is None:
            return 0
        self.flushes += 1
        sent = done = 0
        while done < total:
            rc = libc_sendmmsg(self.fd, ctypes.byref(self._msgs, done * ctypes.sizeof(Mmsghdr)), total - done, 0)
            if rc < 0:
                if ctypes.get_errno() == errno.EINTR:
                    continue
                self.send_errors += 1  # this datagram failed (EAGAIN, ENOBUFS, an ICMP error): skip it
                done += 1
                continue
            sent += rc
            done += rc
        return sent
