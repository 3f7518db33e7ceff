"""ReplaySession: one player session served from recorded media (a committed entry or a running fill).

Packets go out paced by their media time, with this session's own SSRC, continuous sequence
numbers and timestamps shifted by a random per-stream offset; RTP-Info and RTCP sender reports
match them. PLAY with Range seeks to the preceding key frame, PAUSE/resume keep the position, and
the end of the media is signalled with RTCP BYE. Offers downstream.py the ProxySession interface.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import secrets
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxyd.log import context, get_logger
from proxyd.net.udp import bind_port_pair
from proxyd.relay import StreamRelay, UdpPair, aggregate_counters
from proxyd.rtp.packet import build_bye, build_sr, rewrite_rtp_header
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import RangeHeader, TransportSpec, format_range, format_transport, parse_range
from proxyd.rtsp.uri import url_key
from proxyd.serving import Resumable, park_relays, unpark_relays
from proxyd.session import SessionTimers, run_due_timer_actions
from proxyd.wm.supported import EOSMSG, parse_supported
from proxyd.wmext.events import remote_close, remote_open
from proxyd.wmext.playlist import generation_mismatch, send_end_of_stream

if TYPE_CHECKING:
    from proxyd.cache.media import EntryMedia

log = get_logger("cache.replay")

BURST = 256  # packets sent per wakeup at most before yielding to the loop
SR_INTERVAL = 1.0  # seconds between RTCP sender reports per stream
NTP_EPOCH_OFFSET = 2208988800
TIMESTAMP = struct.Struct("!I")
MAX_PACKET = 65536


@dataclasses.dataclass
class ReplaySource:
    """What a replay needs from an entry or a fill; `release(bytes_served)` is called once at close."""

    media: EntryMedia
    controls: list[str]  # origin control URL per stream
    clock_rates: list[int]
    rtptime0: list[int | None]
    duration: float | None
    release: Callable[[int], None]
    served_from: str = "cache"
    content_url: str = ""  # origin URL of the presentation (the entry's URL)
    gen_id: int = 0  # X-Playlist-Gen-Id of the stored entry (0: none)


class ReplayStream:
    __slots__ = ("relay", "ssrc", "seq", "ts_offset", "rtptime0", "rate", "buf", "view", "octets")

    def __init__(self, relay: StreamRelay, rate: int, rtptime0: int | None) -> None:
        self.relay = relay
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts_offset = random.getrandbits(32)
        self.rtptime0 = rtptime0 or 0
        self.rate = rate
        self.buf = bytearray(MAX_PACKET)
        self.view = memoryview(self.buf)
        self.octets = 0

    def rtp_time(self, media_us: int) -> int:
        return (self.ts_offset + self.rtptime0 + media_us * self.rate // 1_000_000) & 0xFFFFFFFF

    def send(self, packet) -> None:
        n = len(packet)
        buf = self.buf
        buf[0:n] = packet
        ts = (TIMESTAMP.unpack_from(packet, 4)[0] + self.ts_offset) & 0xFFFFFFFF
        rewrite_rtp_header(buf, self.seq, ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        relay = self.relay
        c = relay.counters
        if relay.player_writer is not None:
            relay.player_writer.add(relay.player_channels[0], self.view[:n])
        elif relay.pair is not None and relay.player_rtp_addr is not None:
            try:
                relay.pair.rtp.sendto(self.view[:n], relay.player_rtp_addr)
            except OSError:
                c.packets_dropped += 1
                return
        else:
            return
        c.packets_out += 1
        c.bytes_out += n
        self.octets += n - 12

    def send_rtcp(self, data: bytes) -> None:
        self.relay.rtcp_from_origin(data)  # the relay's path toward the player (TCP or UDP)


class ReplaySession(Resumable):
    def __init__(self, server, player, target, source: ReplaySource) -> None:
        self.id = secrets.token_hex(8)
        self.server = server
        self.limits = server.config.limits
        self.player = player
        self.target = target
        self.source = source
        self.media = source.media
        self.state = "init"
        self.streams: list[StreamRelay] = []
        self.outs: list[ReplayStream | None] = [None] * len(source.controls)
        self.loop = asyncio.get_running_loop()
        self.pos = 0
        self.start_us = 0
        self.start_wall = 0.0
        self.next_sr = 0.0
        self.pump_handle: asyncio.Handle | None = None
        self.waiting = False
        self.timers: SessionTimers | None = None
        self.timer_handle: asyncio.TimerHandle | None = None
        self.ended = False
        self.started_reported = False
        self.play_url = target.to_player(target.origin_url)
        self.eos_message = False  # the player negotiated com.microsoft.wm.eosmsg: send EndOfStream

    @property
    def player_session_header(self) -> str:
        return f"{self.id};timeout={self.limits.session_timeout}"

    @property
    def aggregate_url(self) -> str:
        return self.source.content_url or self.target.origin_url

    def _stale_generation(self, request: Request) -> Response | None:
        """412 for a request naming another playlist generation than the stored entry's (3.2.5.1)."""
        resp = generation_mismatch(request, self.source.gen_id)
        if resp is not None and self.state != "init":
            resp = Response(resp.status, resp.reason, resp.headers.set("Session", self.player_session_header))
        return resp

    def touch(self) -> None:
        if self.timers is not None:
            self.timers.touch(self.loop.time())

    def _stream_index(self, origin_url: str) -> int | None:
        wanted = url_key(origin_url)
        for i, control in enumerate(self.source.controls):
            if url_key(control) == wanted:
                return i
        return None

    # --- requests ---
    async def setup(self, request: Request, origin_url: str, spec: TransportSpec, clock_rate: int) -> Response:
        if self.state == "playing":
            return Response(455, "Method Not Valid in This State", Headers())
        stale = self._stale_generation(request)
        if stale is not None:
            return stale
        if EOSMSG in parse_supported(request.headers.get("Supported")):
            self.eos_message = True
        index = self._stream_index(origin_url)
        if index is None:
            return Response(404, "Not Found", Headers())
        if self.outs[index] is not None:
            return Response(459, "Aggregate Operation Not Allowed", Headers())
        relay = StreamRelay(len(self.streams), self.source.clock_rates[index])
        if spec.is_tcp:
            channels = spec.interleaved or (2 * relay.index, 2 * relay.index + 1)
            if channels[1] == channels[0]:
                channels = (channels[0], channels[0] + 1)
            relay.player_channels = channels
            relay.player_writer = self.player.media_writer()
            self.player.register_channel(channels[1], relay)
        else:
            ip = self.player.peer_ip
            family_any = "::" if ":" in ip else "0.0.0.0"
            rtp, rtcp = bind_port_pair(family_any, self.limits.rtp_port_min, self.limits.rtp_port_max)
            relay.pair = UdpPair(rtp, rtcp, relay)
            relay.player_rtp_addr = (ip, spec.client_port[0])
            relay.player_rtcp_addr = (ip, spec.client_port[1] if spec.client_port[1] != spec.client_port[0]
                                      else spec.client_port[0] + 1)
        out = ReplayStream(relay, self.source.clock_rates[index], self.source.rtptime0[index])
        self.outs[index] = out
        self.streams.append(relay)
        self.state = "ready"
        if self.timers is None:
            self.timers = SessionTimers(self.loop.time(), keepalive_interval=1e9,
                                        idle_timeout=self.limits.session_timeout,
                                        counters_interval=self.limits.counters_interval)
            self._arm_timer()
        player_spec = dataclasses.replace(
            spec, destination=None, source=None, mode=None, extra=(), delivery="unicast",
            interleaved=relay.player_channels if spec.is_tcp else None,
            server_port=None if spec.is_tcp else (relay.pair.rtp_port, relay.pair.rtp_port + 1),
            ssrc=f"{out.ssrc:08X}")
        return Response(200, "OK", Headers([("Session", self.player_session_header),
                                            ("Transport", format_transport(player_spec))]))

    async def play(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        stale = self._stale_generation(request)
        if stale is not None:
            return stale
        value = request.headers.get("Range")
        position = None
        if value:
            try:
                parsed = parse_range(value)
            except RtspError:
                return Response(400, "Bad Request", Headers([("Session", self.player_session_header)]))
            if parsed.unit != "npt":
                return Response(457, "Invalid Range", Headers([("Session", self.player_session_header)]))
            if not parsed.start_now:
                position = parsed.start or 0.0
        duration = self.source.duration
        if position is not None and duration is not None and position > duration:
            return Response(457, "Invalid Range", Headers([("Session", self.player_session_header)]))
        self._stop_pump()
        if position is not None:
            self.pos = self.media.seek_index(int(position * 1_000_000))
        media = self.media
        self.start_us = media.times[self.pos] if self.pos < len(media) else int((duration or 0) * 1e6)
        self.start_wall = self.loop.time()
        self.next_sr = self.start_wall
        if request.uri != "*":
            self.play_url = request.uri
        infos = []
        for i, out in enumerate(self.outs):
            if out is not None:
                url = self.target.to_player(self.source.controls[i])
                infos.append(f"url={url};seq={out.seq};rtptime={out.rtp_time(self.start_us)}")
        shown = RangeHeader("npt", self.start_us / 1e6, duration)
        self.state = "playing"
        self.loop.call_soon(self._pump)
        if not self.started_reported:
            self.started_reported = True
            self.server.emit("session.started", self.started_data())
            if self.source.served_from == "cache":  # the origin does not see this session otherwise
                remote_open(self.server, self)
        return Response(200, "OK", Headers([("Session", self.player_session_header),
                                            ("Range", format_range(shown)), ("RTP-Info", ",".join(infos))]))

    async def pause(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        stale = self._stale_generation(request)
        if stale is not None:
            return stale
        self._stop_pump()
        self.state = "ready"
        return Response(200, "OK", Headers([("Session", self.player_session_header)]))

    async def teardown(self, request: Request) -> Response:
        stale = self._stale_generation(request)
        if stale is not None:
            return stale
        self.close("teardown")
        return Response(200, "OK", Headers())

    async def origin_request(self, request: Request, timeout: float | None = None) -> Response:
        """GET/SET_PARAMETER within the session: keepalives, answered here (no origin involved)."""
        stale = self._stale_generation(request)
        if stale is not None:
            return stale
        return Response(200, "OK", Headers([("Session", self.player_session_header)]))

    # --- player connection lost / resumed ([MS-RTSP] 3.2.7.2, see serving.Resumable) ---
    def _park(self) -> None:
        self._stop_pump()  # the position stays: PLAY without Range continues from it
        self.parked = park_relays(self.streams)

    def _unpark(self, player) -> None:
        unpark_relays(self.streams, self.parked, player)

    # --- pacing ---
    def _stop_pump(self) -> None:
        if self.pump_handle is not None:
            self.pump_handle.cancel()
            self.pump_handle = None
        if self.waiting:
            self.media.forget_waiter(self._wake)
            self.waiting = False

    def _wake(self) -> None:
        self.waiting = False
        if not self.ended and self.state == "playing":
            self._pump()

    def _pump(self) -> None:
        self.pump_handle = None
        if self.ended or self.state != "playing":
            return
        now = self.loop.time()
        if now >= self.next_sr:
            self._send_reports(now)
        media, outs = self.media, self.outs
        times, streams, packets = media.times, media.streams, media.packets
        due = self.start_us + int((now - self.start_wall) * 1_000_000)
        pos, n, sent = self.pos, len(packets), 0
        while pos < n:
            t = times[pos]
            if t > due:
                at = min(self.start_wall + (t - self.start_us) / 1e6, self.next_sr)
                self.pump_handle = self.loop.call_at(at, self._pump)
                break
            out = outs[streams[pos]]
            if out is not None:
                out.send(packets[pos])
            pos += 1
            sent += 1
            if sent >= BURST:
                self.pump_handle = self.loop.call_soon(self._pump)
                break
        self.pos = pos
        if pos >= n:
            if media.finished:
                self._end_of_media()
            else:
                self.waiting = True
                media.when_grown(self._wake)

    def _send_reports(self, now: float) -> None:
        self.next_sr = now + SR_INTERVAL
        for out in self.outs:
            if out is not None:
                out.send_rtcp(self._sender_report(out, now))

    def _sender_report(self, out: ReplayStream, now: float) -> bytes:
        """SR mapping the wall clock (NTP) to this stream's RTP time at the current media position;
        the same clock for every stream lets players synchronise audio and video."""
        media_us = self.start_us + int((now - self.start_wall) * 1_000_000)
        wall = time.time() + NTP_EPOCH_OFFSET
        seconds = int(wall)
        fraction = int((wall - seconds) * (1 << 32)) & 0xFFFFFFFF
        return build_sr(out.ssrc, seconds, fraction, out.rtp_time(media_us), out.relay.counters.packets_out,
                        out.octets & 0xFFFFFFFF)

    def _end_of_media(self) -> None:
        # SR + BYE compound: RTCP compounds start with a report, and a lone 8-byte BYE is below
        # some players' minimum packet size (ffmpeg drops RTCP shorter than 12 bytes).
        now = self.loop.time()
        self.next_sr = now
        for out in self.outs:
            if out is not None:
                out.send_rtcp(self._sender_report(out, now) + build_bye((out.ssrc,)))
        if self.eos_message:  # [MS-RTSP] 3.2.4.1: RTP-Info seq = the next sequence number per stream
            streams = [(self.target.to_player(self.source.controls[i]), out.seq)
                       for i, out in enumerate(self.outs) if out is not None]
            # After the joined media write of this loop iteration (queued first), never before it.
            self.loop.call_soon(lambda: send_end_of_stream(self, streams, playlist_gen_id=self.source.gen_id))
        log.debug("%s end of media", context(self.player.peer, None, self.id))

    # --- timers (idle reaping, counters) ---
    def _arm_timer(self) -> None:
        if self.ended or self.timers is None:
            return
        if self.timer_handle is not None:
            self.timer_handle.cancel()
        self.timer_handle = self.loop.call_at(self.timers.deadline(), self._on_timer)

    def _on_timer(self) -> None:
        self.timer_handle = None
        if self.ended:
            return
        tcp_player = any(s.player_writer is not None for s in self.streams) and self.player.is_open
        if run_due_timer_actions(self, tcp_player_open=tcp_player):
            self._arm_timer()

    # --- reports and teardown ---
    def started_data(self) -> dict:
        return {"session_id": self.id, "url": url_key(self.play_url),
                "origin_url": url_key(self.target.to_origin(self.play_url)), "player_addr": self.player.peer,
                "user_agent": self.player.user_agent, "transports": [s.player_transport for s in self.streams],
                "served_from": self.source.served_from}

    def counters_data(self) -> dict:
        return {"session_id": self.id, **aggregate_counters(self.streams)}

    def close(self, reason: str, detail: str = "", *, origin_teardown: bool = True) -> None:
        if self.ended:
            return
        self.ended = True
        self._stop_pump()
        if self.timer_handle is not None:
            self.timer_handle.cancel()
            self.timer_handle = None
        log.info("%s cache session ended: %s %s", context(self.player.peer, None, self.id), reason, detail)
        for stream in self.streams:
            stream.close()
        self.player.forget_session(self)
        self.server.forget_session(self)
        if self.started_reported:
            self.server.emit("session.ended", {**self.counters_data(), "end_reason": reason})
        remote_close(self.server, self)
        self.source.release(aggregate_counters(self.streams)["bytes_out"])
