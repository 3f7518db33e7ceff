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

from proxyd.net.burst import CMSG_HEADER, CMSG_SPACE, GSO_REFUSED, SOL_UDP, UDP_SEGMENT, gso_runs, gso_supported
from proxyd.net.udp import DRAIN_BURST, Mmsghdr, libc_recvmmsg, libc_sendmmsg, sockaddr_of

MSG_TRUNC, MSG_DONTWAIT = 0x20, 0x40  # linux/socket.h
SLOT_BYTES = 65536  # any UDP datagram fits (65507 bytes of IPv4 payload)
NAME_BYTES = 32  # a sockaddr_in6 (28 bytes) rounded up to whole 64-bit words
_MSG_WORDS = ctypes.sizeof(Mmsghdr) // 4  # 32-bit words per mmsghdr
_FLAGS_WORD = 48 // 4  # msg_hdr.msg_flags on LP64 (batch_io_supported checks the layout)
_LEN_WORD = Mmsghdr.msg_len.offset // 4
MESSAGE_BYTES = ctypes.sizeof(Mmsghdr)
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
        self._name_bytes = bytearray(slots * NAME_BYTES)  # bytearray: count() compares a wakeup's at once
        self._names = (ctypes.c_uint64 * (slots * NAME_BYTES // 8)).from_buffer(self._name_bytes)
        self._name_words = memoryview(self._name_bytes).cast("Q")
        self._iovs = (ctypes.c_uint64 * (2 * slots))()
        self._msgs = (Mmsghdr * slots)()
        for i, msg in enumerate(self._msgs):
            self._iovs[2 * i], self._iovs[2 * i + 1] = self.slot_addresses[i], slot_bytes
            msg.msg_hdr.msg_name = ctypes.addressof(self._names) + i * NAME_BYTES
            msg.msg_hdr.msg_namelen = NAME_BYTES
            msg.msg_hdr.msg_iov = ctypes.cast(ctypes.addressof(self._iovs) + 16 * i, type(msg.msg_hdr.msg_iov))
            msg.msg_hdr.msg_iovlen = 1
        self._msg_words = memoryview(self._msgs).cast("B").cast("I")
        self._msg_bytes = memoryview(self._msgs).cast("B")
        self._lengths = [struct.Struct("=" + f"{_LEN_WORD * 4}xI{ctypes.sizeof(Mmsghdr) - _LEN_WORD * 4 - 4}x" * count)
                         for count in range(slots + 1)]  # count -> every msg_len in one unpack
        self._fields: dict[tuple[str, int], struct.Struct] = {}
        self._source: tuple[int, int, int, int] | None = None  # (mask of word 0, words 0, 1, 2)
        self._source_name: bytes | None = None  # the source's whole sockaddr as the kernel writes it
        self.truncated = 0  # datagrams longer than a slot (dropped)
        self.strangers = 0  # datagrams from another source (players' NAT punches)

    def expect_source(self, host: str | None, port: int | None) -> None:
        """Accept datagrams from `host` (as the socket reports it: see udp.peer_address), from any
        port when `port` is None; None accepts nothing."""
        if host is None:
            self._source = self._source_name = None
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
        # a named port, no flow information: every name of a wakeup is this exact sockaddr
        self._source_name = name if port is not None else None

    def read(self) -> int:
        """Datagrams read in one recvmmsg (0 when none is waiting)."""
        count = libc_recvmmsg(self.fd, self._msgs, self.slots, MSG_DONTWAIT, None)
        if count >= 0:
            return count
        for _ in range(3):  # each pending ICMP error ends one call: skip it
            if ctypes.get_errno() not in _SKIPPED_ERRORS:
                return 0
            count = libc_recvmmsg(self.fd, self._msgs, self.slots, MSG_DONTWAIT, None)
            if count >= 0:
                return count
        return 0

    def lengths(self, count: int) -> tuple[int, ...] | list[int]:
        """The byte count of each of the `count` datagrams read, 0 for one that did not come whole
        from the source. The usual wakeup (every datagram from the named source, none truncated)
        costs one unpack and one comparison of all the names, whatever `count` is."""
        lengths = self._lengths[count].unpack_from(self._msg_bytes)
        name = self._source_name
        if (name is not None and self._name_bytes.count(name, 0, NAME_BYTES * count) == count
                and max(lengths) < self.slot_bytes):
            return lengths  # count non-overlapping copies in count names: every name is the source's
        return self._checked(count, lengths)

    def _checked(self, count: int, lengths) -> list[int]:
        source = self._source
        if source is None:
            self.strangers += count
            return [0] * count
        mask, w0, w1, w2 = source
        names, msgs, checked = self._name_words, self._msg_words, list(lengths)
        for slot in range(count):
            name = 4 * slot
            if names[name] & mask != w0 or names[name + 1] != w1 or names[name + 2] != w2:
                self.strangers += 1
                checked[slot] = 0
            elif msgs[_MSG_WORDS * slot + _FLAGS_WORD] & MSG_TRUNC:
                self.truncated += 1
                checked[slot] = 0
        return checked

    def fields(self, fmt: str, count: int) -> tuple:
        """struct `fmt` (e.g. an RTP header's) unpacked from the start of each of the first `count`
        slots, all in one call: the first slot's values, then the second's, and so on."""
        unpacker = self._fields.get((fmt, count))
        if unpacker is None:  # fmt's byte order (its first character, if any) for the whole run
            order, body = (fmt[0], fmt[1:]) if fmt[0] in "@=<>!" else ("=", fmt)
            pad = self.slot_bytes - struct.calcsize(order + body)
            unpacker = struct.Struct(order + f"{body}{pad}x" * (count - 1) + body)
            self._fields[fmt, count] = unpacker
        return unpacker.unpack_from(self.arena)

    def from_source(self, count: int):
        """(slot, nbytes) of each of the `count` datagrams read that came whole from the source."""
        for slot, n in enumerate(self.lengths(count)):
            if n:
                yield slot, n

    def close(self) -> None:
        self.slot_views.clear()
        self._fields.clear()
        del self._arena_words
        try:
            self.arena.close()
        except BufferError:  # a slot view is still referenced: the mapping goes with it
            pass


class SlotSender:
    """Slots of a SlotReader (`add` in order), sent to one destination by `flush` in one sendmmsg.

    With UDP segmentation offload (Linux 4.18+) a run of equal-size packets (the last may be
    shorter: a video frame's fragments) goes as one message of one iovec per slot, which the kernel
    passes down the stack once and cuts at the device (on loopback: at the receiving socket)."""

    def __init__(self, sock: socket.socket, reader: SlotReader) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self._slot_addresses = reader.slot_addresses
        slots = reader.slots
        self._name = ctypes.create_string_buffer(NAME_BYTES)
        self._iovs = (ctypes.c_uint64 * (2 * slots))()
        self._iov_words = memoryview(self._iovs).cast("B").cast("Q")
        self._iov_base = ctypes.addressof(self._iovs)
        self._msgs = (Mmsghdr * slots)()
        self._msg_words = memoryview(self._msgs).cast("B").cast("Q")  # 8 words per mmsghdr (LP64)
        self._cmsgs = ctypes.create_string_buffer(CMSG_SPACE * slots)  # message m's UDP_SEGMENT
        for m in range(slots):
            CMSG_HEADER.pack_into(self._cmsgs, m * CMSG_SPACE, CMSG_HEADER.size + 2, SOL_UDP, UDP_SEGMENT)
        self._cmsg_u16 = memoryview(self._cmsgs).cast("B").cast("H")
        self._cmsg_base = ctypes.addressof(self._cmsgs)
        self._single = (Mmsghdr * 1)()  # iovec 0, no control message
        for msg in (*self._msgs, *self._single):
            msg.msg_hdr.msg_name = ctypes.addressof(self._name)
        self._single[0].msg_hdr.msg_iov = ctypes.cast(self._iov_base, type(self._single[0].msg_hdr.msg_iov))
        self._single[0].msg_hdr.msg_iovlen = 1
        self.destination: tuple | None = None
        self.pending = 0
        self.flushes = 0  # sendmmsg batches: packets / flushes is the burst size the player is woken for
        self.send_errors = 0  # datagrams the kernel refused (skipped, the rest still sent)
        self.gso = gso_supported(sock)
        self.gso_refused = 0  # flushes a route refused to segment (sent datagram by datagram since)

    def set_destination(self, destination: tuple | None) -> None:
        self.flush()
        self.destination = destination
        if destination is not None:
            name = sockaddr_of(self.family, destination[0], destination[1])
            ctypes.memmove(self._name, name, len(name))
            for msg in (*self._msgs, *self._single):
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
        if total == 1:  # an audio packet's wakeup: the prebuilt one-message layout, no grouping
            if libc_sendmmsg(self.fd, self._single, 1, 0) == 1:
                return 1
            return self._send(0, 1)
        return self._send(0, total)

    def _send(self, first: int, last: int) -> int:
        """Packets first..last-1 (iovecs) as messages, GSO runs when on; returns datagrams accepted."""
        segments = self._runs(first, last) if self.gso else self._plain(first, last)
        messages, sent, done = len(segments), 0, 0
        while done < messages:
            msgs = self._msgs if not done else ctypes.byref(self._msgs, done * MESSAGE_BYTES)
            rc = libc_sendmmsg(self.fd, msgs, messages - done, 0)
            if rc >= 0:
                sent += sum(segments[done:done + rc])
                done += rc
                continue
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            if segments[done] > 1 and err in GSO_REFUSED:  # no checksum offload, IPsec, MTU
                self.gso = False
                self.gso_refused += 1
                return sent + self._send(first + sum(segments[:done]), last)
            self.send_errors += segments[done]  # EAGAIN, ENOBUFS, an ICMP error: skip it, not the rest
            done += 1
        return sent

    def _plain(self, first: int, last: int) -> list[int]:
        words, iov = self._msg_words, self._iov_base + 16 * first
        for w in range(0, 8 * (last - first), 8):
            words[w + 2], words[w + 3], words[w + 4], words[w + 5] = iov, 1, 0, 0
            iov += 16
        return [1] * (last - first)

    def _runs(self, first: int, last: int) -> list[int]:
        """One message per GSO run (gso_runs) of packets first..last-1; returns segments per message."""
        words, sizes, segments = self._msg_words, self._cmsg_u16, []
        for m, (start, count, seg, _length) in enumerate(gso_runs(self._iov_words, first, last)):
            w = 8 * m
            words[w + 2], words[w + 3] = self._iov_base + 16 * start, count
            if count > 1:
                words[w + 4], words[w + 5] = self._cmsg_base + CMSG_SPACE * m, CMSG_SPACE
                sizes[12 * m + 8] = seg
            else:
                words[w + 4] = words[w + 5] = 0
            segments.append(count)
        return segments
