"""Relay pieces: counters, receiver-report jitter, joined interleaved writes and the slow-player policy."""

import asyncio
import struct

from proxyd.origin.stream_relay import InterleavedWriter, StreamCounters
from proxyd.rtp.rtcp import first_report_block
from tests.proxyd.runtime.fakes import FakeTransport


def rtp(seq: int, payload: bytes = b"x" * 10) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, 0, 0x1234) + payload


def jitter_of(data: bytes) -> int | None:
    block = first_report_block(data)
    return block.jitter if block is not None else None


def test_loss_from_sequence_gaps_with_wraparound_and_reordering():
    c = StreamCounters()
    for seq in (65533, 65534, 1, 2, 2, 0, 5):  # 65535 and 0 missing (0 arrives late), 3,4 missing
        c.count_rtp_in(rtp(seq))
    assert c.packets_in == 7
    assert c.packets_lost == 2 + 2
    assert c.bytes_in == 7 * 22


def test_jitter_from_receiver_report_and_sender_report():
    block = struct.pack("!IIIIII", 0xAAAA, 0, 100, 4500, 0, 0)
    rr = struct.pack("!BBHI", 0x81, 201, 7, 0xBBBB) + block
    assert jitter_of(rr) == 4500
    sr = struct.pack("!BBHI", 0x81, 200, 12, 0xCCCC) + bytes(20) + struct.pack("!IIIIII", 1, 0, 0, 900, 0, 0)
    assert jitter_of(sr + rr) == 900
    empty_rr = struct.pack("!BBHI", 0x80, 201, 1, 0xBBBB)
    assert jitter_of(empty_rr + rr) == 4500
    assert jitter_of(b"\x00" * 40) is None
    assert jitter_of(rr[:20]) is None


async def test_frames_from_one_iteration_are_joined_into_one_write():
    transport = FakeTransport()
    writes = []
    transport.write = lambda data: writes.append(bytes(data))
    overflow = []
    w = InterleavedWriter(transport, high_water=1000, drop_limit=5000,
                          max_dropped=10, on_overflow=overflow.append)
    for i in range(5):
        w.add(i % 2, rtp(i))
    assert writes == []
    await asyncio.sleep(0)  # one loop iteration
    assert len(writes) == 1
    expected = b"".join(b"$" + bytes([i % 2]) + struct.pack("!H", 22) + rtp(i) for i in range(5))
    assert writes[0] == expected
    assert overflow == []


async def test_slow_player_gets_drops_then_disconnect():
    transport = FakeTransport()
    reasons = []
    w = InterleavedWriter(transport, high_water=1000, drop_limit=5000,
                          max_dropped=3, on_overflow=reasons.append)
    transport.buffer_size = 2000  # above high water, below the hard limit
    w.add(0, rtp(1))
    w.add(0, rtp(2))
    w.flush()
    assert w.dropped == 2 and reasons == [] and transport.written == b""
    transport.buffer_size = 0
    w.add(0, rtp(3))
    w.flush()
    assert len(transport.written) == 26
    transport.buffer_size = 2000
    w.add(0, rtp(4))
    w.add(0, rtp(5))
    w.flush()
    assert w.dropped == 4 and len(reasons) == 1 and "slow player" in reasons[0]
    w.add(0, rtp(6))  # closed: ignored
    w.flush()
    assert len(transport.written) == 26


async def test_hard_limit_disconnects_at_once():
    transport = FakeTransport()
    reasons = []
    w = InterleavedWriter(transport, high_water=1000, drop_limit=5000,
                          max_dropped=1000, on_overflow=reasons.append)
    transport.buffer_size = 6000
    w.add(0, rtp(1))
    w.flush()
    assert len(reasons) == 1


async def test_udp_pair_forwards_only_origin_media_and_routes_rtcp_by_source():
    import socket

    from proxyd.net.udp import bind_port_pair
    from proxyd.origin.stream_relay import StreamRelay, UdpPair

    def udp(host="127.0.0.1"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        s.settimeout(2)
        return s

    origin_rtp, origin_rtcp, player_rtp, player_rtcp = (udp() for _ in range(4))
    stranger = udp("127.0.0.2")
    stream = StreamRelay(0)
    stream.pair = UdpPair(*bind_port_pair("127.0.0.1"), stream)
    stream.origin_ip = "127.0.0.1"
    stream.origin_rtcp_addr = origin_rtcp.getsockname()
    stream.player_rtp_addr = player_rtp.getsockname()
    stream.player_rtcp_addr = player_rtcp.getsockname()
    rtp_port = stream.pair.rtp_port
    try:
        player_rtp.sendto(b"punch", ("127.0.0.1", rtp_port))  # player's NAT punch: dropped
        stranger.sendto(rtp(1), ("127.0.0.1", rtp_port))  # not the origin's address: dropped
        origin_rtp.sendto(rtp(7), ("127.0.0.1", rtp_port))
        data, src = await asyncio.to_thread(player_rtp.recvfrom, 2048)
        assert data == rtp(7) and src == ("127.0.0.1", rtp_port)  # sent from the advertised server port
        rr = struct.pack("!BBHI", 0x81, 201, 7, 1) + struct.pack("!IIIIII", 2, 0, 0, 900, 0, 0)
        player_rtcp.sendto(rr, ("127.0.0.1", rtp_port + 1))
        assert (await asyncio.to_thread(origin_rtcp.recvfrom, 2048))[0] == rr
        origin_rtcp.sendto(b"\x80\xc8sr", ("127.0.0.1", rtp_port + 1))
        assert (await asyncio.to_thread(player_rtcp.recvfrom, 2048))[0] == b"\x80\xc8sr"
        assert stream.counters.packets_in == 1 and stream.counters.packets_out == 1
        assert stream.counters.jitter_units == 900 and stream.jitter_ms == 10.0
    finally:
        stream.close()
        for s in (origin_rtp, origin_rtcp, player_rtp, player_rtcp, stranger):
            s.close()
    assert stream.pair is None


async def test_a_sender_that_can_wait_is_woken_when_the_buffer_drains():
    transport = FakeTransport()
    w = InterleavedWriter(transport, high_water=1000, drop_limit=5000, max_dropped=3, on_overflow=print)
    assert transport.write_limits == (1000, None)  # the transport's flow control at our mark
    woken = []
    transport.buffer_size = 2000
    assert w.congested
    w.when_drained(lambda: woken.append("replay"))
    transport.buffer_size = 200
    w.drained()  # what the player connection's resume_writing does
    assert woken == ["replay"] and w.drain_waiters == []
    w.when_drained(lambda: woken.append("at once"))  # not congested: on the next loop pass
    await asyncio.sleep(0)
    assert woken == ["replay", "at once"] and w.dropped == 0
