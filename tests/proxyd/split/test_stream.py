"""HubStream and the fan-out with real sockets: mapping continuity, RTCP rewriting, isolation."""

from __future__ import annotations

import asyncio
import socket
import struct
import tracemalloc
from types import SimpleNamespace

import pytest

from proxyd.net.udp import bind_port_pair
from proxyd.rtp.keyframe import h264_key_start
from proxyd.rtp.packet import RtpPacket, SenderReport, build_bye, build_sr, parse_rtcp
from proxyd.split.fanout import FRAME_HEADER, TcpGroup, TcpMember
from proxyd.split.gop import JoinBuffer
from proxyd.split.stream import HubStream

WAIT = 5.0


def udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


async def recv(sock: socket.socket) -> bytes:
    async with asyncio.timeout(WAIT):
        return await asyncio.get_running_loop().sock_recv(sock, 65536)


def rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\x41abc") -> bytes:
    return RtpPacket(97, seq, ts, ssrc, payload).to_bytes()


@pytest.fixture
async def hub_stream():
    stream = HubStream(0, "rtsp://o/live/a", 48000, False, bind_port_pair("127.0.0.1"),
                       JoinBuffer(1, None, 1 << 20), {})
    stream.origin_ip = "127.0.0.1"
    yield stream
    stream.close()


@pytest.fixture
def sockets():
    made = []

    def make():
        made.append(udp_socket())
        return made[-1]

    yield make
    for s in made:
        s.close()


async def test_every_udp_player_gets_each_packet_once_with_one_mapping(hub_stream, sockets):
    origin, players = sockets(), [(sockets(), sockets()) for _ in range(3)]
    hub_stream.set_udp_players([SimpleNamespace(rtp_addr=r.getsockname(), rtcp_addr=c.getsockname())
                                for r, c in players])
    for seq in (100, 101):
        origin.sendto(rtp(seq, 5000 + seq, 0xAAAA), ("127.0.0.1", hub_stream.port))
    for r, _ in players:
        got = [RtpPacket.parse(await recv(r)) for _ in range(2)]
        assert [(p.sequence, p.timestamp, p.ssrc) for p in got] == [(100, 5100, 0xAAAA), (101, 5101, 0xAAAA)]
    assert (hub_stream.packets_in, hub_stream.packets_sent) == (2, 2)


async def test_a_header_only_packet_is_not_origin_media(hub_stream, sockets):
    """ffmpeg's NAT punch at SETUP (12 bytes, SSRC 0) comes from the origin's IP when both run on
    one host: it must not count as origin media (the UDP fallback watches that) nor remap."""
    origin, player = sockets(), sockets()
    hub_stream.set_udp_players([SimpleNamespace(rtp_addr=player.getsockname(), rtcp_addr=("127.0.0.1", 9))])
    addr = ("127.0.0.1", hub_stream.port)
    origin.sendto(rtp(40, 4000, 0x1111), addr)
    assert RtpPacket.parse(await recv(player)).sequence == 40
    origin.sendto(bytes([0x80]) + bytes(11), addr)  # the punch
    origin.sendto(rtp(41, 4100, 0x1111), addr)
    got = RtpPacket.parse(await recv(player))
    assert (got.sequence, got.timestamp, got.ssrc) == (41, 4100, 0x1111)
    assert (hub_stream.packets_in, hub_stream.bad_packets) == (2, 1)


async def test_new_origin_source_continues_the_players_numbering(hub_stream, sockets):
    origin, player = sockets(), sockets()
    hub_stream.set_udp_players([SimpleNamespace(rtp_addr=player.getsockname(), rtcp_addr=("127.0.0.1", 9))])
    addr = ("127.0.0.1", hub_stream.port)
    origin.sendto(rtp(500, 90000, 0x1111), addr)
    first = RtpPacket.parse(await recv(player))
    origin.sendto(rtp(500, 90000, 0x1111), addr)  # duplicate: not passed on
    origin.sendto(rtp(7, 123, 0x2222), addr)  # restarted origin: new SSRC, seq and timestamp
    origin.sendto(rtp(8, 1147, 0x2222), addr)
    second, third = RtpPacket.parse(await recv(player)), RtpPacket.parse(await recv(player))
    assert first.ssrc == second.ssrc == third.ssrc == 0x1111
    assert (second.sequence, third.sequence) == (501, 502)
    assert (second.timestamp - first.timestamp) % 2**32 >= 1
    assert (third.timestamp - second.timestamp) % 2**32 == 1024


async def test_origin_sr_is_rewritten_and_origin_bye_is_not_passed_on(hub_stream, sockets):
    origin, player_rtp, player_rtcp = sockets(), sockets(), sockets()
    hub_stream.set_udp_players([SimpleNamespace(rtp_addr=player_rtp.getsockname(),
                                                rtcp_addr=player_rtcp.getsockname())])
    origin.sendto(rtp(10, 1000, 0x1111), ("127.0.0.1", hub_stream.port))
    await recv(player_rtp)
    origin.sendto(rtp(3, 50, 0x2222), ("127.0.0.1", hub_stream.port))  # new source: ts_delta != 0
    mapped = RtpPacket.parse(await recv(player_rtp))
    rtcp_addr = ("127.0.0.1", hub_stream.port + 1)
    origin.sendto(build_bye((0x2222,)), rtcp_addr)
    origin.sendto(build_sr(0x2222, 3900000000, 0, 50, 2, 8), rtcp_addr)
    sr = parse_rtcp(await recv(player_rtcp))[0]  # the BYE sent first never arrives
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.rtp_timestamp) == (0x1111, mapped.timestamp)
    assert hub_stream.last_sr is not None


async def test_player_receiver_reports_reach_their_player_stream(hub_stream, sockets):
    player_rtcp = sockets()
    seen, arrived = [], asyncio.Event()
    hub_stream.rtcp_players[player_rtcp.getsockname()] = SimpleNamespace(
        rtcp_from_player=lambda data: (seen.append(data), arrived.set()))
    rr = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)
    player_rtcp.sendto(rr, ("127.0.0.1", hub_stream.port + 1))
    async with asyncio.timeout(WAIT):
        await arrived.wait()
    assert seen == [rr]


async def test_tcp_group_drops_then_disconnects_a_stalled_player_only():
    loop = asyncio.get_running_loop()
    received = bytearray()
    arrived = asyncio.Event()
    accepted: list[asyncio.StreamWriter] = []

    async def on_client(reader, writer):
        accepted.append(writer)
        if len(accepted) == 1:  # the healthy player reads everything
            while data := await reader.read(65536):
                received.extend(data)
                arrived.set()
        # the stalled player never reads

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transports = []
    for _ in range(2):
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        transports.append(transport)
    for t in transports:
        t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    overflow = []
    budget = 1000  # dropped packets before the stalled player is disconnected
    group = TcpGroup(((0, 1),), high_water=64 * 1024, drop_limit=256 * 1024, max_dropped=budget)
    healthy, stalled = (TcpMember(t, overflow.append) for t in transports)
    healthy.hold = stalled.hold = None
    group.members += [healthy, stalled]
    payload = b"x" * 996
    sent = 0

    async def send_and_wait_for_the_healthy_player(packets: int) -> None:
        # A healthy player keeps up with the stream's rate: the next packets go out once it has
        # read these (a sender spinning as fast as the CPU allows would outrun any reader on a
        # loaded machine, and its buffer would pass the high-water mark too).
        nonlocal sent
        for _ in range(packets):
            group.add(0, False, payload)
        sent += packets * (4 + len(payload))
        while len(received) < sent:
            arrived.clear()
            await arrived.wait()

    async with asyncio.timeout(60):
        while not overflow:
            await send_and_wait_for_the_healthy_player(16)
        await send_and_wait_for_the_healthy_player(16)  # still served after the other one is gone
    assert stalled.closed and stalled.dropped > budget and "slow player" in overflow[0]
    assert not healthy.closed and healthy.dropped == 0 and len(overflow) == 1
    assert received == b"".join(FRAME_HEADER.pack(b"$", 0, len(payload)) + payload
                                for _ in range(sent // (4 + len(payload))))
    for t in transports:
        t.close()
    server.close()


class CountingTransport:
    """A real TCP transport that counts the writes made to it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport, self.writes = transport, 0

    def write(self, data) -> None:
        self.writes += 1
        self.transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


@pytest.mark.parametrize("interval, writes", [(0.0, 3), (0.2, 1)])
async def test_tcp_group_joins_a_flush_interval_into_one_write(interval, writes):
    loop = asyncio.get_running_loop()
    received = bytearray()
    frame = 4 + 100
    got_all = asyncio.Event()

    async def on_client(reader, writer):
        while data := await reader.read(65536):
            received.extend(data)
            if len(received) >= 3 * frame:
                got_all.set()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                                server.sockets[0].getsockname()[1])
    counting = CountingTransport(transport)
    group = TcpGroup(((0, 1),), high_water=1 << 20, drop_limit=4 << 20, max_dropped=10**6,
                     flush_interval=interval)
    member = TcpMember(counting, lambda why: None)
    member.hold = None
    group.members.append(member)
    for i in range(3):  # three event-loop passes: three origin wakeups
        group.add(0, False, bytes([i]) * 100)
        await asyncio.sleep(0)
    async with asyncio.timeout(WAIT):
        await got_all.wait()
    assert counting.writes == writes
    assert bytes(received) == b"".join(b"$\x00\x00\x64" + bytes([i]) * 100 for i in range(3))
    transport.close()
    server.close()


async def test_the_ssrc_the_origin_named_is_kept_for_good(hub_stream, sockets):
    """The origin's SETUP named 0xABCD (so players were told it): its packets, whatever SSRC they
    carry, and those of a later origin session, reach players as 0xABCD; the first source's
    sequence numbers and timestamps pass unchanged (the origin's RTP-Info stays true)."""
    origin, player_rtp, player_rtcp = sockets(), sockets(), sockets()
    hub_stream.set_udp_players([SimpleNamespace(rtp_addr=player_rtp.getsockname(),
                                                rtcp_addr=player_rtcp.getsockname())])
    hub_stream.origin_named_ssrc(0xABCD)
    assert hub_stream.ssrc_fixed.is_set() and hub_stream.ssrc == 0xABCD
    hub_stream.remap = True  # the origin session was set up again before its first packet
    hub_stream.origin_named_ssrc(0x5555)
    addr = ("127.0.0.1", hub_stream.port)
    origin.sendto(rtp(10, 1000, 0x1111), addr)  # not the SSRC it named
    first = RtpPacket.parse(await recv(player_rtp))
    assert (first.sequence, first.timestamp, first.ssrc) == (10, 1000, 0xABCD)
    origin.sendto(build_sr(0x1111, 3900000000, 0, 1000, 1, 4), ("127.0.0.1", hub_stream.port + 1))
    assert parse_rtcp(await recv(player_rtcp))[0].ssrc == 0xABCD
    hub_stream.remap = True  # reconnect: a new origin session names and sends another SSRC
    hub_stream.origin_named_ssrc(0x2222)
    origin.sendto(rtp(3, 50, 0x2222), addr)
    second = RtpPacket.parse(await recv(player_rtp))
    assert (second.sequence, second.ssrc) == (11, 0xABCD)


async def test_without_a_named_ssrc_the_first_packet_fixes_it(hub_stream, sockets):
    origin, player = sockets(), sockets()
    hub_stream.set_udp_players([SimpleNamespace(rtp_addr=player.getsockname(), rtcp_addr=("127.0.0.1", 9))])
    assert not hub_stream.ssrc_fixed.is_set()
    origin.sendto(rtp(10, 1000, 0x1111), ("127.0.0.1", hub_stream.port))
    async with asyncio.timeout(WAIT):
        await hub_stream.ssrc_fixed.wait()
    assert hub_stream.ssrc == 0x1111
    hub_stream.origin_named_ssrc(0x2222)  # a reconnect's SETUP: too late, players know 0x1111
    assert hub_stream.ssrc == 0x1111
    assert RtpPacket.parse(await recv(player)).ssrc == 0x1111


@pytest.mark.parametrize("player_count", [1, 2])  # a sole player from the reader's slots, more by the fan-out
async def test_forwarding_keeps_no_python_object_per_packet(sockets, player_count):
    """The split's UDP path (recvmmsg read, mapping, join buffer, sendmmsg) for a GOP of 3000
    packets from a real origin socket leaves no Python object per packet behind; counted by
    tracemalloc, not timed."""
    origin, players = sockets(), [sockets() for _ in range(player_count)]
    join = JoinBuffer(1, 0, 8 << 20, h264_key_start)
    stream = HubStream(0, "rtsp://o/live/v", 90000, True, bind_port_pair("127.0.0.1"), join, {})
    stream.origin_ip, stream.origin_rtp_port = "127.0.0.1", origin.getsockname()[1]
    try:
        stream.set_udp_players([SimpleNamespace(rtp_addr=p.getsockname(), rtcp_addr=("127.0.0.1", 9))
                                for p in players])
        idr, delta = bytes([0x7C, 0x85]) + bytes(1200), bytes([0x7C, 0x05]) + bytes(1200)
        packets = [rtp(seq, 3600 * (seq // 6), 0xAAAA, idr if seq == 0 else delta) for seq in range(3200)]

        async def forward(batch):
            for data in batch:
                origin.sendto(data, ("127.0.0.1", stream.port))
            for player in players:  # every packet arrived, so every wakeup's flush has run
                for _ in batch:
                    await recv(player)

        for start in range(0, 200, 6):  # warm up: what is allocated once is allocated now
            await forward(packets[start:min(start + 6, 200)])
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for start in range(200, 3200, 6):  # a video frame's burst at a time
                await forward(packets[start:start + 6])
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 16384, f"{grown} bytes kept by Python objects for 3000 packets"
        assert stream.packets_sent == 3200 and join.active
        assert len(join.snapshot(0)) == 3200
    finally:
        stream.close()
