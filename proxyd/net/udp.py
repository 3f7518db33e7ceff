"""UDP plumbing for the relay: RTP/RTCP port pairs and a ctypes sendmmsg fan-out.

The fan-out keeps one prebuilt mmsghdr array whose entries all share one iovec; only the iovec's
base/length change per packet, and the destination array is rebuilt only when the destination set
changes, so a send costs one syscall and no per-destination Python work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import struct
from collections.abc import Iterable, Iterator

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_sendmmsg = getattr(_libc, "sendmmsg", None)


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(_Iovec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _sockaddr(family: int, host: str, port: int) -> bytes:
    if family == socket.AF_INET:
        # struct sockaddr_in: family (host order), port (network order), addr, zero padding
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)
    return (struct.pack("=H", socket.AF_INET6) + struct.pack("!H", port) + bytes(4)
            + socket.inet_pton(socket.AF_INET6, host) + bytes(4))


class UdpFanout:
    """sendmmsg of the first `n` bytes of a fixed ctypes buffer to a set of destinations.

    The hot path (`send(n)`) receives straight into `buffer`, rewrites it in place and sends it
    with no copy; `send_bytes(data)` copies first, for callers off the hot path.
    """

    def __init__(self, sock: socket.socket, buffer, max_destinations: int = 1024) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self.buffer = buffer
        self.max_destinations = max_destinations
        self._iov = _Iovec(ctypes.addressof(buffer), 0)
        self._msgs = (_Mmsghdr * 0)()
        self._names = ctypes.create_string_buffer(1)
        self.count = 0
        self.destinations: tuple[tuple[str, int], ...] = ()
        self.send_errors = 0

    def set_destinations(self, destinations: Iterable[tuple[str, int]]) -> None:
        dests = tuple(destinations)
        if len(dests) > self.max_destinations:
            raise ValueError(f"at most {self.max_destinations} destinations")
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

    def send_bytes(self, data: bytes | bytearray | memoryview) -> int:
        """Copy `data` into the buffer and send it to every destination."""
        n = len(data)
        if n > ctypes.sizeof(self.buffer):
            raise ValueError("datagram too large")
        ctypes.memmove(self.buffer, bytes(data), n)
        return self.send(n)

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
        sent, errors = sendto_each(self.sock, (ctypes.string_at(self.buffer, n),), self.destinations)
        self.send_errors += errors
        return sent


def sendto_each(sock: socket.socket, datagrams, destinations) -> tuple[int, int]:
    """Every datagram to every destination with sendto (no sendmmsg, or a route refusing offload):
    (sent, failed)."""
    sent = failed = 0
    for dest in destinations:
        for data in datagrams:
            try:
                sock.sendto(data, dest)
                sent += 1
            except OSError:
                failed += 1
    return sent, failed


DRAIN_BURST = 64  # datagrams read per wakeup before yielding to the event loop


def drain(sock: socket.socket, buffer, burst: int = DRAIN_BURST) -> Iterator[tuple[int, tuple]]:
    """(nbytes, address) of each datagram waiting on non-blocking `sock`, read into `buffer`."""
    for _ in range(burst):
        try:
            yield sock.recvfrom_into(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # ICMP port unreachable from an earlier send: keep reading
            if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH):
                continue
            return


def bind_port_pair(host: str, port_min: int = 0, port_max: int = 0) -> tuple[socket.socket, socket.socket]:
    """Bind an RTP socket on an even port and its RTCP socket on port+1 (non-blocking, large buffers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port_min:
        start = port_min + (port_min & 1)
        candidates: Iterable[int] = range(start, port_max, 2)
    else:
        candidates = (0,) * 32
    for candidate in candidates:
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, candidate))
            port = rtp.getsockname()[1]
            if port & 1:
                rtp.close()
                continue
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
            except OSError:
                rtcp.close()
                rtp.close()
                continue
        except OSError:
            rtp.close()
            continue
        for s in (rtp, rtcp):
            s.setblocking(False)
            _set_buffers(s)
        return rtp, rtcp
    raise OSError(errno.EADDRINUSE, "no free UDP port pair")


def _set_buffers(sock: socket.socket, size: int = 1 << 20) -> None:
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)
        except OSError:
            pass


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))
