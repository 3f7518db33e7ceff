"""ReplaySession: one player session served from recorded media (a committed entry or a running fill).

Packets go out paced by their media time, with this session's own SSRC, continuous sequence
numbers and timestamps shifted by a random per-stream offset; RTP-Info and RTCP sender reports
match them. PLAY with Range seeks to the preceding key frame, PAUSE/resume keep the position, and
the end of the media is signalled with RTCP BYE. A PlayerSession (proxyd.serving.contracts).

Recorded media can wait, so a TCP player whose connection buffer is past --write-high-water is not
dropped packets as a live player is: its replay stops pacing until the buffer drains, then goes on
from where it stopped (its media clock shifted by the wait); other replays are not held up.

A server-side playlist is played entry by entry ([MS-RTSP] 3.2.4.1-2, 3.2.5.8): at the end of an
entry an EndOfStream with End-Of-Playlist-Entry, then the Announce of the next entry (its SDP,
X-Playlist-Gen-Id and Cache-Control); the player deselects the old streams (TEARDOWN of a stream
URL), selects the new ones and plays. X-Playlist pl-offset skips, X-Playlist-Seek-Id naming the
previous entry resends the EndOfStream. The last EndOfStream leaves the session READY.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from proxyd.cache.playlist import Playlist
from proxyd.log import get_logger
from proxyd.cache.pacer import pacer_for
from proxyd.cache.replay_out import ReplayRelay, ReplayStream
from proxyd.cache.udp_ports import replay_ports
from proxyd.origin.stream_relay import InterleavedWriter, StreamRelay, aggregate_counters
from proxyd.rtp.packet import build_bye, build_sr
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import RangeHeader, TransportSpec, format_range, format_transport, parse_range
from proxyd.rtsp.uri import url_key
from proxyd.serving.contracts import Player, ServerContext
from proxyd.serving.resumable import park_relays, unpark_relays
from proxyd.serving.session_base import SessionBase
from proxyd.wm.supported import EOSMSG, parse_supported
from proxyd.wmext.events import remote_close, remote_open
from proxyd.wm.cache_control import parse_cache_control, reemit_for_hit
from proxyd.routing import rewrite_sdp_controls
from proxyd.wmext.playlist import generation_mismatch, parse_gen_id, send_end_of_stream

if TYPE_CHECKING:
    from proxyd.cache.media import EntryMedia

log = get_logger("cache.replay")

BURST = 256  # packets sent per wakeup at most before yielding to the loop
SR_INTERVAL = 1.0  # seconds between RTCP sender reports per stream
NTP_EPOCH_OFFSET = 2208988800


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
    # What the Announce of this entry carries when it follows another playlist entry:
    sdp: str = ""
    cache_control: str | None = None
    supported: str | None = None
    age: float = 0.0  # seconds since the origin answered (for the Announce's Cache-Control)
    playlist: Playlist | None = None  # every entry of a server-side playlist, this one included
    on_play: Callable[[], Awaitable[None]] | None = None  # a fill's: its upstream PLAY, before ours


class ReplaySession(SessionBase):
    kind = "cache session"

    def __init__(self, context: ServerContext, player: Player, target, source: ReplaySource) -> None:
        super().__init__(context, player, target)
        self.source = source
        self.media = source.media
        self.streams: list[StreamRelay] = []
        self.outs: list[ReplayStream | None] = [None] * len(source.controls)
        self.pos = 0
        self.start_us = 0
        self.start_wall = 0.0
        self.next_sr = 0.0
        self.pace_slot: int | None = None  # the pacer's tick this replay waits for
        self.window = 0.0  # seconds of media sent ahead per wakeup (_flush_window)
        self.grid = 0.0  # a TCP replay's wake-ups fall on multiples of this (_schedule); 0: any tick
        self.pacer = pacer_for(self.loop, self.limits.cache_pace_tick)
        self.waiting = False
        self.stalled_on: InterleavedWriter | None = None  # the TCP writer it waits on (a slow player)
        self.stalled_at = 0.0
        self.stalls = 0
        self.play_url = target.to_player(target.origin_url)
        self.eos_message = False  # the player negotiated com.microsoft.wm.eosmsg: send EndOfStream
        self.release_source = source.release  # once, for the whole playlist
        self.playlist = source.playlist
        self.entry_index = 0
        self.previous_gen_id = 0
        self.previous_controls: list[str] = []
        self.previous_outs: list[ReplayStream | None] = []
        self.pause_in_ready = False  # just after an entry boundary EndOfStream (3.2.5.11)

    @property
    def presentation_url(self) -> str:
        return self.source.content_url or self.target.origin_url

    def _stale_generation(self, request: Request) -> Response | None:
        """412 for a request naming another playlist generation than the stored entry's (3.2.5.1)."""
        resp = generation_mismatch(request, self.source.gen_id, self.previous_gen_id)
        if resp is not None and self.state != "init":
            resp = Response(resp.status, resp.reason, resp.headers.set("Session", self.player_session_header))
        return resp

    def _stream_index(self, origin_url: str) -> int | None:
        wanted = url_key(origin_url)
        for i, control in enumerate(self.source.controls):
            if url_key(control) == wanted:
                return i
        return None

    def addressed_stream(self, request: Request) -> object | None:
        """A control URL of the current or the previous entry (None for the aggregate URL)."""
        if request.uri == "*":
            return None
        wanted = url_key(self.target.to_origin(request.uri))
        if wanted == url_key(self.presentation_url):
            return None
        for controls, outs in ((self.source.controls, self.outs), (self.previous_controls, self.previous_outs)):
            for i, control in enumerate(controls):
                if url_key(control) == wanted:
                    return outs[i] if outs[i] is not None else control
        return None

    async def deselect(self, request: Request) -> Response:
        """TEARDOWN of a stream URL removes that stream only (SelectStream, 2.2.7.10.2); at a playlist
        entry change the player deselects the old entry's streams this way (4.4.5)."""
        stale = self._stale_generation(request)
        if stale is not None:
            return stale
        stream = self.addressed_stream(request)
        for outs in (self.outs, self.previous_outs):
            for i, out in enumerate(outs):
                if out is not None and out is stream:
                    outs[i] = None
                    self.player.unregister_stream(out.relay)
                    out.relay.close()
        if all(out is None for out in self.outs) and self.state == "playing":
            self._stop_pump()
            self.state = "ready"
        return Response(200, "OK", Headers([("Session", self.player_session_header)]))

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
        relay = ReplayRelay(len(self.streams), self.source.clock_rates[index])
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
            # The k-th stream set up shares slot k's port with every replay (one sendmmsg per tick).
            port = replay_ports(self.loop).acquire(family_any, relay.index, self.limits.rtp_port_min,
                                                   self.limits.rtp_port_max)
            low, high = spec.client_port
            relay.use_port(port, (ip, low), (ip, high if high != low else low + 1))
        out = ReplayStream(relay, self.source.clock_rates[index], self.source.rtptime0[index])
        self.outs[index] = out
        self.streams.append(relay)
        self.state = "ready"
        self.start_timers()
        player_spec = dataclasses.replace(
            spec, destination=None, source=None, mode=None, extra=(), delivery="unicast",
            interleaved=relay.player_channels if spec.is_tcp else None,
            server_port=None if spec.is_tcp else (relay.port.rtp_port, relay.port.rtp_port + 1),
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
        skip = self._playlist_skip(request)
        if skip is not None:
            return skip
        duration = self.source.duration
        if position is not None and duration is not None and position > duration:
            return Response(457, "Invalid Range", Headers([("Session", self.player_session_header)]))
        if self.source.on_play is not None:
            await self.source.on_play()  # OriginError: the player gets the origin's failure
        self.pause_in_ready = False
        self._stop_pump()
        await self._await_anchors()
        if self.state not in ("ready", "playing"):  # torn down meanwhile
            return Response(455, "Method Not Valid in This State", Headers())
        if position is not None:
            self.pos = self.media.seek_index(int(position * 1_000_000))
        media = self.media
        if self.pos < len(media):
            self.start_us = media.times[self.pos]
        elif media.finished:
            self.start_us = int((duration or 0) * 1e6)
        else:  # a growing fill with nothing recorded there yet: its next packets start at the position
            self.start_us = int(position * 1e6) if position is not None else media.times[-1] if len(media) else 0
        self.start_wall = self.loop.time()
        self.next_sr = self.start_wall
        self.window = self._flush_window()
        self.grid = self.window if self._has_tcp_player() else 0.0
        if request.uri != "*":
            self.play_url = request.uri
        infos = []
        for i, out in enumerate(self.outs):
            if out is not None:
                url = self.target.to_player(self.source.controls[i])
                infos.append(f"url={url};seq={out.seq};rtptime={out.rtp_time(self.start_us)}")
        shown = RangeHeader("npt", self.start_us / 1e6, duration)
        self.state = "playing"
        self._schedule(self.start_wall)
        if not self.started_reported:
            self.report_started()
            if self.source.served_from == "cache":  # the origin does not see this session otherwise
                remote_open(self.context, self)
        return Response(200, "OK", Headers([("Session", self.player_session_header),
                                            ("Range", format_range(shown)), ("RTP-Info", ",".join(infos))]))

    async def _await_anchors(self) -> None:
        """A PLAY just after a fill started: each stream's timestamps are anchored when the origin
        answers PLAY (RTP-Info) or sends its first packet. RTP-Info and sender reports need the
        anchor (a chained proxy filling from this replay takes its timeline from RTP-Info), so wait
        for it, at most --origin-response-timeout."""
        deadline = self.loop.time() + self.limits.origin_response_timeout
        while any(out is not None and self.source.rtptime0[i] is None for i, out in enumerate(self.outs)) \
                and not self.media.finished and self.loop.time() < deadline:
            grown = self.loop.create_future()

            def wake(grown=grown) -> None:
                if not grown.done():
                    grown.set_result(None)

            self.media.when_grown(wake)
            try:
                async with asyncio.timeout(deadline - self.loop.time()):
                    await grown
            except TimeoutError:
                pass
            finally:
                self.media.forget_waiter(wake)
        for i, out in enumerate(self.outs):
            if out is not None and self.source.rtptime0[i] is not None:
                out.rtptime0 = self.source.rtptime0[i]

    def _playlist_skip(self, request: Request) -> Response | None:
        """X-Playlist pl-offset (skip to the next/previous entry) and X-Playlist-Seek-Id naming the
        previous entry (the player missed the last Announce), [MS-RTSP] 3.2.5.8 steps 8-10."""
        session = [("Session", self.player_session_header)]
        offset = (request.headers.get("X-Playlist") or "").replace(" ", "").lower()
        if offset:
            playlist = self.playlist
            step = {"pl-offset=1": 1, "pl-offset=-1": -1}.get(offset)
            target = self.entry_index + (step or 0)
            if step is None or playlist is None or not 0 <= target < len(playlist.entries):
                return Response(400, "Bad Request", Headers(session))
            self._stop_pump()
            self.state = "ready"
            self.loop.call_soon(self._entry_boundary, target)
            return Response(200, "OK", Headers([*session, ("X-Playlist-Change-Notice", "true")]))
        seek = parse_gen_id(request.headers.get("X-Playlist-Seek-Id"))
        if seek and seek == self.previous_gen_id and self.entry_index > 0:
            self._stop_pump()
            self._switch_to(self.entry_index - 1)  # current again, at its end: resend what follows
            self.previous_gen_id = 0
            self.pos = len(self.media)
            self.loop.call_soon(self._entry_boundary, self.entry_index + 1)
            return Response(200, "OK", Headers([*session, ("X-Playlist-Change-Notice", "true")]))
        return None

    async def pause(self, request: Request) -> Response:
        if self.state not in ("ready", "playing") or (self.state == "ready" and not self.pause_in_ready):
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
    def park(self) -> None:
        self._stop_pump()  # the position stays: PLAY without Range continues from it
        self.parked = park_relays(self.streams)

    def unpark(self, player: Player) -> None:
        unpark_relays(self.streams, self.parked, player)

    # --- pacing (proxyd.cache.pacer: one loop timer for every replay) ---
    def _stop_pump(self) -> None:
        self.pacer.cancel(self)
        if self.waiting:
            self.media.forget_waiter(self._wake)
            self.waiting = False
        if self.stalled_on is not None:  # PLAY sets the media clock afresh
            self.stalled_on.forget_drained(self._drained)
            self.stalled_on = None

    def _has_tcp_player(self) -> bool:
        return any(out is not None and out.relay.player_writer is not None for out in self.outs)

    def _flush_window(self) -> float:
        """Seconds of media sent ahead per wakeup: fewer wakeups and system calls per player (audio
        rides with the video frame's wakeup), never late."""
        tcp = self._has_tcp_player()
        return self.limits.cache_tcp_flush_interval if tcp else self.limits.cache_udp_flush_interval

    def _schedule(self, when: float) -> None:
        """Ask the pacer for a wake-up at `when`. A TCP replay's is moved back onto the grid of its
        flush interval, so every TCP replay of the process wakes, and writes, in the same loop pass:
        writes to many players back to back cost far less than the same writes spread over the ticks
        (each of those wakes an idle reader CPU; measured in docs/performance.md, fourth pass)."""
        grid = self.grid
        if grid:  # a grid point must not round into the step (or tick) before it
            when = int(when / grid + 1e-6) * grid + self.pacer.tick / 2
        self.pacer.schedule(self, when)

    def _congested_writer(self) -> InterleavedWriter | None:
        for out in self.outs:
            if out is not None:
                writer = out.relay.player_writer
                if writer is not None and writer.congested:
                    return writer
        return None

    def _stall(self, writer: InterleavedWriter, now: float) -> None:
        """The player's TCP buffer is past the high-water mark: wait for it to drain, send nothing."""
        self.stalled_on, self.stalled_at = writer, now
        self.stalls += 1
        if self.stalls == 1:  # once per session: a slow reader may stall on every drain cycle
            log.info("%s slow player: replay paused until its connection drains (%d bytes buffered)",
                     self.log_ctx, writer.buffered)
        writer.when_drained(self._drained)

    def _drained(self) -> None:
        if self.stalled_on is None:
            return
        waited = self.loop.time() - self.stalled_at
        self.stalled_on = None
        self.start_wall += waited  # the media clock stood still while the player could not take more
        self.next_sr += waited
        if not self.ended and self.state == "playing":
            self._schedule(self.loop.time())

    def _wake(self) -> None:
        self.waiting = False
        if not self.ended and self.state == "playing":
            self._schedule(self.loop.time())

    def paced(self, now: float, horizon: float) -> None:
        """Send every packet due before `horizon` plus the flush window (stream by stream, one batch
        each; one joined write for a TCP player), then ask the pacer for the next packet's time."""
        if self.ended or self.state != "playing" or self.stalled_on is not None:
            return
        writer = self._congested_writer()
        if writer is not None:
            self._stall(writer, now)
            return
        if self.grid:  # woken on the grid: send through the end of this grid step, plus the window
            # (and a sender report due in it: its wake-up was moved back onto the grid as well)
            horizon = (int(horizon / self.grid) + 1) * self.grid
        if horizon >= self.next_sr:  # due within this tick, as packets are (never a second wake-up for it)
            self._send_reports(now)
        media = self.media
        times = media.times
        due = self.start_us + int((horizon + self.window - self.start_wall) * 1_000_000)
        first, n = self.pos, len(times)
        end = min(n, first + BURST)
        # In order up to the first packet not due (media times need not be sorted: B-frames); that is
        # where the running maximum of the media times reaches `due`.
        last = bisect.bisect_left(media.max_times, due, first, end)
        if last > first:
            outs = self.outs
            for index, out in enumerate(outs):
                if out is not None:
                    out.send(media, first, last, index)
            for out in outs:  # one joined write per TCP connection (no-op when already flushed)
                if out is not None and out.relay.player_writer is not None:
                    out.relay.player_writer.flush()
        self.pos = last
        if last < n:
            at = self.start_wall + (times[last] - self.start_us) / 1e6 if last < end else now
            self._schedule(min(at, self.next_sr))
        elif media.finished:
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
                out.flush()  # the last packets before the BYE
                out.send_rtcp(self._sender_report(out, now) + build_bye((out.ssrc,)))
        self._end_of_entry()
        log.debug("%s end of media", self.log_ctx)

    def _end_of_entry(self) -> None:
        playlist = self.playlist
        if playlist is not None and not playlist.known_after(self.entry_index):
            playlist.when_changed(self._playlist_grew)  # the fill has not heard what follows yet
            return
        if playlist is not None and playlist.has_after(self.entry_index):
            self.state = "ready"
            # After the joined media write of this loop iteration, like the EndOfStream below.
            self.loop.call_soon(self._entry_boundary, self.entry_index + 1)
            return
        if self.eos_message:  # [MS-RTSP] 3.2.4.1: RTP-Info seq = the next sequence number per stream
            streams = self._eos_streams()
            # After the joined media write of this loop iteration (queued first), never before it.
            self.loop.call_soon(lambda: send_end_of_stream(self, streams, playlist_gen_id=self.source.gen_id))
        self.state = "ready"  # the presentation's end (3.2.4.1)

    def _playlist_grew(self) -> None:
        if not self.ended and self.state == "playing" and self.pos >= len(self.media) and self.media.finished:
            self._end_of_entry()

    def _eos_streams(self) -> list[tuple[str, int]]:
        return [(self.target.to_player(self.source.controls[i]), out.seq)
                for i, out in enumerate(self.outs) if out is not None]

    def _entry_boundary(self, target: int) -> None:
        """EndOfStream (more entries follow) for the current entry, then the Announce of entry `target`
        with its own SDP, X-Playlist-Gen-Id and Cache-Control (3.2.4.1-2). The session is READY until
        the player has selected the new streams and plays."""
        if self.ended:
            return
        streams, gen_id = self._eos_streams(), self.source.gen_id
        self.state = "ready"
        self.pause_in_ready = True
        send_end_of_stream(self, streams, playlist_gen_id=gen_id, more_entries=True)
        self.previous_gen_id = gen_id
        self._switch_to(target)
        entry = self.source
        headers = [("Content-Type", "application/sdp"), ("Session", self.id)]
        if entry.gen_id:
            headers.append(("X-Playlist-Gen-Id", str(entry.gen_id)))
        if entry.cache_control:
            value = reemit_for_hit(parse_cache_control(entry.cache_control), age_seconds=entry.age)
            if value:
                headers.append(("Cache-Control", value))
        if entry.supported:
            headers.append(("Supported", entry.supported))
        url = self.target.to_player(self.presentation_url)
        self.context.wm.observe_cache_control(self.presentation_url, entry.cache_control)  # 4.4.5
        body = rewrite_sdp_controls(entry.sdp.encode("latin-1"), self.target.to_player)
        self.player.send_server_request(Request("ANNOUNCE", url, Headers(headers), body))

    def _switch_to(self, index: int) -> None:
        """Make playlist entry `index` current; the old entry's streams stay until deselected."""
        entry = self.playlist.entries[index]
        self.previous_controls, self.previous_outs = self.source.controls, self.outs
        self.entry_index = index
        self.source, self.media = entry, entry.media
        self.outs = [None] * len(entry.controls)
        self.pos = 0
        self.start_us = 0

    # --- reports and teardown ---
    def started_data(self) -> dict:
        return {"session_id": self.id, "url": url_key(self.play_url),
                "origin_url": url_key(self.target.to_origin(self.play_url)), "player_addr": self.player.peer,
                "user_agent": self.player.user_agent, "transports": [s.player_transport for s in self.streams],
                "served_from": self.source.served_from}

    def counters_data(self) -> dict:
        return {"session_id": self.id, **aggregate_counters(self.streams)}

    def release(self, reason: str, origin_teardown: bool) -> None:
        self._stop_pump()
        if self.playlist is not None:
            self.playlist.forget(self._playlist_grew)
        super().release(reason, origin_teardown)

    def after_close(self) -> None:
        remote_close(self.context, self)
        self.release_source(aggregate_counters(self.streams)["bytes_out"])
