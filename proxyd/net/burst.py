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

from proxyd.net.udp import _Mmsghdr, _sendmmsg, _sockaddr

MAX_BATCH_PACKETS = 64
BATCH_BYTES = 2 * 65536  # a flush makes room, so any datagram fits
# struct mmsghdr on LP64: msg_name, msg_namelen, msg_iov, msg_iovlen, msg_control, msg_controllen,
# msg_flags, msg_len (with the ABI's padding)
_MMSGHDR = struct.Struct("=QI4xQQQQi4xI4x")
_MAX_CACHED_LAYOUTS = 16

if _MMSGHDR.size != ctypes.sizeof(_Mmsghdr):  # pragma: no cover - not an LP64 Linux
    _MMSGHDR = None


class UdpBurstFanout:
    """Collect packets with `add`, send them all to every destination with `flush`."""

    def __init__(self, sock: socket.socket, max_destinations: int = 1024) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self.max_destinations = max_destinations
        self._batch = ctypes.create_string_buffer(BATCH_BYTES)
        self._batch_view = memoryview(self._batch).cast("B")
        self._base = ctypes.addressof(self._batch)
        self._iovs = (ctypes.c_uint64 * (2 * MAX_BATCH_PACKETS))()  # struct iovec pairs
        self._iov_words = memoryview(self._iovs).cast("B").cast("Q")
        self._iov_base = ctypes.addressof(self._iovs)
        self._names = ctypes.create_string_buffer(1)
        self._name_size = 0
        self._layouts: dict[int, ctypes.Array] = {}
        self.pending = 0  # packets in the batch
        self.used = 0  # bytes in the batch
        self.count = 0
        self.destinations: tuple[tuple[str, int], ...] = ()
        self.send_errors = 0

    def set_destinations(self, destinations: Iterable[tuple[str, int]]) -> None:
        """Replace the destination set; what is batched goes to the old set first."""
        self.flush()
        dests = tuple(destinations)
        if len(dests) > self.max_destinations:
            raise ValueError(f"at most {self.max_destinations} destinations")
        names = [_sockaddr(self.family, h, p) for h, p in dests]
        self._name_size = len(names[0]) if names else 0
        self._names = ctypes.create_string_buffer(b"".join(names), max(1, self._name_size * len(names)))
        self._layouts.clear()
        self.count, self.destinations = len(dests), dests

    def add(self, view, n: int) -> None:
        """Copy `view[:n]` into the batch (flushing first when it is full)."""
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
        if _sendmmsg is None or _MMSGHDR is None:
            return self._send_loop(packets)
        msgs = self._layouts.get(packets)
        if msgs is None:
            msgs = self._layout(packets)
        total = self.count * packets
        size = _MMSGHDR.size
        sent = done = 0
        while done < total:
            rc = _sendmmsg(self.fd, ctypes.byref(msgs, done * size), total - done, 0)
            if rc < 0:
                if ctypes.get_errno() == errno.EINTR:
                    continue
                # This datagram failed (EAGAIN, ENOBUFS, an ICMP error): skip it, not the rest.
                self.send_errors += 1
                done += 1
                continue
            sent += rc
            done += rc
        return sent

    def _layout(self, packets: int) -> ctypes.Array:
        """destinations x packets mmsghdr entries: entry (d, p) sends iovec p to destination d."""
        if len(self._layouts) >= _MAX_CACHED_LAYOUTS:
            self._layouts.clear()
        size, name_size = _MMSGHDR.size, self._name_size
        names = ctypes.addressof(self._names)
        iov_size = 16
        msgs = (ctypes.c_char * (size * self.count * packets))()
        pack = _MMSGHDR.pack_into
        pos = 0
        for d in range(self.count):
            name = names + d * name_size
            for p in range(packets):
                pack(msgs, pos, name, name_size, self._iov_base + p * iov_size, 1, 0, 0, 0, 0)
                pos += size
        self._layouts[packets] = msgs
        return msgs

    def _send_loop(self, packets: int) -> int:
        words, sent = self._iov_words, 0
        datagrams = [ctypes.string_at(words[2 * p], words[2 * p + 1]) for p in range(packets)]
        for dest in self.destinations:
            for data in datagrams:
                try:
                    self.sock.sendto(data, dest)
                    sent += 1
                except OSError:
                    self.send_errors += 1
        return sent

