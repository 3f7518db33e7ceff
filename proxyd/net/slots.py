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
SOL_UDP, UDP_SEGMENT = 17, 103  # linux/udp.h; Python 3.11's socket module lacks UDP_SEGMENT
MAX_GSO_SEGMENTS = 64  # UDP_MAX_SEGMENTS of older kernels
MAX_GSO_BYTES = 65000  # one IP datagram's payload, headers left room
_CMSG_HEADER = struct.Struct("=Qii")  # cmsg_len, cmsg_level, cmsg_type; a u16 follows
_CMSG_SPACE = 24  # CMSG_SPACE(sizeof(uint16_t)) on LP64
_GSO_REFUSED = (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP)


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
    """Slots of a SlotReader (`add` in order), sent to one destination by `flush` in one sendmmsg.

    With UDP segmentation offload a run of equal-size packets (the fragments of a video frame; the
    last may be shorter) is one message of several iovecs, which the kernel sends as one datagram
    per segment: one route lookup and socket buffer pass per run instead of per packet."""

    def __init__(self, sock: socket.socket, reader: SlotReader) -> None:
        self.fd = sock.fileno()
        self.family = sock.family
        self._slot_addresses = reader.slot_addresses
        slots = reader.slots
        self._name = ctypes.create_string_buffer(NAME_BYTES)
        self._iovs = (ctypes.c_uint64 * (2 * slots))()
        self._iov_words = memoryview(self._iovs).cast("B").cast("Q")
        self._iov_base = ctypes.addressof(self._iovs)
        self._msgs = (Mmsghdr * slots)()
        for msg in self._msgs:
            msg.msg_hdr.msg_name = ctypes.addressof(self._name)
        self._msg_words = memoryview(self._msgs).cast("B").cast("Q")  # 8 words per mmsghdr
        self._cmsgs = ctypes.create_string_buffer(_CMSG_SPACE * slots)
        for r in range(slots):
            _CMSG_HEADER.pack_into(self._cmsgs, r * _CMSG_SPACE, _CMSG_HEADER.size + 2, SOL_UDP, UDP_SEGMENT)
        self._cmsg_u16 = memoryview(self._cmsgs).cast("B").cast("H")
        self._cmsg_base = ctypes.addressof(self._cmsgs)
        self.gso = _gso_supported(sock)
        self.gso_refused = 0  # flushes a route refused to segment (sent again datagram by datagram)
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
        if self.gso:
            messages = self._layout_runs(total)
        else:
            messages = self._layout_single(total)
        sent = done = 0
        while done < messages:
            rc = libc_sendmmsg(self.fd, ctypes.byref(self._msgs, done * ctypes.sizeof(Mmsghdr)), messages - done, 0)
            if rc < 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                if self.gso and err in _GSO_REFUSED:  # no checksum offload on this route, IPsec
                    return sent + self._resend_plain(done, total)
                self.send_errors += 1  # this message failed (EAGAIN, ENOBUFS, an ICMP error): skip it
                done += 1
                continue
            words = self._msg_words
            sent += sum(words[8 * m + 3] for m in range(done, done + rc)) if self.gso else rc
            done += rc
        return sent

    def _layout_single(self, total: int) -> int:
        words, iov_base = self._msg_words, self._iov_base
        for m in range(total):
            w = 8 * m
            words[w + 2], words[w + 3], words[w + 4], words[w + 5] = iov_base + 16 * m, 1, 0, 0
        return total

    def _layout_runs(self, total: int) -> int:
        """One message per run of equal-size packets (the last one may be shorter); returns messages."""
        lengths, words, seg_sizes = self._iov_words, self._msg_words, self._cmsg_u16
        iov_base, cmsg_base = self._iov_base, self._cmsg_base
        m = p = 0
        while p < total:
            start, seg = p, lengths[2 * p + 1]
            size, p = seg, p + 1
            while p < total and p - start < MAX_GSO_SEGMENTS:
                n = lengths[2 * p + 1]
                if n > seg or size + n > MAX_GSO_BYTES:
                    break
                size, p = size + n, p + 1
                if n < seg:
                    break
            w = 8 * m
            words[w + 2], words[w + 3] = iov_base + 16 * start, p - start
            if p - start > 1:
                words[w + 4], words[w + 5] = cmsg_base + m * _CMSG_SPACE, _CMSG_SPACE
                seg_sizes[12 * m + 8] = seg
            else:
                words[w + 4] = words[w + 5] = 0
            m += 1
        return m

    def _resend_plain(self, message: int, total: int) -> int:
        """The route refused segmentation: stop using it, send from message `message`'s first packet
        on datagram by datagram."""
        self.gso = False
        self.gso_refused += 1
        first = (self._msg_words[8 * message + 2] - self._iov_base) // 16
        iov = self._iov_words
        for k, p in enumerate(range(first, total)):  # k <= p: moving down in place is safe
            iov[2 * k], iov[2 * k + 1] = iov[2 * p], iov[2 * p + 1]
        self.pending = total - first
        return self.flush()


def _gso_supported(sock: socket.socket) -> bool:
    """The kernel knows UDP_SEGMENT (Linux 4.18+); a route may still refuse it (see _resend_plain)."""
    try:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
    except OSError:
        return False
    return True
