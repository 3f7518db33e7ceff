"""Listening TCP sockets for the RTSP listeners: IPv6 literals, and dual-stack on [::] (IPv4 players
arrive as ::ffff:a.b.c.d there; unmapped_ip gives them back their IPv4 address)."""

from __future__ import annotations

import ipaddress
import socket

BACKLOG = 1024


def listening_socket(host: str, port: int) -> socket.socket | None:
    """A bound, listening socket for the unspecified IPv6 address "::" that also takes IPv4
    (asyncio's create_server sets IPV6_V6ONLY on every IPv6 socket); None for any other host, which
    create_server binds itself."""
    if host != "::":
        return None
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def unmapped_ip(ip: str) -> str:
    """'::ffff:192.0.2.1' -> '192.0.2.1'; any other address unchanged."""
    if not ip.startswith("::ffff:"):
        return ip
    try:
        mapped = ipaddress.IPv6Address(ip).ipv4_mapped
    except ValueError:
        return ip
    return str(mapped) if mapped is not None else ip
