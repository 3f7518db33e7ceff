"""SplitSession: one player's session on a shared live split (a PlayerSession, see
proxyd.serving.contracts). PAUSE and TEARDOWN touch only this player; the origin session belongs to
the hub."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from typing import TYPE_CHECKING

from proxyd.log import get_logger
from proxyd.net.udp import peer_address
from proxyd.routing import Target
from proxyd.rtp.rtcp import first_report_block
from proxyd.rtp.stats import StreamStats
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import RtpInfoEntry, TransportSpec, format_rtp_info, format_transport
from proxyd.rtsp.uri import url_key
from proxyd.serving.contracts import Player, ServerContext
from proxyd.serving.session_base import NO_KEEPALIVE, SessionBase
from proxyd.split.fanout import FRAME_HEADER, TcpMember
from proxyd.wmext.events import remote_close, remote_open
from proxyd.wmext.playlist import generation_mismatch, relay_to_player

if TYPE_CHECKING:
    from proxyd.split.hub import Hub
    from proxyd.split.stream import HubStream

log = get_logger("split")
SEQ_TS = struct.Struct("!HI")


class PlayerStream:
    """One stream of one player: where its packets go and what its receiver reports say."""

    def __init__(self, hub_stream: HubStream, url: str) -> None:
        self.hub_stream = hub_stream
        self.url = url  # player-facing control URL (for RTP-Info)
        self.rtp_addr: tuple | None = None
        self.rtcp_addr: tuple | None = None
        self.channels: tuple[int, int] | None = None
        self.playing = False
        self.player_seen = False
        self.stats = StreamStats()  # remote_* fields from the player's receiver reports
        self.packets_out = self.bytes_out = 0  # accumulated over finished play periods
        self._mark = (0, 0)

    @property
    def player_transport(self) -> str:
        return "tcp" if self.channels is not None else "udp"

    def start(self) -> None:
        self.playing = True
        self._mark = (self.hub_stream.packets_in, self.hub_stream.bytes_in)

    def stop(self) -> None:
        if self.playing:
            self.packets_out, self.bytes_out = self.totals()
            self.playing = False

    def totals(self) -> tuple[int, int]:
        if not self.playing:
            return self.packets_out, self.bytes_out
        hs = self.hub_stream
        return (self.packets_out + hs.packets_in - self._mark[0],
                self.bytes_out + hs.bytes_in - self._mark[1])

    def rtcp_from_player(self, data) -> None:
        self.player_seen = True
        block = first_report_block(data)
        if block is not None:
            self.stats.on_report_block(block)


class SplitSession(SessionBase):
    """The hub keeps the origin session alive, not each player (no keepalive of its own)."""

    kind = "split session"

    def __init__(self, context: ServerContext, player: Player, target: Target, hub: Hub) -> None:
        super().__init__(context, player, target)
        self.hub = hub
        self.streams: list[PlayerStream] = []
        self.member: TcpMember | None = None
        self.group = None
        self.played_once = False
        self.hub_ended = False  # the hub gave up on the origin (end_from_origin)
        self.deselected = (0, 0)  # packets, bytes sent on streams this player deselected

    @property
    def presentation_url(self) -> str:
        return self.hub.aggregate_url

    # --- SETUP ----------------------------------------------------------------------------------
    async def setup(self, request: Request, origin_url: str, spec: TransportSpec,
                    clock_rate: int) -> Response:
        if self.state == "playing":
            return Response(455, "Method Not Valid in This State", Headers())
        stale = generation_mismatch(request, self.hub.playlist.gen_id)
        if stale is not None:
            return stale
        wait = self.limits.origin_connect_timeout + self.limits.origin_response_timeout
        self.hub.want_setup()
        if not await self.hub.wait_set_up(wait):
            return Response(502 if self.hub.state == "ended" else 504,
                            "Bad Gateway" if self.hub.state == "ended" else "Gateway Timeout", Headers())
        hub_stream = self.hub.stream_for(origin_url)
        if hub_stream is None:
            return Response(404, "Not Found", Headers())
        if any(ps.hub_stream is hub_stream for ps in self.streams):
            return Response(459, "Aggregate Operation Not Allowed", Headers())
        ps = PlayerStream(hub_stream, request.uri)
        if spec.is_tcp:
            channels = spec.interleaved or (2 * hub_stream.index, 2 * hub_stream.index + 1)
            ps.channels = (channels[0], channels[1] if channels[1] != channels[0] else channels[0] + 1)
            self.player.register_channel(ps.channels[1], ps)
        else:
            ip, (low, high) = peer_address(hub_stream.rtp.family, self.player.peer_ip), spec.client_port
            ps.rtp_addr, ps.rtcp_addr = (ip, low), (ip, high if high != low else low + 1)
            hub_stream.rtcp_players[ps.rtcp_addr] = ps
        self.streams.append(ps)
        self.hub.attach(self)
        self.state = "ready"
        self.start_timers(NO_KEEPALIVE)
        # [MS-RTSP] players over UDP tell streams on one port pair apart by the SSRC SETUP named:
        # when the origin named none, the stream's first packet fixes it (bounded wait; without
        # it the answer names none, as an origin may).
        fixed = hub_stream.ssrc_fixed
        if not fixed.is_set():
            try:
                async with asyncio.timeout(self.limits.split_keyframe_wait):
                    await fixed.wait()
            except TimeoutError:
                log.info("%s split %s: no packet in %.1fs, SETUP answered without ssrc", self.log_ctx,
                         hub_stream.url, self.limits.split_keyframe_wait)
            if self.ended or self.hub.state == "ended":
                return Response(502, "Bad Gateway", Headers())
        player_spec = dataclasses.replace(
            spec, destination=None, source=None, mode=None, extra=(), delivery="unicast",
            interleaved=ps.channels,
            server_port=None if spec.is_tcp else (hub_stream.port, hub_stream.port + 1),
            ssrc=f"{hub_stream.ssrc:08X}" if fixed.is_set() else None)
        return Response(200, "OK", Headers([("Session", self.player_session_header),
                                            ("Transport", format_transport(player_spec)), *self._gen_id()]))

    def _gen_id(self) -> list[tuple[str, str]]:
        """[MS-RTSP] 3.2.5.2: answers name the current playlist entry (the origin's ids)."""
        gen_id = self.hub.playlist.gen_id
        return [("X-Playlist-Gen-Id", str(gen_id))] if gen_id else []

    # --- PLAY / PAUSE / TEARDOWN ----------------------------------------------------------------
    async def play(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        if self.hub.state == "ended":
            return Response(503, "Service Unavailable", Headers())
        if self.hub.origin_finished:  # [MS-RTSP] 3.1.5.13: the broadcast ended, no entry follows
            log.info("%s split %s: PLAY after the broadcast's final EndOfStream answered 455",
                     self.log_ctx, self.hub.origin_url)
            return Response(455, "Method Not Valid in This State", Headers())
        playlist = self.hub.playlist
        stale = generation_mismatch(request, playlist.gen_id, playlist.previous_gen_id)
        if stale is not None:
            return stale
        headers = [("Session", self.player_session_header), ("Range", "npt=now-"), *self._gen_id()]
        self.hub.want_play()  # the first player's PLAY is the origin session's PLAY (4.6.2 step 2)
        if not await self.hub.wait_ready(self.limits.origin_connect_timeout + self.limits.origin_response_timeout):
            return Response(502 if self.hub.state == "ended" else 504,
                            "Bad Gateway" if self.hub.state == "ended" else "Gateway Timeout", Headers())
        if self.state == "ready" and not self.played_once:
            await self.hub.wait_key_frame(self.limits.split_keyframe_wait)
            if self.ended or self.state != "ready":
                return Response(455, "Method Not Valid in This State", Headers())
        if self.state == "ready":
            entries = self._join()
            if entries:
                headers.append(("RTP-Info", format_rtp_info(entries)))
        self.state = "playing"
        if not self.started_reported:
            self.report_started()
            remote_open(self.context, self)  # [MS-WMSP] 3.2.5.11: only when the origin subscribed
        return Response(200, "OK", Headers(headers))

    def _join(self) -> list[RtpInfoEntry]:
        """Start the fan-out to this player; a first PLAY starts with the join buffer (key frame)."""
        entries, replays = [], []
        for ps in self.streams:
            hs = ps.hub_stream
            replay = self.hub.join.snapshot(hs.index) if not self.played_once else []
            replays.append(replay)
            if replay:
                seq, ts = SEQ_TS.unpack_from(replay[0], 2)
                entries.append(RtpInfoEntry(ps.url, seq, ts))
            elif hs.last_seq >= 0:
                entries.append(RtpInfoEntry(ps.url, (hs.last_seq + 1) & 0xFFFF))
        self.played_once = True
        log.info("%s joins split %s: replay %s packets", self.log_ctx, self.hub.origin_url,
                 [len(r) for r in replays])
        tcp = [ps for ps in self.streams if ps.channels is not None]
        if tcp:
            layout = tuple(next((ps.channels for ps in tcp if ps.hub_stream is hs), None)
                           for hs in self.hub.streams)
            self.group = self.hub.tcp_group(layout)
            self.group.flush()  # what is pending now is in the replay already
            self.member = TcpMember(self.player.transport, self._overflow)
            for ps, replay in zip(self.streams, replays, strict=True):
                sr = ps.hub_stream.last_sr
                if ps.channels is not None and replay and sr is not None:
                    self.member.hold += FRAME_HEADER.pack(b"$", ps.channels[1], len(sr)) + sr
            for ps, replay in zip(self.streams, replays, strict=True):
                if ps.channels is not None and replay:
                    self.member.hold += self.group.frames(ps.hub_stream.index, replay)
            self.group.members.append(self.member)
            self.loop.call_soon(self.member.release)  # after the PLAY response is written
        for ps, replay in zip(self.streams, replays, strict=True):
            # The origin's latest SR first: the player times the replayed (older) packets with it
            # rather than jumping when the next SR arrives.
            if ps.rtcp_addr is not None and replay and ps.hub_stream.last_sr is not None:
                try:
                    ps.hub_stream.rtcp.sendto(ps.hub_stream.last_sr, ps.rtcp_addr)
                except OSError:
                    pass
        for ps, replay in zip(self.streams, replays, strict=True):
            if ps.rtp_addr is not None:
                sock = ps.hub_stream.rtp
                for packet in replay:
                    try:
                        sock.sendto(packet, ps.rtp_addr)
                    except OSError:
                        break
            ps.packets_out += len(replay)
            ps.bytes_out += sum(len(p) for p in replay)
            ps.start()
            self.hub.refresh_fanout(ps.hub_stream)
        return entries

    def _leave(self) -> None:
        for ps in self.streams:
            was = ps.playing
            ps.stop()
            if was:
                self.hub.refresh_fanout(ps.hub_stream)
        if self.member is not None:
            self.group.flush()  # what was counted for this player is sent before it leaves
            self.member.closed = True
            if self.member in self.group.members:
                self.group.members.remove(self.member)
            self.member = None

    def _overflow(self, why: str) -> None:
        log.warning("%s split player disconnected: %s", self.log_ctx, why)
        self.player.close_connection(why)

    async def pause(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        self._leave()
        self.state = "ready"
        return Response(200, "OK", Headers([("Session", self.player_session_header)]))

    async def teardown(self, request: Request) -> Response:
        self.close("teardown")
        return Response(200, "OK", Headers())

    # --- SelectStream deselect ([MS-RTSP] 2.2.7.10.2, 4.4.5) -----------------------------------
    def addressed_stream(self, request: Request) -> PlayerStream | None:
        """The stream this request's URL names, or None for the aggregate URL."""
        wanted = url_key(request.uri) if request.uri != "*" else None
        return next((ps for ps in self.streams if url_key(ps.url) == wanted), None)

    async def deselect(self, request: Request) -> Response:
        """A TEARDOWN of one stream URL: that stream leaves this player's fan-out, answered here (the
        hub selects the origin's streams once for all players). At a playlist entry change the
        player deselects the old entry's streams so; with none left the session is ready for the
        new entry's SETUPs and PLAY."""
        ps = self.addressed_stream(request)
        if ps is not None:
            was = ps.playing
            ps.stop()
            packets, octets = self.deselected
            self.deselected = (packets + ps.packets_out, octets + ps.bytes_out)
            self.streams.remove(ps)
            if was:
                self.hub.refresh_fanout(ps.hub_stream)
            if ps.rtcp_addr is not None:
                ps.hub_stream.rtcp_players.pop(ps.rtcp_addr, None)
            self.player.unregister_stream(ps)
            if not self.streams:
                self._leave()  # out of its TCP group too
                self.state = "ready"
        return Response(200, "OK", Headers([("Session", self.player_session_header), *self._gen_id()]))

    async def origin_request(self, request: Request, timeout: float | None = None) -> Response:
        """GET/SET_PARAMETER in a split session: keepalives and player logs are answered here."""
        return Response(200, "OK", Headers([("Session", self.player_session_header)]))

    def relay_origin_request(self, request: Request) -> None:
        """The origin's EndOfStream/Announce as this player's own: its session id (header and EndOfStream
        body), URLs and RTP-Info at the proxy (the hub gave its seq in the players' numbering). After
        an Announce the next PLAY in READY joins afresh: from the new entry's first key frame. The
        final EndOfStream (no entry follows) leaves the player READY, out of the fan-out."""
        if request.method == "ANNOUNCE":
            self.played_once = False
        if self.hub.origin_finished and self.state == "playing":  # the final EndOfStream: READY
            self._leave()  # (3.1.5.13 step 4); what the fan-out holds for it is written first
            self.state = "ready"
        self.player.send_server_request(relay_to_player(self, request))

    # --- player connection lost / resumed ([MS-RTSP] 3.2.7.2, see serving.Resumable) -------------
    def park(self) -> None:
        self._leave()  # still a member of the hub (it lingers for no one else), not fanned out to

    def unpark(self, player: Player) -> None:
        for ps in self.streams:
            if ps.channels is not None:
                player.register_channel(ps.channels[1], ps)  # PLAY joins the new connection's group

    def tcp_streams(self) -> bool:
        return any(ps.channels is not None for ps in self.streams)

    # --- reports and end ------------------------------------------------------------------------
    def started_data(self) -> dict:
        return {"session_id": self.id, "url": url_key(self.target.to_player(self.hub.aggregate_url)),
                "origin_url": url_key(self.hub.aggregate_url), "player_addr": self.player.peer,
                "user_agent": self.player.user_agent,
                "transports": [ps.player_transport for ps in self.streams], "served_from": "split"}

    def counters_data(self) -> dict:
        packets, octets = self.deselected
        lost = 0
        jitter_ms = 0.0
        for ps in self.streams:
            p, b = ps.totals()
            packets, octets = packets + p, octets + b
            lost += max(0, ps.stats.remote_cumulative_lost)
            jitter_ms = max(jitter_ms, ps.stats.remote_jitter * 1000.0 / (ps.hub_stream.clock_rate or 90000))
        dropped = self.member.dropped if self.member is not None else 0
        return {"session_id": self.id, "bytes_out": octets, "packets_out": max(0, packets - dropped),
                "bytes_in": octets, "packets_in": packets, "packets_lost": lost,
                "jitter_ms": round(jitter_ms, 3)}

    def end_from_origin(self, reason: str, detail: str) -> None:
        """The hub gave up on the origin: RTCP BYE on every stream, then end the session."""
        for ps in self.streams:
            bye = ps.hub_stream.send_bye(ps.rtcp_addr)
            if ps.channels is not None and self.player.is_open:
                if self.member is not None:
                    self.member.release()
                self.player.transport.write(FRAME_HEADER.pack(b"$", ps.channels[1], len(bye)) + bye)
        self.hub_ended = True
        self.close("origin_error", detail)

    def release(self, reason: str, origin_teardown: bool) -> None:
        if not self.hub_ended:
            self._leave()
        for ps in self.streams:
            if ps.rtcp_addr is not None:
                ps.hub_stream.rtcp_players.pop(ps.rtcp_addr, None)
        if not self.hub_ended:
            self.hub.detach(self, linger=reason != "shutdown")

    def after_close(self) -> None:
        remote_close(self.context, self)
