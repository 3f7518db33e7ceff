"""UdpBurstFanout: a wakeup's packets go to every destination, each destination's back to back."""

from __future__ import annotations

import socket

import pytest

from proxyd.net.burst import BATCH_BYTES, MAX_BATCH_PACKETS, UdpBurstFanout


@pytest.fixture
def sender():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    sock.setblocking(False)
    while True:
        try:
            out.append(sock.recv(70000))
        except BlockingIOError:
            return out


def packet(i: int, size: int) -> bytes:
    return bytes([i % 256]) * size


def test_every_destination_gets_the_batch_in_order(sender):
    sinks = [receiver() for _ in range(3)]
    fanout = UdpBurstFanout(sender)
    fanout.set_destinations(s.getsockname() for s in sinks)
    packets = [packet(i, 100 + 37 * i) for i in range(5)]
    for p in packets:
        fanout.add(memoryview(p), len(p))
    assert fanout.flush() == 15
    for sink in sinks:
        assert [sink.recv(2048) for _ in packets] == packets
        sink.close()


def test_destination_major_order(sender):
    # Two destinations that are the same socket: player-major sending delivers p0 p1 p2 p0 p1 p2.
    sink = receiver()
    fanout = UdpBurstFanout(sender)
    fanout.set_destinations([sink.getsockname(), sink.getsockname()])
    packets = [packet(i, 50) for i in range(3)]
    for p in packets:
        fanout.add(p, len(p))
    fanout.flush()
    assert [sink.recv(2048) for _ in range(6)] == packets + packets
    sink.close()


def test_full_batch_flushes_itself_and_large_datagrams_fit(sender):
    sink = receiver()
    fanout = UdpBurstFanout(sender)
    fanout.set_destinations([sink.getsockname()])
    packets = [packet(i, 1400) for i in range(MAX_BATCH_PACKETS + 3)] + [packet(7, 60000), packet(8, 60000)]
    for p in packets:
        fanout.add(p, len(p))
    assert fanout.pending < len(packets) and fanout.used <= BATCH_BYTES
    fanout.flush()
    assert [sink.recv(70000) for _ in packets] == packets
    sink.close()


def test_destination_change_sends_the_pending_batch_to_the_old_set(sender):
    old, new = receiver(), receiver()
    fanout = UdpBurstFanout(sender)
    fanout.set_destinations([old.getsockname()])
    fanout.add(b"first", 5)
    fanout.set_destinations([new.getsockname()])
    fanout.add(b"second", 6)
    fanout.flush()
    assert drain(old) == [b"first"]
    assert drain(new) == [b"second"]
    fanout.set_destinations([])
    fanout.add(b"nobody", 6)
    assert fanout.flush() == 0 and fanout.pending == 0
    old.close()
    new.close()


def test_layouts_for_many_batch_sizes_and_destinations(sender):
    sinks = [receiver() for _ in range(20)]
    fanout = UdpBurstFanout(sender)
    fanout.set_destinations(s.getsockname() for s in sinks)
    expected = []
    for size in (1, 2, 3, 1, 17, 2):
        batch = [packet(len(expected) + i, 200) for i in range(size)]
        for p in batch:
            fanout.add(p, len(p))
        assert fanout.flush() == 20 * size
        expected += batch
    for sink in sinks:
        assert drain(sink) == expected
        sink.close()


def video_burst() -> list[bytes]:
    # A video frame as an RTP packetizer sends it: MTU-size fragments, a shorter last one, then a
    # small packet and another frame's fragments.
    return ([packet(1, 1400)] * 4 + [packet(2, 700)] + [packet(3, 90)] + [packet(4, 1200)] * 3
            + [packet(5, 1300)])


@pytest.mark.parametrize("offload", [True, False])
def test_segmentation_offload_keeps_every_datagram_boundary(sender, offload):
    sinks = [receiver() for _ in range(4)]
    fanout = UdpBurstFanout(sender)
    assert fanout.gso, "the kernel should know UDP_SEGMENT"
    fanout.gso = offload
    fanout.set_destinations(s.getsockname() for s in sinks)
    packets = video_burst()
    for p in packets:
        fanout.add(p, len(p))
    assert fanout.flush() == 4 * len(packets)
    for sink in sinks:
        assert drain(sink) == packets
        sink.close()


def test_route_refusing_offload_falls_back_without_losing_datagrams(sender):
    # SO_NO_CHECK (no UDP checksum) makes the kernel refuse UDP_SEGMENT sends with EINVAL,
    # like a device without checksum offload does with EIO.
    sender.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK
    sinks = [receiver() for _ in range(3)]
    fanout = UdpBurstFanout(sender)
    fanout.set_destinations(s.getsockname() for s in sinks)
    packets = video_burst()
    for p in packets:
        fanout.add(p, len(p))
    assert fanout.flush() == 3 * len(packets)
    refused = fanout.gso_refused
    assert refused and not fanout.gso
    for p in packets:
        fanout.add(p, len(p))
    assert fanout.flush() == 3 * len(packets)
    assert fanout.gso_refused == refused  # the rest of the batches go datagram by datagram
    for sink in sinks:
        assert drain(sink) == packets + packets
        sink.close()
