"""proxyd/net address-family helpers on loopback: a dual-stack media pair reaching IPv4 and IPv6
peers through one sendmmsg fan-out, the dual-stack RTSP listener, IPv4-mapped addresses."""

from __future__ import annotations

import socket

import pytest

from proxyd.net.burst import UdpBurstFanout
from proxyd.net.listen import listening_socket, unmapped_ip
from proxyd.net.udp import ANY_V4, ANY_V6, bind_port_pair, peer_address, wildcard_for


def sink(family: int, host: str) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(2)
    return s


def test_wildcard_is_ipv4_only_for_ipv4_peers():
    assert wildcard_for("127.0.0.1", "10.0.0.2") == ANY_V4
    assert wildcard_for("127.0.0.1", "::1") == ANY_V6
    assert wildcard_for("2001:db8::5") == ANY_V6


def test_peer_address_maps_ipv4_for_ipv6_sockets_only():
    assert peer_address(socket.AF_INET6, "192.0.2.1") == "::ffff:192.0.2.1"
    assert peer_address(socket.AF_INET6, "::1") == "::1"
    assert peer_address(socket.AF_INET, "192.0.2.1") == "192.0.2.1"


@pytest.mark.parametrize("ip, expected", [("::ffff:192.0.2.1", "192.0.2.1"), ("::1", "::1"),
                                          ("192.0.2.1", "192.0.2.1"), ("::ffff:zz", "::ffff:zz")])
def test_unmapped_ip(ip, expected):
    assert unmapped_ip(ip) == expected


def test_dual_stack_pair_fans_out_to_ipv4_and_ipv6_players_and_sees_ipv4_sources_mapped():
    rtp, rtcp = bind_port_pair(ANY_V6)
    v4, v6 = sink(socket.AF_INET, "127.0.0.1"), sink(socket.AF_INET6, "::1")
    try:
        fanout = UdpBurstFanout(rtp)
        fanout.set_destinations([(peer_address(rtp.family, "127.0.0.1"), v4.getsockname()[1]),
                                 ("::1", v6.getsockname()[1])])
        packet = b"\x80\x60" + bytes(10) + b"payload"
        fanout.add(memoryview(packet), len(packet))
        assert fanout.flush() == 2
        assert v4.recv(2048) == packet and v6.recv(2048) == packet
        v4.sendto(b"rtcp", ("127.0.0.1", rtcp.getsockname()[1]))
        rtcp.settimeout(2)
        data, addr = rtcp.recvfrom(2048)
        # the per-packet check compares with the origin address mapped once at SETUP
        assert data == b"rtcp" and addr[0] == peer_address(rtcp.family, "127.0.0.1")
    finally:
        for s in (rtp, rtcp, v4, v6):
            s.close()


def test_dual_stack_listener_accepts_ipv4_and_ipv6():
    sock = listening_socket("::", 0)
    try:
        port = sock.getsockname()[1]
        sock.setblocking(True)
        sock.settimeout(2)
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.create_connection((host, port), timeout=2):
                conn, peer = sock.accept()
                conn.close()
                assert unmapped_ip(peer[0]) == host
    finally:
        sock.close()
    assert listening_socket("127.0.0.1", 0) is None  # asyncio binds the others itself
