"""net/slots.py on loopback: a wakeup's datagrams read by one recvmmsg into slots, filtered by
source, and sent on from the slots by one sendmmsg."""

import socket

import pytest

from proxyd.net.slots import SlotReader, SlotSender, batch_io_supported
from proxyd.net.udp import ANY_V6, bind_port_pair, ipv6_available, peer_address

pytestmark = pytest.mark.skipif(not batch_io_supported(), reason="needs recvmmsg/sendmmsg (LP64 Linux)")


def udp_socket(timeout=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    return s


@pytest.fixture
def pair():
    rtp, rtcp = bind_port_pair("127.0.0.1")
    yield rtp
    rtp.close()
    rtcp.close()


def test_one_read_returns_every_queued_datagram_and_only_the_sources(pair):
    origin, stranger = udp_socket(), udp_socket()
    reader = SlotReader(pair)
    reader.expect_source("127.0.0.1", origin.getsockname()[1])
    sent = [bytes([i]) * (100 + i) for i in range(5)]
    for i, data in enumerate(sent):
        origin.sendto(data, pair.getsockname())
        if i == 2:
            stranger.sendto(b"punch", pair.getsockname())  # a player's NAT punch from this host
    count = reader.read()
    assert count == 6
    got = [bytes(reader.slot_views[slot][:n]) for slot, n in reader.from_source(count)]
    assert got == sent and reader.strangers == 1
    assert reader.read() == 0  # nothing queued: no exception, nothing read
    reader.close()
    origin.close()
    stranger.close()


def test_a_datagram_longer_than_a_slot_is_counted_not_passed(pair):
    origin = udp_socket()
    reader = SlotReader(pair, slots=4, slot_bytes=64)
    reader.expect_source("127.0.0.1", None)  # any port of the origin host
    for data in (b"a" * 65, b"b" * 64, b"c"):
        origin.sendto(data, pair.getsockname())
    count = reader.read()
    assert [bytes(reader.slot_views[s][:n]) for s, n in reader.from_source(count)] == [b"b" * 64, b"c"]
    assert reader.truncated == 1
    reader.close()
    origin.close()


def test_more_datagrams_than_slots_are_left_for_the_next_read(pair):
    origin = udp_socket()
    reader = SlotReader(pair, slots=2, slot_bytes=16)
    reader.expect_source("127.0.0.1", origin.getsockname()[1])
    for i in range(3):
        origin.sendto(bytes([i]), pair.getsockname())
    assert reader.read() == 2 and reader.read() == 1
    assert [bytes(reader.slot_views[s][:n]) for s, n in reader.from_source(1)] == [b"\x02"]
    reader.close()
    origin.close()


def test_without_a_source_nothing_is_passed(pair):
    origin = udp_socket()
    reader = SlotReader(pair)
    origin.sendto(b"x", pair.getsockname())
    count = reader.read()
    assert count == 1 and list(reader.from_source(count)) == [] and reader.strangers == 1
    reader.close()
    origin.close()


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6")
def test_a_dual_stack_socket_matches_an_ipv4_source():
    rtp, rtcp = bind_port_pair(ANY_V6)
    origin, other_port = udp_socket(), udp_socket()
    reader = SlotReader(rtp)
    reader.expect_source(peer_address(rtp.family, "127.0.0.1"), origin.getsockname()[1])
    origin.sendto(b"media", ("127.0.0.1", rtp.getsockname()[1]))
    other_port.sendto(b"punch", ("127.0.0.1", rtp.getsockname()[1]))
    count = reader.read()
    assert count == 2
    assert [bytes(reader.slot_views[s][:n]) for s, n in reader.from_source(count)] == [b"media"]
    reader.close()
    for s in (rtp, rtcp, origin, other_port):
        s.close()


def test_the_sender_sends_the_added_slots_as_rewritten_in_order(pair):
    origin, player = udp_socket(), udp_socket(timeout=5)
    reader = SlotReader(pair)
    reader.expect_source("127.0.0.1", origin.getsockname()[1])
    sender = SlotSender(pair, reader)
    sender.set_destination(player.getsockname())
    for data in (b"one", b"two", b"three"):
        origin.sendto(data, pair.getsockname())
    count = reader.read()
    for slot, n in reader.from_source(count):
        if slot != 1:  # the caller dropped the second packet
            reader.slot_views[slot][0:1] = b"O"  # rewritten in place
            sender.add(slot, n)
    assert sender.flush() == 2 and sender.flushes == 1
    assert [player.recv(100) for _ in range(2)] == [b"One", b"Ohree"]
    sender.set_destination(None)
    sender.add(0, 3)
    assert sender.flush() == 0
    reader.close()
    origin.close()
    player.close()


def test_lengths_and_headers_of_a_wakeup_come_in_one_call_each(pair):
    origin, stranger = udp_socket(), udp_socket()
    reader = SlotReader(pair)
    reader.expect_source("127.0.0.1", origin.getsockname()[1])
    sent = [bytes([0x80, 96]) + (7 + i).to_bytes(2, "big") + (9000 * i).to_bytes(4, "big") + b"SSRC" + b"p" * i
            for i in range(3)]
    origin.sendto(sent[0], pair.getsockname())
    stranger.sendto(b"punch-punch-punch", pair.getsockname())
    for data in sent[1:]:
        origin.sendto(data, pair.getsockname())
    count = reader.read()
    assert count == 4
    assert list(reader.lengths(count)) == [12, 0, 13, 14] and reader.strangers == 1
    fields = reader.fields("!BxHI", count)  # first byte, sequence number, timestamp of each slot
    assert fields[0:3] == (0x80, 7, 0) and fields[6:9] == (0x80, 8, 9000) and fields[9:12] == (0x80, 9, 18000)
    for data in sent:  # a wakeup of the source's datagrams only: every length passes
        origin.sendto(data, pair.getsockname())
    count = reader.read()
    assert list(reader.lengths(count)) == [12, 13, 14] and reader.strangers == 1
    reader.close()
    origin.close()
    stranger.close()


def video_frame() -> list[bytes]:
    """A video frame's fragments (equal sizes, a shorter last one), an audio packet, another frame."""
    return ([bytes([i]) * 1200 for i in range(5)] + [b"\x05" * 700, b"a" * 300]
            + [bytes([10 + i]) * 1000 for i in range(3)] + [b"\x0f" * 1000])


def receive_all(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    got = []
    while True:
        try:
            got.append(sock.recv(70000))
        except BlockingIOError:
            return got


def send_from_slots(pair, origin, reader, sender, packets: list[bytes]) -> int:
    for data in packets:
        origin.sendto(data, pair.getsockname())
    count = reader.read()
    assert count == len(packets)
    for slot, n in reader.from_source(count):
        sender.add(slot, n)
    return sender.flush()


@pytest.mark.parametrize("offload", [True, False])
def test_the_sender_keeps_every_datagram_boundary_with_and_without_segmentation_offload(pair, offload):
    origin, player = udp_socket(), udp_socket(timeout=5)
    player.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    reader = SlotReader(pair)
    reader.expect_source("127.0.0.1", origin.getsockname()[1])
    sender = SlotSender(pair, reader)
    assert sender.gso, "the kernel should know UDP_SEGMENT"
    sender.gso = offload
    sender.set_destination(player.getsockname())
    packets = video_frame()
    assert send_from_slots(pair, origin, reader, sender, packets) == len(packets)
    assert send_from_slots(pair, origin, reader, sender, packets[:1]) == 1  # a lone packet (audio) too
    assert receive_all(player) == packets + packets[:1]
    assert sender.gso is offload and sender.gso_refused == 0 and sender.flushes == 2
    reader.close()
    origin.close()
    player.close()


def test_a_route_refusing_segmentation_offload_gets_plain_datagrams_from_then_on(pair):
    # SO_NO_CHECK (no UDP checksum) makes the kernel refuse UDP_SEGMENT sends with EINVAL,
    # like a device without checksum offload does with EIO.
    pair.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK
    origin, player = udp_socket(), udp_socket(timeout=5)
    reader = SlotReader(pair)
    reader.expect_source("127.0.0.1", origin.getsockname()[1])
    sender = SlotSender(pair, reader)
    sender.set_destination(player.getsockname())
    packets = video_frame()
    assert send_from_slots(pair, origin, reader, sender, packets) == len(packets)
    assert sender.gso_refused == 1 and not sender.gso
    assert send_from_slots(pair, origin, reader, sender, packets) == len(packets)
    assert sender.gso_refused == 1 and sender.send_errors == 0
    assert receive_all(player) == packets + packets
    reader.close()
    origin.close()
    player.close()
