"""One stream of a cache replay toward its player: the session's own SSRC, continuous sequence
numbers and timestamps moved by a random offset, written straight from the stored media.

TCP: frames go into the connection's joined write (one write per wakeup). UDP: datagrams are
copied into the send batch of the stream slot's shared port (cache/udp_ports.py), headers
rewritten there, equal-size runs to the player made one GSO message; every replay of the slot due
in a pacing tick shares that port's one sendmmsg.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from proxyd.cache.udp_ports import ReplayPort
from proxyd.net.burst import MAX_GSO_BYTES, MAX_GSO_SEGMENTS
from proxyd.net.sendbatch import Destination
from proxyd.origin.stream_relay import StreamRelay
from proxyd.rtp.packet import SEQ_TS_SSRC

if TYPE_CHECKING:
    from proxyd.cache.media import EntryMedia


class ReplayRelay(StreamRelay):
    """A replay stream's relay: a UDP player is served from a shared ReplayPort (not a pair of its own)."""

    port: ReplayPort | None = None
    joined_as: tuple = ()  # the player RTCP address it is known by on the port

    def use_port(self, port: ReplayPort, rtp_addr: tuple, rtcp_addr: tuple) -> None:
        self.port = port
        self.player_rtp_addr, self.player_rtcp_addr = rtp_addr, rtcp_addr
        self.joined_as = rtcp_addr
        port.join(self, rtcp_addr)

    def rtcp_from_origin(self, data) -> None:
        """The replay's own sender reports and BYE toward the player."""
        if self.port is None or self.player_writer is not None:
            super().rtcp_from_origin(data)
        elif self.player_rtcp_addr is not None:
            self.port.send_rtcp(data, self.player_rtcp_addr)

    def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            port.leave(self, self.joined_as)
        super().close()


class ReplayStream:
    """One stream of a replay: its own SSRC, sequence and timestamp offset."""

    __slots__ = ("relay", "ssrc", "seq", "ts_offset", "rtptime0", "rate", "octets", "dest")

    def __init__(self, relay: ReplayRelay, rate: int, rtptime0: int | None) -> None:
        self.relay = relay
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts_offset = random.getrandbits(32)
        self.rtptime0 = rtptime0 or 0
        self.rate = rate
        self.octets = 0
        self.dest: Destination | None = None

    def rtp_time(self, media_us: int) -> int:
        return (self.ts_offset + self.rtptime0 + media_us * self.rate // 1_000_000) & 0xFFFFFFFF

    def destination(self) -> Destination | None:
        """The player's RTP address as the shared port sends to it (None: not sending over UDP now)."""
        relay = self.relay
        addr, port = relay.player_rtp_addr, relay.port
        if addr is None or port is None:
            return None
        dest = self.dest
        if dest is None or dest.address != addr:
            dest = self.dest = Destination(port.family, addr, relay.counters)
        return dest

    def send(self, media: EntryMedia, first: int, last: int, index: int) -> None:
        """Packets first..last-1 of `media` that belong to stream `index`, rewritten to this stream."""
        relay = self.relay
        if relay.player_writer is not None:
            count, octets = self._send_tcp(media, first, last, index)
        else:
            count, octets = self._send_udp(media, first, last, index)
        c = relay.counters
        c.packets_out += count
        c.bytes_out += octets
        self.octets += octets - 12 * count

    def _send_tcp(self, media: EntryMedia, first: int, last: int, index: int) -> tuple[int, int]:
        relay = self.relay
        count, octets = relay.player_writer.add_rtp_stream(
            relay.player_channels[0], media.packets, media.stamps, media.streams, index, first, last,
            self.seq, self.ts_offset, self.ssrc)
        self.seq = (self.seq + count) & 0xFFFF
        return count, octets

    def _send_udp(self, media: EntryMedia, first: int, last: int, index: int) -> tuple[int, int]:
        """Copy into the port's batch, rewrite in place, and emit GSO runs (a run: equal-size
        datagrams, a shorter one ends it); the batch is flushed once for every replay of the tick."""
        dest = self.destination()
        if dest is None:
            return 0, 0
        batch = self.relay.port.batch
        view, capacity, room = batch.view, batch.capacity, batch.max_messages - 2
        max_segments = MAX_GSO_SEGMENTS if batch.gso else 1
        streams, packets, stamps, pack = media.streams, media.packets, media.stamps, SEQ_TS_SSRC.pack_into
        seq, ts_offset, ssrc = self.seq, self.ts_offset, self.ssrc
        used = batch.used
        left = room - batch.count  # messages this call may still emit before a flush
        start = segment = segments = count = octets = 0  # segment 0: no run open
        for i in range(first, last):
            if streams[i] != index:
                continue
            packet = packets[i]
            n = len(packet)
            if segment and (n > segment or segments == max_segments or used + n - start > MAX_GSO_BYTES):
                batch.emit(dest, start, used - start, segment)
                segment = 0
                left -= 1
            if used + n > capacity or left < 0:
                if segment:
                    batch.emit(dest, start, used - start, segment)
                    segment = 0
                batch.flush()
                used, left = 0, room
            end = used + n
            view[used:end] = packet
            pack(view, used + 2, seq, (stamps[i] + ts_offset) & 0xFFFFFFFF, ssrc)
            seq = (seq + 1) & 0xFFFF
            count += 1
            octets += n
            if not segment:
                start, segment, segments = used, n, 1
            elif n < segment:  # a shorter datagram ends the run
                batch.emit(dest, start, end - start, segment)
                segment = 0
                left -= 1
            else:
                segments += 1
            used = end
        if segment:
            batch.emit(dest, start, used - start, segment)
        batch.used = used
        batch.flush_soon()
        self.seq = seq
        return count, octets

    def flush(self) -> None:
        """Send what this stream has batched now (before an RTCP BYE that must follow it)."""
        port = self.relay.port
        if port is not None:
            port.batch.flush()

    def send_rtcp(self, data: bytes) -> None:
        self.relay.rtcp_from_origin(data)  # the relay's path toward the player (TCP or UDP)
