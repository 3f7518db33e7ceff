"""net/udp.py and net/burst.py on loopback: port pairs and the sendmmsg fan-out."""

import socket

import pytest

from proxyd.net.burst import UdpBurstFanout
from proxyd.net.udp import bind_port_pair


def sinks(n):
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        out.append(s)
    return out


def test_port_pair_is_even_and_consecutive():
    rtp, rtcp = bind_port_pair("127.0.0.1")
    try:
        port = rtp.getsockname()[1]
        assert port % 2 == 0 and rtcp.getsockname()[1] == port + 1
    finally:
        rtp.close()
        rtcp.close()


def test_port_pair_from_configured_range():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1] & ~1
    probe.close()
    rtp, rtcp = bind_port_pair("127.0.0.1", base, base + 20)
    try:
        assert base <= rtp.getsockname()[1] < base + 20
    finally:
        rtp.close()
        rtcp.close()


def send_one(fan: UdpBurstFanout, payload: bytes) -> int:
    fan.add(payload, len(payload))
    return fan.flush()


def test_fanout_delivers_one_datagram_to_every_destination():
    src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    src.bind(("127.0.0.1", 0))
    dests = sinks(20)
    fan = UdpBurstFanout(src)
    fan.set_destinations(d.getsockname() for d in dests)
    for payload in (b"\x80" + bytes(range(200)), b"second"):
        assert send_one(fan, payload) == 20
        for d in dests:
            data, addr = d.recvfrom(2048)
            assert data == payload and addr == src.getsockname()
    src.close()
    for d in dests:
        d.close()


def test_fanout_destination_change_and_empty_set():
    src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    src.bind(("127.0.0.1", 0))
    a, b = sinks(2)
    fan = UdpBurstFanout(src)
    assert send_one(fan, b"nobody") == 0
    fan.set_destinations([a.getsockname(), b.getsockname()])
    fan.set_destinations([b.getsockname()])
    assert send_one(fan, b"only-b") == 1
    assert b.recvfrom(100)[0] == b"only-b"
    a.settimeout(0.2)
    with pytest.raises(TimeoutError):
        a.recvfrom(100)
    for s in (src, a, b):
        s.close()


def test_fanout_large_datagram_and_limits():
    src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    src.bind(("127.0.0.1", 0))
    (a,) = sinks(1)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    fan = UdpBurstFanout(src, max_destinations=1)
    with pytest.raises(ValueError):
        fan.set_destinations([("127.0.0.1", 1), ("127.0.0.1", 2)])
    fan.set_destinations([a.getsockname()])
    big = bytes(range(256)) * 200
    assert send_one(fan, big) == 1
    assert a.recvfrom(65536)[0] == big
    with pytest.raises(ValueError):
        send_one(fan, bytes(70000))
    src.close()
    a.close()
