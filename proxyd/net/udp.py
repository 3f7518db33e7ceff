"""UDP plumbing: RTP/RTCP port pairs, draining a socket per wakeup, the ctypes sendmmsg structures
(the split's fan-out is net/burst.py) and the plain sendto fallback."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import socket
import struct
from collections.abc import Iterable, Iterator

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
libc_sendmmsg = getattr(_libc, "sendmmsg", None)
libc_recvmmsg = getattr(_libc, "recvmmsg", None)  # net/slots.py


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(_Iovec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def sockaddr_of(family: int, host: str, port: int) -> bytes:
    if family == socket.AF_INET:
        # struct sockaddr_in: family (host order), port (network order), addr, zero padding
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)
    return (struct.pack("=H", socket.AF_INET6) + struct.pack("!H", port) + bytes(4)
            + socket.inet_pton(socket.AF_INET6, peer_address(family, host)) + bytes(4))


# --- address families: a media socket may face an IPv4 origin and an IPv6 player at once ---------

ANY_V4, ANY_V6 = "0.0.0.0", "::"


@functools.cache
def ipv6_available() -> bool:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError:
        return False
    return True


def wildcard_for(*peer_ips: str) -> str:
    """Address to bind media sockets for these peers: IPv4 when all are IPv4, else dual-stack "::"
    (bind_port_pair lets it take IPv4 too; peers' IPv4 addresses then go through peer_address)."""
    return ANY_V6 if any(":" in ip for ip in peer_ips) else ANY_V4


def dual_stack_wildcard() -> str:
    """For sockets whose peers are not known yet (a split's players come and go): both families."""
    return ANY_V6 if ipv6_available() else ANY_V4


def peer_address(family: int, ip: str) -> str:
    """`ip` as a socket of `family` sends to and receives from it: an IPv4 peer of an IPv6
    (dual-stack) socket is ::ffff:a.b.c.d. Done once per SETUP, so that the per-packet source check
    is a plain string comparison."""
    if family == socket.AF_INET6 and "." in ip and ":" not in ip:
        return "::ffff:" + ip
    return ip


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


def close_watched(loop, *socks: socket.socket) -> None:
    """Stop watching each socket for reads on `loop`, then close it (the loop may be closed already)."""
    for sock in socks:
        try:
            loop.remove_reader(sock.fileno())
        except (ValueError, RuntimeError):  # loop already closed
            pass
        sock.close()


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
            _dual_stack(rtp, host)
            rtp.bind((host, candidate))
            port = rtp.getsockname()[1]
            if port & 1:
                rtp.close()
                continue
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                _dual_stack(rtcp, host)
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


def _dual_stack(sock: socket.socket, host: str) -> None:
    if host == ANY_V6:  # whatever net.ipv6.bindv6only says
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)


def _set_buffers(sock: socket.socket, size: int = 1 << 20) -> None:
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)
        except OSError:
            pass


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))
