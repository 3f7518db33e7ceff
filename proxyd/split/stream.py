"""One media stream of a split: origin packets in (UDP pair or interleaved frames), the hub's
SSRC/sequence/timestamp mapping applied in place, then fanned out to every playing player.

The mapping keeps players' streams continuous when the origin session changes (reconnect, new
SSRC): the first packet of a new origin session continues the sequence and advances the timestamp
by the wall-clock gap. Origin RTCP SRs are rewritten the same way; an origin BYE is not passed on
(the hub decides when players end).

The hub's SSRC is the one the origin's SETUP answer named (else the first packet's), fixed before
any player is told it: players' SETUP answers name it, and every later origin SSRC (an origin that
named one SSRC and sends another, a reconnect) is rewritten to it.

A UDP origin's packets of one wakeup are read by one recvmmsg into the reader's slots (net/slots.py)
and mapped there in place; their lengths and RTP headers are unpacked for the whole wakeup at once. A sole UDP player is sent them from those slots by one sendmmsg (no copy);
two or more get them through the burst fan-out (net/burst.py: copied into its batch, player-major).
"""

from __future__ import annotations

import asyncio
import ctypes
import socket
import struct
from typing import TYPE_CHECKING

from proxyd.rtp.packet import RTCP_BYE, RTCP_SDES, RTCP_SR
from proxyd.net.burst import UdpBurstFanout
from proxyd.net.slots import SlotReader, SlotSender
from proxyd.net.udp import close_watched, drain
from proxyd.split.fanout import MAX_DATAGRAM

if TYPE_CHECKING:
    from proxyd.split.gop import JoinBuffer

SEQ_TS_SSRC = struct.Struct("!HII")
RTP_HEAD = "!BxHII"  # first byte (version), sequence number, timestamp, SSRC: SlotReader.fields
U32 = struct.Struct("!I")


class HubStream:
    def __init__(self, index: int, url: str, clock_rate: int, key_stream: bool,
                 pair: tuple[socket.socket, socket.socket], join: JoinBuffer, tcp_groups: dict) -> None:
        self.index = index
        self.url = url  # origin control URL
        self.clock_rate = clock_rate
        self.key_stream = key_stream  # its key frames restart the join buffer
        self.rtp, self.rtcp = pair
        self.port = self.rtp.getsockname()[1]
        self.join = join
        self.tcp_groups = tcp_groups  # shared with the hub: layout -> TcpGroup
        self._buf = ctypes.create_string_buffer(MAX_DATAGRAM)
        self.view = memoryview(self._buf).cast("B")
        self.fanout = UdpBurstFanout(self.rtp)  # two or more UDP players, or a TCP origin's packets
        self.reader = SlotReader(self.rtp)
        self.sole_sender = SlotSender(self.rtp, self.reader)  # a UDP origin's packets to a sole UDP player
        self._origin_ip: str | None = None
        self._origin_rtp_port: int | None = None
        self._flush_scheduled = False
        self.rtcp_players: dict[tuple, object] = {}  # player RTCP address -> PlayerStream
        self.udp_rtcp_dests: list[tuple] = []
        # origin side
        self.origin_rtcp_addr: tuple | None = None
        self.origin_ssrc = -1
        # mapping (hub -> players)
        self.ssrc = 0
        # Set once self.ssrc is final (named by the origin's SETUP answer, else the first packet's,
        # or the stream closed): players' SETUP answers name it, so it never changes after.
        self.ssrc_fixed = asyncio.Event()
        self.seq_delta = 0
        self.ts_delta = 0
        self.last_seq = -1  # -1: nothing sent yet
        self.last_ts = 0
        self.last_time = 0.0
        self.remap = True
        self.markers_seen = False  # the origin marks frame ends (RTP marker bit)
        self.frame_open = False  # the last packet read was not a frame's last: more come at once
        # counters
        self.packets_in = self.bytes_in = self.packets_lost = 0
        self.packets_sent = self.bytes_sent = 0  # hub-wide: datagrams/bytes into the fan-out
        self.bad_packets = 0
        self.last_sr: bytes | None = None  # latest origin SR (rewritten): a joiner's timing reference
        self._loop = asyncio.get_running_loop()
        self._time = self._loop.time
        self._loop.add_reader(self.rtp.fileno(), self.read_rtp)  # (or the hub's CoalescedReads)
        self._loop.add_reader(self.rtcp.fileno(), self._on_rtcp_readable)
        self.closed = False

    # --- origin RTP -----------------------------------------------------------------------------
    @property
    def origin_ip(self) -> str | None:
        return self._origin_ip

    @origin_ip.setter
    def origin_ip(self, ip: str | None) -> None:
        self._origin_ip = ip
        self.reader.expect_source(ip, self._origin_rtp_port)

    @property
    def origin_rtp_port(self) -> int | None:
        """From the SETUP answer's server_port: media must come from it."""
        return self._origin_rtp_port

    @origin_rtp_port.setter
    def origin_rtp_port(self, port: int | None) -> None:
        self._origin_rtp_port = port
        self.reader.expect_source(self._origin_ip, port)

    def rtp_fileno(self) -> int:
        return self.rtp.fileno()

    def read_rtp(self) -> int:
        """Read, map and send on the origin datagrams waiting (one recvmmsg); how many were read."""
        reader = self.reader
        count = reader.read()
        if not count:
            return 0
        # Per wakeup, not per packet: every length (0: a stranger's, e.g. a player's NAT punch
        # from the origin's host, or truncated) and every header in one unpack each.
        lengths, heads = reader.lengths(count), reader.fields(RTP_HEAD, count)
        views, forward, packets_before = reader.slot_views, self._forward, self.packets_in
        sole = self.sole_sender if self.sole_sender.destination is not None else None
        fanout = self.fanout if sole is None and self.fanout.count else None
        sent = octets = 0
        try:
            for slot, n, first, seq, ts, ssrc in zip(range(count), lengths, heads[0::4], heads[1::4],
                                                      heads[2::4], heads[3::4]):
                if n <= 12 or first >> 6 != 2:
                    if n:
                        self.bad_packets += 1
                    continue
                if forward(views[slot], n, seq, ts, ssrc):
                    if sole is not None:
                        sole.add(slot, n)
                    elif fanout is not None:
                        fanout.add(views[slot], n)
                    else:
                        continue
                    sent += 1
                    octets += n
        finally:
            # the whole burst (player by player) before going back to the loop
            if sole is not None:
                sole.flush()
            elif fanout is not None:
                fanout.flush()
            self.packets_sent += sent
            self.bytes_sent += octets
            if self.packets_in != packets_before:
                self.last_time = self._time()  # once per wakeup: only a reconnect's gap reads it
                # RTP marker of the last packet read: a video frame's last packet has it (RFC 6184)
                if views[count - 1][1] & 0x80:
                    self.markers_seen, self.frame_open = True, False
                else:
                    self.frame_open = self.markers_seen
        return count

    def rtp_frame(self, payload: bytes) -> None:
        """An interleaved RTP frame from a TCP origin session (flushed once per event-loop pass)."""
        n = len(payload)
        if n <= MAX_DATAGRAM:
            view = self.view
            view[:n] = payload
            if self.forward_rtp(view, n) and self.fanout.count:
                self.packets_sent += 1
                self.bytes_sent += n
                self.fanout.add(view, n)
            self.last_time = self._time()
            if self.fanout.pending and not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self.closed:
            self.fanout.flush()

    def forward_rtp(self, view, n: int) -> bool:
        """Map the origin packet `view[:n]` in place, keep it for joiners, give it to TCP players;
        True when UDP players are to be sent it (the caller batches those)."""
        # A header-only packet carries no media; ffmpeg sends one to our port as a NAT punch at
        # SETUP, from the origin's address when both run on one host.
        if n <= 12 or view[0] >> 6 != 2:
            self.bad_packets += 1
            return False
        seq, ts, ssrc = SEQ_TS_SSRC.unpack_from(view, 2)
        return self._forward(view, n, seq, ts, ssrc)

    def _forward(self, view, n: int, seq: int, ts: int, ssrc: int) -> bool:
        """forward_rtp of a valid RTP packet whose header fields the caller read."""
        if self.remap or ssrc != self.origin_ssrc:
            self._new_origin_source(seq, ts, ssrc)
        elif self.last_seq >= 0:
            gap = (seq + self.seq_delta - self.last_seq) & 0xFFFF
            if gap != 1:
                if gap == 0 or gap >= 0x8000:  # duplicate or late: players would only be confused
                    return False
                self.packets_lost += gap - 1
        if self.seq_delta or self.ts_delta or ssrc != self.ssrc:  # else the origin's header is the players'
            seq = (seq + self.seq_delta) & 0xFFFF
            ts = (ts + self.ts_delta) & 0xFFFFFFFF
            SEQ_TS_SSRC.pack_into(view, 2, seq, ts, self.ssrc)
        self.last_seq, self.last_ts = seq, ts
        self.packets_in += 1
        self.bytes_in += n
        join = self.join
        if self.key_stream:
            join.on_video(view, n, ts)
        elif join.active:
            join.on_other(self.index, view, n)
        if self.tcp_groups:  # (no iterator object per packet for UDP-only splits)
            for group in self.tcp_groups.values():
                if group.members:
                    group.add(self.index, False, view[:n])
        return True

    def _new_origin_source(self, seq: int, ts: int, ssrc: int) -> None:
        """First packet of an origin session or source: continue the players' numbering."""
        if self.last_seq < 0:
            if not self.ssrc_fixed.is_set():
                self.ssrc = ssrc
                self.ssrc_fixed.set()
            # Sequence numbers and timestamps pass unchanged, so the origin's RTP-Info stays true;
            # the SSRC is the one the origin's SETUP named, as an SDP a=ssrc of the origin would.
            self.seq_delta = self.ts_delta = 0
        else:
            gap = max(1, int((self._time() - self.last_time) * self.clock_rate))
            self.seq_delta = (self.last_seq + 1 - seq) & 0xFFFF
            self.ts_delta = (self.last_ts + gap - ts) & 0xFFFFFFFF
            if self.key_stream:
                self.join.reset()  # a new encoder session: wait for its key frame
        self.origin_ssrc = ssrc
        self.remap = False

    def players_seq(self, origin_seq: int) -> int:
        """An origin sequence number (e.g. an EndOfStream's RTP-Info) as the players see it."""
        return (origin_seq + self.seq_delta) & 0xFFFF

    def origin_named_ssrc(self, ssrc: int) -> None:
        """The origin's SETUP answer named `ssrc`: players can be told it before the first packet.
        Ignored once the SSRC is fixed (a reconnect's new SSRC is rewritten to the first one)."""
        if not self.ssrc_fixed.is_set():
            self.ssrc = ssrc
            self.ssrc_fixed.set()

    # --- RTCP -----------------------------------------------------------------------------------
    def _on_rtcp_readable(self) -> None:
        sock, view = self.rtcp, self.view
        for n, addr in drain(sock, view):
            player = self.rtcp_players.get(addr)
            if player is not None:
                player.rtcp_from_player(bytes(view[:n]))
            elif addr[0] == self.origin_ip:
                self.forward_rtcp(n)

    def rtcp_frame(self, payload: bytes) -> None:
        n = len(payload)
        if n <= MAX_DATAGRAM:
            self.view[:n] = payload
            self.forward_rtcp(n)

    def forward_rtcp(self, n: int) -> None:
        """Rewrite an origin compound RTCP packet for players (SR SSRC/timestamp, SDES SSRC)."""
        view, pos = self.view, 0
        if self.last_seq < 0:
            return  # no mapping yet: an SR now would describe a stream the players have not seen
        while pos + 8 <= n:
            if view[pos] >> 6 != 2:
                return
            ptype = view[pos + 1]
            length = (((view[pos + 2] << 8) | view[pos + 3]) + 1) * 4
            if pos + length > n:
                return
            if ptype == RTCP_BYE:
                return
            if ptype == RTCP_SR and length >= 28:
                U32.pack_into(view, pos + 4, self.ssrc)
                rtp_time = U32.unpack_from(view, pos + 16)[0]
                U32.pack_into(view, pos + 16, (rtp_time + self.ts_delta) & 0xFFFFFFFF)
            elif ptype == RTCP_SDES and view[pos] & 0x1F and length >= 8:
                U32.pack_into(view, pos + 4, self.ssrc)
            pos += length
        data = bytes(view[:n])
        if view[1] == RTCP_SR:
            self.last_sr = data
        for dest in self.udp_rtcp_dests:
            try:
                self.rtcp.sendto(data, dest)
            except OSError:
                pass
        for group in self.tcp_groups.values():
            if group.members:
                group.add(self.index, True, data)

    def send_bye(self, dest: tuple | None) -> bytes:
        """An RTCP BYE for this stream's SSRC; sent to `dest` over UDP when given."""
        from proxyd.rtp.packet import build_bye

        data = build_bye((self.ssrc,), b"origin session ended")
        if dest is not None:
            try:
                self.rtcp.sendto(data, dest)
            except OSError:
                pass
        return data

    # --- players --------------------------------------------------------------------------------
    def set_udp_players(self, players: list) -> None:
        self.fanout.set_destinations(p.rtp_addr for p in players)
        self.sole_sender.set_destination(players[0].rtp_addr if len(players) == 1 else None)
        self.udp_rtcp_dests = [p.rtcp_addr for p in players]

    def close(self) -> None:
        if self.closed:
            return
        self.fanout.flush()
        self.sole_sender.flush()
        self.closed = True
        self.ssrc_fixed.set()  # wakes SETUPs waiting for the first packet (they see the hub ended)
        close_watched(self._loop, self.rtp, self.rtcp)
        self.reader.close()
