"""UDP fan-out of a whole wakeup's packets, destination by destination, in one sendmmsg.

Sending each packet to every player as it arrives wakes every sleeping player once per packet; on
a VM each of those wakeups is a cross-CPU interrupt that costs more than the send itself (about a
third of a C relay's time in ../shared/docs/perf-limits.md). The packets read in one wakeup (a video
frame is a burst of packets) are therefore copied into one batch buffer and sent player-major:
player 1 gets all of them back to back, then player 2, ... so a player is woken about once per
burst. No latency is added: the batch is flushed before the reader goes back to the event loop.

The mmsghdr array for a batch of P packets (destinations x P entries, pointing at P fixed iovecs)
is built once per P and destination set, so a flush costs one system call per 1024 datagrams and
no per-destination Python work; per packet only the copy into the batch and its iovec change.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from collections.abc import Iterable

from proxyd.net.udp import Mmsghdr, libc_sendmmsg, sockaddr_of, sendto_each

MAX_BATCH_PACKETS = 64
BATCH_BYTES = 2 * 65536  # a flush makes room, so any datagram fits
MAX_DATAGRAM = 65507  # IPv4 UDP payload limit
# struct mmsghdr on LP64: msg_name, msg_namelen, msg_iov, msg_iovlen, msg_control, msg_controllen,
# msg_flags, msg_len (with the ABI's padding)
MMSGHDR = struct.Struct("=QI4xQQQQi4xI4x")
_MAX_CACHED_LAYOUTS = 16
SOL_UDP, UDP_SEGMENT = 17, 103  # linux/udp.h; Python 3.11's socket module lacks UDP_SEGMENT
MAX_GSO_SEGMENTS = 64  # UDP_MAX_SEGMENTS of older kernels
MAX_GSO_BYTES = 65000  # one IP datagram's payload, headers left room
CMSG_HEADER = struct.Struct("=Qii")  # cmsg_len, cmsg_level, cmsg_type; a u16 follows
CMSG_SPACE = 24  # CMSG_SPACE(sizeof(uint16_t)) on LP64
GSO_REFUSED = (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP)

if MMSGHDR.size != ctypes.sizeof(Mmsghdr):  # pragma: no cover - not an LP64 Linux
    MMSGHDR = None


def gso_supported(sock: socket.socket) -> bool:
    """The kernel knows UDP_SEGMENT (Linux 4.18+); a route may still refuse it (see _send_run_plain)."""
    try:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
    except OSError:
        return False
    return libc_sendmmsg is not None and MMSGHDR is not None


def gso_runs(iov_words, first: int, last: int) -> list[tuple[int, int, int, int]]:
    """Packets first..last-1, whose iovecs are (iov_words[2p], iov_words[2p + 1]) = (base, length),
    grouped into UDP segmentation runs: equal sizes, the last one possibly shorter, within the
    kernel's caps. Returns (first packet, packets, segment size, bytes) per run."""
    runs = []
    start = first
    seg = length = iov_words[2 * first + 1]
    closed = False
    for p in range(first + 1, last):
        n = iov_words[2 * p + 1]
        if not closed and n <= seg and p - start < MAX_GSO_SEGMENTS and length + n <= MAX_GSO_BYTES:
            length += n
            closed = n < seg
            continue
        runs.append((start, p - start, seg, length))
        start, seg, length, closed = p, n, n, False
    runs.append((start, last - start, seg, length))
    return runs


class BurstBatch:
    """The packet buffer, iovecs and GSO control messages of one batch. A fanout owns one, or fanouts
    that are filled and flushed one after another (never interleaved) share one."""

    def __init__(self) -> None:
        self.buffer = ctypes.create_string_buffer(BATCH_BYTES)
        self.view = memoryview(self.buffer).cast("B")  # writable: headers are rewritten in place
        self.base = ctypes.addressof(self.buffer)
        self.iovs = (ctypes.c_uint64 * (2 * MAX_BATCH_PACKETS))()  # struct iovec pairs
        self.iov_words = memoryview(self.iovs).cast("B").cast("Q")
        self.iov_base = ctypes.addressof(self.iovs)
        self.runs = (ctypes.c_uint64 * (2 * MAX_BATCH_PACKETS))()
        self.run_words = memoryview(self.runs).cast("B").cast("Q")
        self.run_base = ctypes.addressof(self.runs)
        self.cmsgs = ctypes.create_string_buffer(CMSG_SPACE * MAX_BATCH_PACKETS)
        for r in range(MAX_BATCH_PACKETS):
            CMSG_HEADER.pack_into(self.cmsgs, r * CMSG_SPACE, CMSG_HEADER.size + 2, SOL_UDP, UDP_SEGMENT)
        self.cmsg_u16 = memoryview(self.cmsgs).cast("B").cast("H")
        self.cmsg_base = ctypes.addressof(self.cmsgs)


class UdpBurstFanout:
    """Collect packets with `add`, send them all to every destination with `flush`."""

    def __init__(self, sock: socket.socket, max_destinations: int = 1024,
                 batch: BurstBatch | None = None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self.max_destinations = max_destinations
        self.batch = batch = batch or BurstBatch()
        self._batch_view = batch.view
        self._base = batch.base
        self._iov_words = batch.iov_words
        self._iov_base = batch.iov_base
        self._names = ctypes.create_string_buffer(1)
        self._name_size = 0
        self._layouts: dict[int, ctypes.Array] = {}
        self.pending = 0  # packets in the batch
        self.used = 0  # bytes in the batch
        self.count = 0
        self.destinations: tuple[tuple[str, int], ...] = ()
        self.send_errors = 0
        self.flushes = 0  # batches sent: packets / flushes is the burst size players are woken for
        # UDP segmentation offload: a run of equal-size packets to one player is one message
        self.gso = gso_supported(sock)
        self.gso_refused = 0  # runs a route refused to segment (re-sent datagram by datagram)
        self._run_words = batch.run_words
        self._run_base = batch.run_base
        self._cmsg_u16 = batch.cmsg_u16
        self._cmsg_base = batch.cmsg_base

    def set_destinations(self, destinations: Iterable[tuple[str, int]]) -> None:
        """Replace the destination set; what is batched goes to the old set first."""
        self.flush()
        dests = tuple(destinations)
        if len(dests) > self.max_destinations:
            raise ValueError(f"at most {self.max_destinations} destinations")
        names = [sockaddr_of(self.family, h, p) for h, p in dests]
        self._name_size = len(names[0]) if names else 0
        self._names = ctypes.create_string_buffer(b"".join(names), max(1, self._name_size * len(names)))
        self._layouts.clear()
        self.count, self.destinations = len(dests), dests

    def add(self, view, n: int) -> None:
        """Copy `view[:n]` into the batch (flushing first when it is full)."""
        if n > MAX_DATAGRAM:
            raise ValueError(f"a UDP datagram holds at most {MAX_DATAGRAM} bytes, not {n}")
        if self.pending == MAX_BATCH_PACKETS or self.used + n > BATCH_BYTES:
            self.flush()
        offset, slot = self.used, 2 * self.pending
        self._batch_view[offset:offset + n] = view[:n]
        words = self._iov_words
        words[slot] = self._base + offset
        words[slot + 1] = n
        self.used = offset + n
        self.pending += 1

    def flush(self) -> int:
        """Send the batch to every destination, destination-major; returns datagrams accepted."""
        packets = self.pending
        if not packets:
            return 0
        self.pending = self.used = 0
        if not self.count:
            return 0
        if libc_sendmmsg is None or MMSGHDR is None:
            return self._send_loop(packets)
        self.flushes += 1
        if self.gso:
            segments = self._runs(packets)
            key = -len(segments)
        else:
            segments = None
            key = packets
        msgs = self._layouts.get(key)
        if msgs is None:
            msgs = self._layout(key)
        per_dest = -key if segments else packets
        total = self.count * per_dest
        size = MMSGHDR.size
        sent = done = 0
        while done < total:
            rc = libc_sendmmsg(self.fd, ctypes.byref(msgs, done * size), total - done, 0)
            if rc < 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                if segments is not None and err in GSO_REFUSED:
                    sent += self._send_run_plain(done // per_dest, done % per_dest, segments)
                else:
                    # This datagram failed (EAGAIN, ENOBUFS, an ICMP error): skip it, not the rest.
                    self.send_errors += 1
                done += 1
                continue
            if segments is None:
                sent += rc
            else:
                sent += sum(segments[i % per_dest][1] for i in range(done, done + rc))
            done += rc
        return sent

    def _runs(self, packets: int) -> list[tuple[int, int, int, int]]:
        """Group the batch into GSO runs (gso_runs) and fill the run iovecs and UDP_SEGMENT values."""
        runs = gso_runs(self._iov_words, 0, packets)
        words, run_words, sizes = self._iov_words, self._run_words, self._cmsg_u16
        for r, (start, _count, seg, length) in enumerate(runs):
            run_words[2 * r] = words[2 * start]
            run_words[2 * r + 1] = length
            sizes[12 * r + 8] = seg
        return runs

    def _send_run_plain(self, dest_index: int, run_index: int, runs) -> int:
        """A route that refuses UDP_SEGMENT (no checksum offload, IPsec): send this run datagram by
        datagram and stop using segmentation offload on this fan-out."""
        self.gso = False
        self.gso_refused += 1
        self._layouts.clear()
        start, _count, seg, length = runs[run_index]
        data = ctypes.string_at(self._iov_words[2 * start], length)
        sent, errors = sendto_each(self.sock, [data[o:o + seg] for o in range(0, length, seg)],
                                   (self.destinations[dest_index],))
        self.send_errors += errors
        return sent

    def _layout(self, key: int) -> ctypes.Array:
        """mmsghdr entries, destination-major. key > 0: one entry per packet (iovec p); key < 0:
        one entry per GSO run (run iovec r with its UDP_SEGMENT control message)."""
        if len(self._layouts) >= _MAX_CACHED_LAYOUTS:
            self._layouts.clear()
        size, name_size = MMSGHDR.size, self._name_size
        names = ctypes.addressof(self._names)
        per_dest = abs(key)
        msgs = (ctypes.c_char * (size * self.count * per_dest))()
        pack = MMSGHDR.pack_into
        pos = 0
        for d in range(self.count):
            name = names + d * name_size
            for p in range(per_dest):
                if key > 0:
                    pack(msgs, pos, name, name_size, self._iov_base + p * 16, 1, 0, 0, 0, 0)
                else:
                    pack(msgs, pos, name, name_size, self._run_base + p * 16, 1,
                         self._cmsg_base + p * CMSG_SPACE, CMSG_SPACE, 0, 0)
                pos += size
        self._layouts[key] = msgs
        return msgs

    def _send_loop(self, packets: int) -> int:
        words = self._iov_words
        datagrams = [ctypes.string_at(words[2 * p], words[2 * p + 1]) for p in range(packets)]
        sent, errors = sendto_each(self.sock, datagrams, self.destinations)
        self.send_errors += errors
        return sent

