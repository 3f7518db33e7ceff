"""ReplaySession: one player session served from recorded media (a committed entry or a running fill).

Packets go out paced by their media time, with this session's own SSRC, continuous sequence
numbers and timestamps shifted by a random per-stream offset; RTP-Info and RTCP sender reports
match them. PLAY with Range seeks to the preceding key frame, PAUSE/resume keep the position, and
the end of the media is signalled with RTCP BYE. A PlayerSession (proxyd.serving.contracts).

Parts: a slow TCP player's wait (replay_backpressure), playlist entries (replay_entries), the PLAY
position (replay_position), RTCP (replay_rtcp), stream output (replay_out, replay_wiring).
"""

from __future__ import annotations

import bisect

from proxyd.log import get_logger
from proxyd.cache.pacer import flush_grid, on_grid, pacer_for
from proxyd.cache.replay_backpressure import DrainWait, congested_writer
from proxyd.cache.replay_entries import entry_announce, requested_offset
from proxyd.cache.replay_out import ReplayStream
from proxyd.cache.replay_position import RangeRefused, await_anchors, beyond, requested_position, start_media_us
from proxyd.cache.replay_rtcp import goodbye, sender_report
from proxyd.cache.replay_source import ReplaySource
from proxyd.cache.replay_wiring import open_replay_stream, player_transport
from proxyd.origin.stream_relay import StreamRelay, aggregate_counters
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import RangeHeader, TransportSpec, format_range
from proxyd.rtsp.uri import url_key
from proxyd.serving.contracts import Player, ServerContext
from proxyd.serving.resumable import park_relays, unpark_relays
from proxyd.serving.session_base import SessionBase
from proxyd.wm.supported import EOSMSG, parse_supported
from proxyd.wmext.events import remote_close, remote_open
from proxyd.wmext.playlist import generation_mismatch, parse_gen_id, send_end_of_stream

log = get_logger("cache.replay")

BURST = 256  # packets sent per wakeup at most before yielding to the loop
SR_INTERVAL = 1.0  # seconds between RTCP sender reports per stream


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
        self.grid = 0.0  # wake-ups fall on multiples of this (_schedule, _flush_grid); 0: any tick
        self.window = 0.0  # seconds of media sent past the grid step (TCP) or the tick (a lone UDP replay)
        self.udp_interval = 0.0  # a UDP replay's --cache-udp-flush-interval (0: TCP, or no grid)
        self.pacer = pacer_for(self.loop, self.limits.cache_pace_tick)
        self.waiting = False
        self.drain_wait = DrainWait(self.loop, self._drained)  # a slow TCP player's
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
        index = self.source.stream_index(origin_url)
        if index is None:
            return Response(404, "Not Found", Headers())
        if self.outs[index] is not None:
            return Response(459, "Aggregate Operation Not Allowed", Headers())
        out = open_replay_stream(self.loop, self.limits, self.player, spec, len(self.streams),
                                 self.source.clock_rates[index], self.source.rtptime0[index])
        self.outs[index] = out
        self.streams.append(out.relay)
        self.state = "ready"
        self.start_timers()
        return Response(200, "OK", Headers([("Session", self.player_session_header),
                                            ("Transport", player_transport(spec, out))]))

    async def play(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        stale = self._stale_generation(request)
        if stale is not None:
            return stale
        try:
            position = requested_position(request)
        except RangeRefused as refused:
            return Response(refused.status, refused.reason, Headers([("Session", self.player_session_header)]))
        skip = self._playlist_skip(request)
        if skip is not None:
            return skip
        duration = self.source.duration
        if beyond(position, duration):
            return Response(457, "Invalid Range", Headers([("Session", self.player_session_header)]))
        if self.source.on_play is not None:
            await self.source.on_play()  # OriginError: the player gets the origin's failure
        self.pause_in_ready = False
        self._stop_pump()
        await await_anchors(self.loop, self.source, self.outs, self.limits.origin_response_timeout)
        if self.state not in ("ready", "playing"):  # torn down meanwhile
            return Response(455, "Method Not Valid in This State", Headers())
        if position is not None:
            self.pos = self.media.seek_index(int(position * 1_000_000))
        self.start_us = start_media_us(self.media, self.pos, position, duration)
        self.start_wall = self.loop.time()
        self.next_sr = self.start_wall
        self.udp_interval = 0.0 if self._has_tcp_player() else self.limits.cache_udp_flush_interval
        if self.udp_interval or (self._has_tcp_player() and self.limits.cache_tcp_flush_interval):
            self.pacer.gridded.add(self)
        self.grid, self.window = self._flush_grid()
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

    def _playlist_skip(self, request: Request) -> Response | None:
        """X-Playlist pl-offset (skip to the next/previous entry) and X-Playlist-Seek-Id naming the
        previous entry (the player missed the last Announce), [MS-RTSP] 3.2.5.8 steps 8-10."""
        session = [("Session", self.player_session_header)]
        step = requested_offset(request)
        if step is not None:
            playlist, target = self.playlist, self.entry_index + step
            if not step or playlist is None or not 0 <= target < len(playlist.entries):
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
        self.pacer.gridded.discard(self)
        if self.waiting:
            self.media.forget_waiter(self._wake)
            self.waiting = False
        self.drain_wait.cancel()  # PLAY sets the media clock afresh

    def _has_tcp_player(self) -> bool:
        return any(out is not None and out.relay.player_writer is not None for out in self.outs)

    def _flush_grid(self) -> tuple[float, float]:
        tcp = self.limits.cache_tcp_flush_interval if self._has_tcp_player() else 0.0
        return flush_grid(tcp, self.udp_interval, len(self.pacer.gridded))

    def _schedule(self, when: float) -> None:
        """Ask the pacer for a wake-up at `when`, moved back onto the replay's grid (on_grid)."""
        self.pacer.schedule(self, on_grid(when, self.grid, self.pacer.tick) if self.grid else when)

    def _drained(self, waited: float) -> None:
        self.start_wall += waited  # the media clock stood still while the player could not take more
        self.next_sr += waited
        if not self.ended and self.state == "playing":
            self._schedule(self.loop.time())

    def _wake(self) -> None:
        self.waiting = False
        if not self.ended and self.state == "playing":
            self._schedule(self.loop.time())

    def paced(self, now: float, horizon: float) -> None:
        """Send every packet due before `horizon` (on a grid: the end of the grid step) plus the TCP
        window (stream by stream, one batch each; one joined write for a TCP player), then ask the
        pacer for the next packet's time."""
        if self.ended or self.state != "playing" or self.drain_wait.writer is not None:
            return
        writer = congested_writer(self.outs)
        if writer is not None:
            self.drain_wait.start(writer, now, self.log_ctx)
            return
        if self.udp_interval:  # on the shared grid while another replay is on one, else alone
            self.grid, self.window = flush_grid(0.0, self.udp_interval, len(self.pacer.gridded))
        if self.grid:  # woken on the grid: send through the end of this grid step (TCP: plus the window)
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
                out.send_rtcp(sender_report(out, self._media_us(now)))

    def _media_us(self, now: float) -> int:
        """The media time the replay's clock is at, loop time `now`."""
        return self.start_us + int((now - self.start_wall) * 1_000_000)

    def _end_of_media(self) -> None:
        self.pacer.gridded.discard(self)
        now = self.loop.time()
        self.next_sr = now
        media_us = self._media_us(now)
        for out in self.outs:
            if out is not None:
                out.flush()  # the last packets before the BYE
                out.send_rtcp(goodbye(out, media_us))
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
        url = self.target.to_player(self.presentation_url)
        self.context.wm.observe_cache_control(self.presentation_url, self.source.cache_control)  # 4.4.5
        self.player.send_server_request(entry_announce(self.source, url, self.id, self.target.to_player))

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
