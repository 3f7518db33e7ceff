"""--split-read-coalesce with real sockets: the lead stream's wakeup reads every stream, the others
wait at most the window, an idle hub keeps no timer, TCP players get a pass in one write."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from proxyd.net.udp import bind_port_pair
from proxyd.rtp.packet import RtpPacket
from proxyd.split.coalesce import CoalescedReads
from proxyd.split.fanout import FRAME_HEADER, TcpGroup, TcpMember
from proxyd.split.gop import JoinBuffer
from proxyd.split.stream import HubStream
from tests.proxyd.split.test_stream import WAIT, CountingTransport, recv, udp_socket

VIDEO, AUDIO = 0, 1


class Presentation:
    """A video (lead) and an audio HubStream fed by one origin socket, read by CoalescedReads."""

    def __init__(self, window: float, players: int = 1, settle: float = 0.0) -> None:
        self.tcp_groups: dict = {}
        join = JoinBuffer(2, None, 1 << 20)
        self.streams = [HubStream(i, f"rtsp://o/live/{i}", 90000 if i == VIDEO else 48000, False,
                                  bind_port_pair("127.0.0.1"), join, self.tcp_groups) for i in (VIDEO, AUDIO)]
        self.origin = udp_socket()
        self.players = [[udp_socket() for _ in range(players)] for _ in self.streams]
        for stream, socks in zip(self.streams, self.players, strict=True):
            stream.origin_ip = "127.0.0.1"
            stream.set_udp_players([SimpleNamespace(rtp_addr=s.getsockname(), rtcp_addr=s.getsockname())
                                    for s in socks])
        self.reads = CoalescedReads(self.streams, VIDEO, window, self.tcp_groups, settle)

    def send(self, index: int, seq: int, marker: bool = False) -> None:
        packet = RtpPacket(97, seq, seq * 10, 0x1000 + index, bytes([index, seq & 0xFF]) * 20, marker)
        self.origin.sendto(packet.to_bytes(), ("127.0.0.1", self.streams[index].port))

    def close(self) -> None:
        self.reads.close()
        for stream in self.streams:
            stream.close()
        for s in [self.origin, *(s for socks in self.players for s in socks)]:
            s.close()


@pytest.fixture
async def presentation():
    made = []

    def make(window: float, players: int = 1, settle: float = 0.0) -> Presentation:
        made.append(Presentation(window, players, settle))
        return made[-1]

    yield make
    for p in made:
        p.close()


async def loop_passes(n: int = 5) -> None:
    """Let the loop run `n` iterations (each polls the watched sockets without blocking)."""
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("players", [1, 2])
async def test_every_packet_of_every_stream_arrives_in_order(presentation, players):
    p = presentation(window=10.0, players=players)
    p.send(VIDEO, 1)  # the lead's first packet: from now on only the lead wakes the hub
    for sock in p.players[VIDEO]:
        await recv(sock)
    sent = {VIDEO: [], AUDIO: []}
    for seq in range(2, 40):
        for index in ((AUDIO,) if seq % 3 else (AUDIO, VIDEO)):
            p.send(index, seq)
            sent[index].append(seq)
    p.send(VIDEO, 40)
    sent[VIDEO].append(40)
    for index in (VIDEO, AUDIO):
        for sock in p.players[index]:
            got = [int.from_bytes((await recv(sock))[2:4], "big") for _ in sent[index]]
            assert got == sent[index]
    assert p.reads.timer_passes == 0  # the lead woke the hub for all of it


async def test_other_streams_wait_for_the_lead_once_it_has_sent(presentation):
    p = presentation(window=10.0)
    p.send(AUDIO, 1)  # the lead has sent nothing yet: audio is read on its own
    await recv(p.players[AUDIO][0])
    assert not p.reads.coalescing
    p.send(VIDEO, 1)
    await recv(p.players[VIDEO][0])
    assert p.reads.coalescing
    p.send(AUDIO, 2)
    await loop_passes()
    assert p.streams[AUDIO].packets_in == 1  # not watched: waits in its socket
    passes = p.reads.passes
    p.send(VIDEO, 2)
    await recv(p.players[VIDEO][0])
    assert int.from_bytes((await recv(p.players[AUDIO][0]))[2:4], "big") == 2
    assert p.reads.passes == passes + 1  # the video's wakeup sent both


async def test_a_silent_lead_delays_the_others_at_most_the_window_then_the_hub_idles(presentation):
    window = 0.05
    loop = asyncio.get_running_loop()
    p = presentation(window=window)
    p.send(VIDEO, 1)
    await recv(p.players[VIDEO][0])
    # the pass armed the timer: nothing another stream sends now waits longer than the window
    assert p.reads.timer is not None and p.reads.timer.when() <= loop.time() + window
    p.send(AUDIO, 1)
    await recv(p.players[AUDIO][0])
    assert p.reads.timer_passes == 1 and p.reads.coalescing
    # the next timer pass finds nothing: every socket is watched again, no timer is left
    done = loop.create_future()
    loop.call_at(p.reads.timer.when() + 0.001, done.set_result, None)  # runs after that timer
    await done
    assert not p.reads.coalescing and p.reads.timer is None and p.reads.timer_passes == 2
    p.send(AUDIO, 2)
    await recv(p.players[AUDIO][0])


async def test_tcp_players_get_a_pass_in_one_write_without_the_flush_timer(presentation):
    """The group's flush interval (far longer than the test's wait) is not waited for: the pass
    that read the video and the audio writes both in one write."""
    loop = asyncio.get_running_loop()
    p = presentation(window=10.0)
    received = bytearray()
    arrived = asyncio.Event()
    frames = []

    async def on_client(reader, writer):
        while data := await reader.read(65536):
            received.extend(data)
            arrived.set()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", server.sockets[0].getsockname()[1])
    counting = CountingTransport(transport)
    group = p.tcp_groups[((0, 1), (2, 3))] = TcpGroup(((0, 1), (2, 3)), high_water=1 << 20, drop_limit=4 << 20,
                                                     max_dropped=10**6, flush_interval=3 * WAIT)
    member = TcpMember(counting, lambda why: None)
    member.hold = None
    group.members.append(member)
    p.send(VIDEO, 1)  # coalescing from here on
    data = await recv(p.players[VIDEO][0])
    frames.append(FRAME_HEADER.pack(b"$", 0, len(data)) + data)
    assert counting.writes == 1  # at the end of the pass that sent the UDP player its packet
    p.send(AUDIO, 2)
    p.send(VIDEO, 2)
    for index, channel in ((VIDEO, 0), (AUDIO, 2)):  # the pass reads the streams in order
        data = await recv(p.players[index][0])
        frames.append(FRAME_HEADER.pack(b"$", channel, len(data)) + data)
    async with asyncio.timeout(WAIT):
        while len(received) < sum(map(len, frames)):
            arrived.clear()
            await arrived.wait()
    assert counting.writes == 2
    assert bytes(received) == b"".join(frames)
    transport.close()
    server.close()


async def test_a_frame_whose_end_has_not_come_is_read_once_more_after_the_settle_time(presentation):
    settle = 0.05
    loop = asyncio.get_running_loop()
    p = presentation(window=10.0, settle=settle)
    video = p.players[VIDEO][0]
    p.send(VIDEO, 1, marker=True)  # a whole frame: the origin marks frame ends
    await recv(video)
    assert p.reads.settling is None
    p.send(VIDEO, 2)  # a frame's first packet: its end is still to come
    await recv(video)
    assert p.reads.settling is not None and p.reads.settling.when() <= loop.time() + settle
    p.send(VIDEO, 3)
    p.send(VIDEO, 4, marker=True)
    p.send(AUDIO, 4)
    await loop_passes()
    assert p.streams[VIDEO].packets_in == 2  # the lead is not watched: the tail waits in its socket
    assert [int.from_bytes((await recv(video))[2:4], "big") for _ in range(2)] == [3, 4]
    await recv(p.players[AUDIO][0])
    assert p.reads.settled_passes == 1 and p.reads.settling is None
    p.send(VIDEO, 5, marker=True)  # the lead is watched again
    await recv(video)
    assert p.reads.settled_passes == 1


async def test_an_origin_that_marks_no_frame_end_gets_no_settle_timer(presentation):
    p = presentation(window=10.0, settle=10.0)
    for seq in range(1, 4):
        p.send(VIDEO, seq)
        await recv(p.players[VIDEO][0])  # (a settle of 10 s would hold the second one past WAIT)
    assert p.reads.settling is None and p.reads.settled_passes == 0
