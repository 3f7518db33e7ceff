"""Server-side session state and RTP delivery for the test origin ([MS-RTSP] 3.2).

A session goes INIT -> READY on its first SelectStream (SETUP, 3.2.5.6.4) and READY <-> PLAYING
on Play/Pause (3.2.5.8, 3.2.5.11). While PLAYING, ASF packets are sent as x-asf-pf RTP paced by
their Send Time (3.2.4.3), `Speed` times faster when the player asked for it after we offered
com.microsoft.wm.fastcache (2.2.6.10.2). After the last packet the session goes READY and an
EndOfStream is sent (3.2.4.1); in a server-side playlist it is followed by an Announce of the next
entry (3.2.4.2). Simplification: a session ends when its TCP connection closes (the spec keeps it
READY until the Idle-Timeout, 3.2.7.2).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.wmorigin.content import Entry, Item

if TYPE_CHECKING:
    from tests.wmorigin.handler import OriginConnection

log = logging.getLogger("wmorigin")


@dataclass
class StreamOut:
    """One selected stream: where its RTP goes and its RTP counters."""

    number: int  # ASF stream number (65536 for rtx)
    url: str
    ssrc: int
    seq: int
    channel: int | None = None  # TCP interleaved RTP channel
    address: tuple[str, int] | None = None  # UDP destination
    sent_packets: int = 0
    sent_bytes: int = 0
    payload_octets: int = 0
    last_report: float = -1e9  # loop time of the last RTCP sender report


@dataclass(frozen=True)
class SetupSsrc:
    url: str
    named: int | None  # in the SETUP answer's Transport (None: no ssrc parameter)
    sent: int  # what the stream's RTP and RTCP carry


@dataclass
class OriginSession:
    id: str
    entry: Entry
    url: str  # aggregate URL as the client addressed it
    connection: OriginConnection
    item_index: int = 0
    state: str = "READY"
    gen_id: int = 0
    previous_gen_id: int = 0
    pause_allowed_in_ready: bool = False
    streams: dict[int, StreamOut] = field(default_factory=dict)
    udp: socket.socket | None = None
    udp_rtcp: socket.socket | None = None
    udp_port: int = 0
    speed: float = 1.0
    position: int = 0  # next schedule index (resume point after PAUSE)
    sender: asyncio.Task | None = None
    eos_sent: int = 0
    select_batch: int = 0  # after an Announce: SelectStream answers held until this many arrived
    selects_arrived: int = 0

    @property
    def item(self) -> Item:
        return self.entry.items[self.item_index]

    def media_streams(self) -> list[StreamOut]:
        return [s for s in self.streams.values() if s.number < 65536]

    def snapshot(self) -> dict:
        return {"id": self.id, "path": self.entry.path, "state": self.state, "item": self.item_index,
                "transports": ["tcp" if s.channel is not None else "udp" for s in self.media_streams()],
                "packets": {s.number: s.sent_packets for s in self.media_streams()}}

    def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        for sock in (self.udp, self.udp_rtcp):
            if sock is not None:
                sock.close()
        self.udp = self.udp_rtcp = None


def new_session_id() -> str:
    return str(random.randrange(10**18, 10**19))  # <= 20 characters (3.2.5.1)


def new_stream(number: int, url: str) -> StreamOut:
    return StreamOut(number, url, random.getrandbits(32) or 1, random.getrandbits(15))


def open_udp_pair() -> tuple[socket.socket, socket.socket, int]:
    """RTP and RTCP sockets on an even port and its odd neighbour (server_port=p-(p+1))."""
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind(("127.0.0.1", port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return rtp, rtcp, port
        rtp.close()
    raise OSError("no free UDP port pair")


def sender_report(stream: StreamOut, rtp_timestamp: int) -> bytes:
    """RTCP SR + SDES CNAME compound packet (RFC 3550 6.4.1, 6.5.1) so receivers can map RTP
    time to wall-clock time and synchronise audio with video."""
    now = time.time() + 2_208_988_800  # NTP epoch
    ntp_sec, ntp_frac = int(now), int((now % 1) * (1 << 32))
    sr = struct.pack(">BBHIIIIII", 0x80, 200, 6, stream.ssrc, ntp_sec & 0xFFFFFFFF, ntp_frac,
                     rtp_timestamp & 0xFFFFFFFF, stream.sent_packets, stream.payload_octets & 0xFFFFFFFF)
    cname = f"{stream.ssrc}@wmorigin".encode()
    item = bytes((1, len(cname))) + cname + b"\x00"
    item += bytes(-len(item) % 4)
    sdes = struct.pack(">BBHI", 0x81, 202, (4 + len(item)) // 4, stream.ssrc) + item
    return sr + sdes


def rtp_packet(stream: StreamOut, timestamp: int, marker: bool, payload: bytes) -> bytes:
    head = struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 96, stream.seq & 0xFFFF,
                       timestamp & 0xFFFFFFFF, stream.ssrc)
    stream.seq = (stream.seq + 1) & 0xFFFF
    return head + payload


async def deliver(session: OriginSession, start: int, base_time: int, delay_s: float = 0.0) -> None:
    """Send the current item's schedule from index `start` (the first packet `delay_s` after now),
    then end the entry (3.2.4.1). A broadcast never ends: it loops, with RTP timestamps continuing
    across loops."""
    try:
        await _deliver(session, start, base_time, delay_s)
    except (ConnectionError, RuntimeError) as exc:  # the client went away mid-stream
        log.info("origin: session %s delivery stopped: %s", session.id, exc)
        session.sender = None


async def _deliver(session: OriginSession, start: int, base_time: int, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    schedule = session.item.schedule
    period = session.item.asf.duration_ms
    t0 = loop.time() + delay_s
    laps = 0
    while True:
        for index in range(start, len(schedule)):
            item = schedule[index]
            send_time = item.send_time + laps * period
            delay = t0 + (send_time - base_time) / 1000 / session.speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing by ASF send time, not synchronisation
            session.position = index + 1
            out = session.streams.get(item.stream)
            if out is not None:
                await _send(session, out, item.payload.timestamp + laps * period, item.payload)
        if not session.entry.broadcast:
            break
        laps, start = laps + 1, 0
    session.state = "READY"
    session.sender = None
    await session.connection.end_of_entry(session)


SR_INTERVAL_S = 1.0


async def _send(session: OriginSession, out: StreamOut, timestamp: int, payload) -> None:
    now = asyncio.get_running_loop().time()
    if now - out.last_report >= SR_INTERVAL_S:
        out.last_report = now
        await _emit(session, out, sender_report(out, timestamp), rtcp=True)
    data = rtp_packet(out, timestamp, payload.marker, payload.data)
    out.sent_packets += 1
    out.sent_bytes += len(data)
    out.payload_octets += len(payload.data)
    await _emit(session, out, data, rtcp=False)


async def _emit(session: OriginSession, out: StreamOut, data: bytes, rtcp: bool) -> None:
    if out.channel is not None:
        await session.connection.write_frame(out.channel + rtcp, data)
        return
    sock = session.udp_rtcp if rtcp else session.udp
    if sock is not None and out.address is not None:
        try:
            sock.sendto(data, (out.address[0], out.address[1] + rtcp))
        except OSError:
            pass  # UDP loss is allowed; the player counts what arrives
