"""ProxySession: one player session <-> its own origin session (streams, state, timers, teardown)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import socket
from typing import TYPE_CHECKING

from proxyd.log import context, get_logger
from proxyd.net.udp import bind_port_pair
from proxyd.relay import StreamRelay, UdpPair, aggregate_counters
from proxyd.routing import Target, forward_headers, rewrite_response_headers
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import TransportSpec, format_transport, parse_session, parse_transport
from proxyd.rtsp.uri import same_resource, url_key
from proxyd.serving import Resumable, park_relays, unpark_relays
from proxyd.upstream import OriginClient, OriginError
from proxyd.wmext.playlist import relay_to_player

if TYPE_CHECKING:
    from proxyd.downstream import PlayerConnection
    from proxyd.server import ProxyServer

log = get_logger("session")

TEARDOWN_TIMEOUT = 2.0


class SessionTimers:
    """Deadlines of one session, driven by an injected `now`: keepalive toward the origin, idle-player
    reaping and counters reports. The session keeps one loop timer armed at `deadline()`."""

    def __init__(self, now: float, *, keepalive_interval: float, idle_timeout: float,
                 counters_interval: float) -> None:
        self.keepalive_interval = keepalive_interval
        self.idle_timeout = idle_timeout
        self.counters_interval = counters_interval
        self.next_keepalive = now + keepalive_interval
        self.next_counters = now + counters_interval
        self.last_activity = now

    def touch(self, now: float) -> None:
        self.last_activity = now

    def deadline(self) -> float:
        return min(self.next_keepalive, self.next_counters, self.last_activity + self.idle_timeout)

    def due(self, now: float, *, player_active: bool, reapable: bool) -> list[str]:
        """Actions due at `now` ("keepalive", "counters", "reap"); advances their deadlines.
        `player_active`: the player showed life since the last call (e.g. RTCP receiver reports);
        `reapable`: idle reaping applies (not while a TCP player's connection is open)."""
        actions = []
        if now >= self.next_keepalive:
            actions.append("keepalive")
            self.next_keepalive = now + self.keepalive_interval
        if now >= self.next_counters:
            actions.append("counters")
            self.next_counters = now + self.counters_interval
        idle = now >= self.last_activity + self.idle_timeout
        if player_active or (idle and not reapable):
            self.last_activity = now  # alive: the idle period starts again
        elif idle:
            actions.append("reap")
        return actions


def run_due_timer_actions(session, *, tcp_player_open: bool, keepalive=None) -> bool:
    """Run what `session.timers` says is due now (reap, keepalive, counters) for any session kind
    (relay, cache replay, split). Returns False when the session was reaped. A detached session
    (its player's connection dropped) is reaped after the Idle-Timeout whatever RTCP still arrives."""
    player_active = any(s.player_seen for s in session.streams) and not session.detached
    for s in session.streams:
        s.player_seen = False
    for action in session.timers.due(session.loop.time(), player_active=player_active,
                                     reapable=not tcp_player_open):
        if action == "reap":
            session.close("timeout", "player idle")
            return False
        if action == "keepalive" and keepalive is not None:
            keepalive()
        elif action == "counters" and session.started_reported:
            session.server.emit("session.counters", session.counters_data())
    return True


class ProxySession(Resumable):
    def __init__(self, server: ProxyServer, player: PlayerConnection, target: Target,
                 origin: OriginClient) -> None:
        self.id = secrets.token_hex(8)
        self.server = server
        self.limits = server.config.limits
        self.player = player
        self.target = target
        self.origin = origin
        self.state = "init"
        self.streams: list[StreamRelay] = []
        self.stream_urls: dict[str, StreamRelay] = {}
        self.origin_channels: dict[int, tuple[StreamRelay, bool]] = {}
        self.upstream_tcp: bool | None = None
        self.fallback_done = False
        self.origin_session: str | None = None
        self.origin_timeout = 60
        self.keepalive_method = "GET_PARAMETER"
        self.setup_headers: dict[str, Headers] = {}
        self.last_play: Request | None = None
        self.aggregate_url = target.origin_url  # replaced by the PLAY URL once the player plays
        self.loop = asyncio.get_running_loop()
        self.timers: SessionTimers | None = None
        self.timer_handle: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.tasks: set[asyncio.Task] = set()
        self.ended = False
        self.started_reported = False
        origin.on_frame = self._on_origin_frame
        origin.on_request = self._on_origin_request
        origin.on_lost = lambda why: self.close("origin_error", why)

    @property
    def log_ctx(self) -> str:
        return context(self.player.peer, None, self.id)

    @property
    def player_session_header(self) -> str:
        return f"{self.id};timeout={self.limits.session_timeout}"

    @property
    def origin_transport(self) -> str:
        """auto/udp/tcp: the route's preference from the control plane, else --origin-transport."""
        return self.target.transport or self.server.config.origin_transport

    def touch(self) -> None:
        if self.timers is not None:
            self.timers.touch(self.loop.time())

    def _spawn(self, coro) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- SETUP ---------------------------------------------------------------------------------
    async def setup(self, request: Request, origin_url: str, spec: TransportSpec,
                    clock_rate: int) -> Response:
        if self.state == "playing":
            return Response(455, "Method Not Valid in This State", Headers())
        if any(same_resource(origin_url, url) for url in self.stream_urls):
            return Response(459, "Aggregate Operation Not Allowed", Headers())
        stream = StreamRelay(len(self.streams), clock_rate)
        if spec.is_tcp:
            channels = spec.interleaved or (2 * stream.index, 2 * stream.index + 1)
            if channels[1] == channels[0]:
                channels = (channels[0], channels[0] + 1)
            stream.player_channels = channels
            stream.player_writer = self.player.media_writer()
        else:
            ip = self.player.peer_ip
            stream.player_rtp_addr = (ip, spec.client_port[0])
            stream.player_rtcp_addr = (ip, spec.client_port[1] if spec.client_port[1] != spec.client_port[0]
                                       else spec.client_port[0] + 1)
        use_tcp = self.upstream_tcp
        if use_tcp is None:
            use_tcp = self.origin_transport == "tcp"
        try:
            resp = await self._setup_upstream(stream, origin_url, request.headers, use_tcp)
            if resp.status == 461 and not use_tcp and self.upstream_tcp is None \
                    and self.origin_transport == "auto":
                use_tcp = True
                resp = await self._setup_upstream(stream, origin_url, request.headers, use_tcp)
        except BaseException:
            stream.close()
            raise
        if not 200 <= resp.status < 300:
            stream.close()
            headers = Headers(rewrite_response_headers(resp, self.target, None))
            return Response(resp.status, resp.reason, headers, resp.body)
        if spec.is_tcp:
            self.player.register_channel(stream.player_channels[1], stream)  # player RTCP in
        self.upstream_tcp = use_tcp
        self.streams.append(stream)
        self.stream_urls[origin_url] = stream
        self.setup_headers[origin_url] = request.headers
        self.state = "ready"
        if self.timers is None:
            self.timers = SessionTimers(
                self.loop.time(), idle_timeout=self.limits.session_timeout,
                keepalive_interval=max(1.0, self.origin_timeout * self.limits.keepalive_fraction),
                counters_interval=self.limits.counters_interval)
            self._arm_timer()
        player_spec = dataclasses.replace(
            spec, destination=None, source=None, mode=None, extra=(),
            interleaved=stream.player_channels if spec.is_tcp else None,
            server_port=None if spec.is_tcp else (stream.pair.rtp_port, stream.pair.rtp_port + 1),
            ssrc=self._origin_ssrc(resp), delivery="unicast")
        headers = rewrite_response_headers(resp, self.target, self.player_session_header)
        headers.append(("Transport", format_transport(player_spec)))
        return Response(resp.status, resp.reason, Headers(headers), resp.body)

    @staticmethod
    def _origin_ssrc(resp: Response) -> str | None:
        try:
            return parse_transport(resp.headers.get("Transport", ""))[0].ssrc
        except (RtspError, IndexError):
            return None

    async def _setup_upstream(self, stream: StreamRelay, origin_url: str, player_headers: Headers,
                              use_tcp: bool) -> Response:
        """SETUP one stream at the origin; allocates the UDP pair when either side uses UDP."""
        needs_pair = not use_tcp or stream.player_writer is None
        if needs_pair and stream.pair is None:
            family = socket.AF_INET6 if ":" in self.player.peer_ip else socket.AF_INET
            rtp, rtcp = bind_port_pair("::" if family == socket.AF_INET6 else "0.0.0.0",
                                       self.limits.rtp_port_min, self.limits.rtp_port_max)
            stream.pair = UdpPair(rtp, rtcp, stream)
        if use_tcp:
            channels = (2 * stream.index, 2 * stream.index + 1)
            transport = f"RTP/AVP/TCP;unicast;interleaved={channels[0]}-{channels[1]}"
        else:
            transport = f"RTP/AVP;unicast;client_port={stream.pair.rtp_port}-{stream.pair.rtp_port + 1}"
        extra = [("Transport", transport)]
        if self.origin_session:
            extra.append(("Session", self.origin_session))
        resp = await self.origin.request("SETUP", origin_url, forward_headers(player_headers, extra))
        if not 200 <= resp.status < 300:
            return resp
        session_value = resp.headers.get("Session")
        if session_value:
            try:
                parsed = parse_session(session_value)
                self.origin_session = parsed.id
                self.origin_timeout = parsed.timeout or 60
            except RtspError:
                raise OriginError(502, "Bad Gateway",
                                  f"origin sent a bad Session header {session_value!r}") from None
        try:
            origin_spec = parse_transport(resp.headers.get("Transport", ""))[0]
        except (RtspError, IndexError):
            raise OriginError(502, "Bad Gateway", "origin SETUP response has no usable Transport") from None
        if use_tcp:
            channels = origin_spec.interleaved or channels
            rtcp_channel = channels[1] if channels[1] != channels[0] else channels[0] + 1
            stream.origin_channels = (channels[0], rtcp_channel)
            stream.origin_frame_sender = self.origin.send_frame
            self.origin_channels[stream.origin_channels[0]] = (stream, False)
            self.origin_channels[stream.origin_channels[1]] = (stream, True)
        else:
            origin_ip = origin_spec.source or self.origin.transport.get_extra_info("peername")[0]
            stream.origin_ip = origin_ip
            if origin_spec.server_port:
                low, high = origin_spec.server_port
                stream.origin_rtcp_addr = (origin_ip, high if high != low else low + 1)
            stream.origin_frame_sender = None
        return resp

    # --- PLAY / PAUSE / TEARDOWN / parameters --------------------------------------------------
    async def play(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        resp = await self.origin_request(request)
        if 200 <= resp.status < 300:
            self.state = "playing"
            self.last_play = request
            if request.uri != "*":
                self.aggregate_url = self.target.to_origin(request.uri)
            if not self.started_reported:
                self.started_reported = True
                self.server.emit("session.started", self.started_data())
            auto = self.origin_transport == "auto"
            if not self.upstream_tcp and not self.fallback_done and auto:
                self._spawn(self._udp_watchdog())
        return resp

    async def pause(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        resp = await self.origin_request(request)
        if 200 <= resp.status < 300:
            self.state = "ready"
        return resp

    async def teardown(self, request: Request) -> Response:
        try:
            resp = await self.origin_request(request, timeout=TEARDOWN_TIMEOUT)
        except OriginError:
            resp = None
        self.close("teardown", origin_teardown=False)
        return Response(200, "OK", Headers(rewrite_response_headers(resp, self.target, None) if resp else []))

    async def origin_request(self, request: Request, timeout: float | None = None) -> Response:
        """Forward a player request within this session and rewrite the answer for the player."""
        url = self.target.to_origin(request.uri) if request.uri != "*" else request.uri
        extra = [("Session", self.origin_session)] if self.origin_session else []
        coro = self.origin.request(request.method, url, forward_headers(request.headers, extra), request.body)
        if timeout is not None:
            try:
                async with asyncio.timeout(timeout):
                    resp = await coro
            except TimeoutError:
                raise OriginError(504, "Gateway Timeout", f"origin did not answer {request.method}") from None
        else:
            resp = await coro
        headers = rewrite_response_headers(resp, self.target, self.player_session_header)
        return Response(resp.status, resp.reason, Headers(headers), resp.body)

    # --- player connection lost / resumed ([MS-RTSP] 3.2.7.2, see serving.Resumable) ------------
    def _park(self) -> None:
        if self.state == "playing" and self.origin_session:  # READY at the origin too, until resumed
            self._spawn(self._pause_upstream())
        self.parked = park_relays(self.streams)

    def _unpark(self, player: PlayerConnection) -> None:
        unpark_relays(self.streams, self.parked, player)

    async def _pause_upstream(self) -> None:
        try:
            resp = await self.origin.request("PAUSE", self.aggregate_url,
                                             Headers([("Session", self.origin_session)]))
        except OriginError as exc:
            log.info("%s PAUSE at the origin failed: %s", self.log_ctx, exc.detail)
            return
        if resp.status >= 400:  # its RTP is dropped here until the player resumes
            log.info("%s origin refused PAUSE: %d", self.log_ctx, resp.status)

    # --- origin events -------------------------------------------------------------------------
    def _on_origin_frame(self, channel: int, payload: bytes) -> None:
        entry = self.origin_channels.get(channel)
        if entry is None:
            return
        stream, is_rtcp = entry
        if is_rtcp:
            stream.rtcp_from_origin(payload)
        else:
            stream.rtp_from_origin(payload)

    def _on_origin_request(self, request: Request) -> None:
        """EndOfStream SET_PARAMETER, ANNOUNCE...: already answered upstream; relay to the player."""
        self.player.send_server_request(relay_to_player(self, request))  # URLs, Session, RTP-Info

    # --- timers --------------------------------------------------------------------------------
    def _arm_timer(self) -> None:
        """One loop timer per session, re-armed only when the deadline moves."""
        if self.ended or self.timers is None:
            return
        deadline = self.timers.deadline()
        if self.timer_handle is not None and deadline == self.timer_at:
            return
        if self.timer_handle is not None:
            self.timer_handle.cancel()
        self.timer_at = deadline
        self.timer_handle = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer_handle = None
        if self.ended:
            return
        tcp_player = any(s.player_writer is not None for s in self.streams) and self.player.is_open
        if run_due_timer_actions(self, tcp_player_open=tcp_player,
                                 keepalive=lambda: self._spawn(self._keepalive())):
            self._arm_timer()

    async def _keepalive(self) -> None:
        """GET_PARAMETER (OPTIONS if the origin refuses it) so the origin session never times out."""
        headers = Headers([("Session", self.origin_session)] if self.origin_session else [])
        try:
            resp = await self.origin.request(self.keepalive_method, self.aggregate_url, headers)
        except OriginError as exc:
            self.close("origin_error", f"keepalive failed: {exc.detail}")
            return
        if resp.status >= 400 and self.keepalive_method != "OPTIONS":
            self.keepalive_method = "OPTIONS"

    async def _udp_watchdog(self) -> None:
        waits = [asyncio.ensure_future(s.first_packet.wait()) for s in self.streams]
        done, pending = await asyncio.wait(waits, timeout=self.limits.udp_fallback_timeout,
                                           return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()
        if done or self.ended:
            return
        log.warning("%s no UDP media from origin in %.1fs, switching to TCP", self.log_ctx,
                    self.limits.udp_fallback_timeout)
        self.fallback_done = True
        try:
            await self._switch_to_tcp()
        except OriginError as exc:
            self.close("origin_error", f"TCP fallback failed: {exc.detail}")

    async def _switch_to_tcp(self) -> None:
        if self.origin_session:
            await self.origin.request("TEARDOWN", self.aggregate_url,
                                      Headers([("Session", self.origin_session)]))
        self.origin_session = None
        for url, stream in self.stream_urls.items():
            resp = await self._setup_upstream(stream, url, self.setup_headers[url], use_tcp=True)
            if not 200 <= resp.status < 300:
                raise OriginError(502, "Bad Gateway", f"origin refused TCP SETUP: {resp.status}")
        self.upstream_tcp = True
        if self.last_play is not None:
            play = self.last_play
            extra = [("Session", self.origin_session)] if self.origin_session else []
            await self.origin.request("PLAY", self.target.to_origin(play.uri),
                                      forward_headers(play.headers.remove("Range"), extra))

    # --- reports and teardown ------------------------------------------------------------------
    def started_data(self) -> dict:
        player_url = self.last_play.uri if self.last_play and self.last_play.uri != "*" else \
            self.target.to_player(self.aggregate_url)
        return {"session_id": self.id, "url": url_key(player_url),
                "origin_url": url_key(self.aggregate_url), "player_addr": self.player.peer,
                "user_agent": self.player.user_agent,
                "transports": [s.player_transport for s in self.streams],
                "served_from": "origin"}

    def counters_data(self) -> dict:
        return {"session_id": self.id, **aggregate_counters(self.streams)}

    def close(self, reason: str, detail: str = "", *, origin_teardown: bool = True) -> None:
        """Release every socket, task and registration; idempotent."""
        if self.ended:
            return
        self.ended = True
        log.info("%s session ended: %s %s", self.log_ctx, reason, detail)
        if self.timer_handle is not None:
            self.timer_handle.cancel()
            self.timer_handle = None
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        for stream in self.streams:
            stream.close()
        self.player.forget_session(self)
        self.server.forget_session(self)
        if self.started_reported:
            self.server.emit("session.ended", {**self.counters_data(), "end_reason": reason})
        origin = self.origin
        origin.on_frame = origin.on_request = origin.on_lost = None
        if origin_teardown and self.origin_session and origin.is_open:
            self.server.spawn(origin.teardown_and_close(self.aggregate_url, self.origin_session))
        else:
            origin.close()
        if reason == "origin_error":
            self.player.close_connection("origin session lost")

