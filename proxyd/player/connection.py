"""Player-facing RTSP connection, its asyncio IO side: bytes in, answers and media out, timers,
the sessions and channels it holds, the method handlers. Request dispatch is proxyd.player.dispatch,
target and auth resolution proxyd.player.targets."""

from __future__ import annotations

import asyncio

from proxyd.origin.exchange import OriginExchange
from proxyd.log import context, get_logger
from proxyd.net.listen import unmapped_ip
from proxyd.origin.stream_relay import InterleavedWriter, StreamRelay
from proxyd.player.dispatch import PUBLIC, RequestDispatch
from proxyd.player.pipeline import RequestPipeline
from proxyd.player.reply import Reply
from proxyd.player.targets import TargetResolution
from proxyd.routing import Target, rewrite_sdp_controls
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtp.sdp import media_clock_rates
from proxyd.rtsp.headers import TransportSpec, parse_transport
from proxyd.rtsp.uri import content_base, url_key
from proxyd.routing import forward_headers, rewrite_response_headers
from proxyd.relay.session import ProxySession
from proxyd.serving.contracts import PlayerSession, ServerContext
from proxyd.origin.client import OriginClient
from proxyd.wmext.parameters import handle_parameter

log = get_logger("downstream")

# A redirect (302/305, [MS-RTSP] 3.2.5.4) ends the connection once answered, as a refusal does.
REDIRECT_REASONS = {302: "Moved Temporarily", 305: "Use Proxy"}


def choose_player_transport(value: str | None, tcp_only: bool = False) -> TransportSpec | None:
    """First acceptable alternative: RTP/AVP unicast over UDP (client_port) or TCP (interleaved);
    tcp_only (a TLS connection): interleaved only, so media stays inside TLS."""
    if not value:
        return None
    try:
        specs = parse_transport(value)
    except RtspError:
        return None
    for spec in specs:
        if spec.protocol.upper() != "RTP/AVP" or spec.delivery == "multicast":
            continue
        if spec.is_tcp or (spec.client_port is not None and not tcp_only):
            return spec
    return None


class PlayerConnection(asyncio.Protocol):
    """A player's RTSP connection (the Player of proxyd.serving.contracts)."""

    def __init__(self, context: ServerContext, tls: bool = False) -> None:
        self.context = context
        self.tls = tls  # came in on --listen-tls: UDP media only with --tls-allow-udp
        self.config = context.config
        self.limits = context.config.limits
        self.conn = RtspConnection(Role.SERVER, context.parser_limits)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.peer_ip = ""
        self.local_host, self.local_port = "", 0
        self.user_agent = ""
        self.targets = TargetResolution(self)
        self.dispatcher = RequestDispatch(self)
        self.requests = RequestPipeline(self.limits.max_pipelined_requests, self.dispatcher.handle,
                                        self.dispatcher.pipelined_session, self.dispatcher.answer)
        self.sessions: dict[str, PlayerSession] = {}
        self.tearing_down: set[str] = set()  # ids of sessions whose TEARDOWN is being handled
        self.channels: dict[int, StreamRelay] = {}
        self.origins: dict[tuple[str, int], OriginClient] = {}  # DESCRIBE connections, adopted by SETUP
        self.clock_rates: dict[str, int] = {}  # url_key(player-facing stream URL) -> RTP clock rate
        self.claimed: dict[str, object] = {}  # url_key(player-facing presentation URL) -> owning strategy
        self.writer: InterleavedWriter | None = None
        self.overloaded = False
        self.closing = False
        self.close_when_idle = False  # the player half-closed, or tore its last session down
        self.ending: str | None = None  # refused or redirected: why it closes once the answer is written
        self.request_timer: asyncio.TimerHandle | None = None  # closes idle and slow-header connections
        self.last_data = b""
        self.dispatch = {
            "OPTIONS": self.on_options, "DESCRIBE": self.on_describe, "SETUP": self.on_setup,
            "PLAY": self.on_play, "PAUSE": self.on_pause, "TEARDOWN": self.on_teardown,
            "GET_PARAMETER": self.on_parameter, "SET_PARAMETER": self.on_parameter,
        }

    # --- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("", 0)
        self.peer_ip = unmapped_ip(peer[0])  # an IPv4 player on a dual-stack listener is an IPv4 player
        self.peer = f"[{self.peer_ip}]:{peer[1]}" if ":" in self.peer_ip else f"{self.peer_ip}:{peer[1]}"
        self.local_host, self.local_port = unmapped_ip(local[0]), local[1]
        if self.context.connections_from(self.peer_ip) >= self.limits.max_connections_per_address \
                and not self.context.cluster.is_member_address(self.peer_ip):
            log.warning("%s refused: over --max-connections-per-address", context(self.peer))
            transport.abort()  # never registered, so connection_lost has nothing to undo
            self.closing = True
            return
        self.overloaded = not self.context.add_connection(self)
        self.arm_request_timer()

    def arm_request_timer(self) -> None:
        if self.request_timer is not None:
            self.request_timer.cancel()
        self.request_timer = asyncio.get_running_loop().call_later(self.limits.request_timeout,
                                                                   self._request_timer_fired)

    def _request_timer_fired(self) -> None:
        busy = self.sessions or self.requests.unanswered
        if busy:
            self.arm_request_timer()
        else:
            self.close_connection("no complete request within --request-timeout")

    def data_received(self, data: bytes) -> None:
        self.last_data = data[-4096:]
        self.conn.receive_data(data)
        self.dispatcher.drain_events()

    def resume_writing(self) -> None:
        # The transport's buffer drained below the media writer's low mark (its limits).
        if self.writer is not None:
            self.writer.drained()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self.dispatcher.drain_events()
        return self.close_when_idle  # True keeps the transport to answer a last pipelined TEARDOWN

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.request_timer is not None:
            self.request_timer.cancel()
        if self.writer is not None:
            self.writer.close()
        for session in list(self.sessions.values()):  # [MS-RTSP] 3.2.7.2: INIT ends, others wait
            if session.id in self.tearing_down:  # the player said TEARDOWN, then closed before our answer
                session.close("teardown")
            else:
                session.detach()
        self.sessions.clear()
        self.channels.clear()
        for origin in self.origins.values():
            origin.close()
        self.origins.clear()
        self.requests.cancel()
        self.context.remove_connection(self)

    @property
    def is_open(self) -> bool:
        return not self.closing and self.transport is not None and not self.transport.is_closing()

    def end_after_answer(self, why: str) -> None:
        for session in list(self.sessions.values()):
            session.close("terminated", why)
        self.close_connection(why)

    def session_for(self, request: Request, required: bool = True) -> PlayerSession | None:
        value = request.headers.get("Session")
        if not value:
            if required:
                raise Reply(455, "Method Not Valid in This State", f"{request.method} without a session")
            return None
        session = self.context.sessions.get(value.split(";")[0].strip())
        if session is None:
            raise Reply(454, "Session Not Found", f"unknown session {value[:64]!r}")
        if session.player is not self:
            self._adopt(session, request)
        session.touch()
        if not session.admit_transaction(request.method):
            raise Reply(503, "Service Unavailable",
                        f"session {session.id} over --session-max-transactions this heartbeat")
        return session

    def _adopt(self, session, request: Request) -> None:
        """A session created on another connection: only from the address that created it (its id
        is a bearer token otherwise); a detached one ([MS-RTSP] 3.2.7.2) moves to this connection."""
        if self.peer_ip != session.created_ip:
            log.warning("%s session %s was created from %s: refused", context(self.peer, request.cseq),
                        session.id, session.created_ip)
            raise Reply(454, "Session Not Found", "session of another player address")
        if not session.detached:
            return
        if not session.same_presentation(request.uri):
            raise Reply(454, "Session Not Found", f"session {session.id} is not for {request.uri[:128]!r}")
        log.info("%s resumes session %s", context(self.peer, request.cseq), session.id)
        session.attach(self)
        self.sessions[session.id] = session

    def target_for(self, request: Request) -> Target:
        return self.targets.target_for(request)

    # --- handlers (each returns the Response; CSeq is added by the worker) ---------------------
    async def on_options(self, request: Request) -> Response:
        session = self.session_for(request, required=False)
        headers = [("Public", PUBLIC)]
        if session is not None:
            headers.append(("Session", session.player_session_header))
        return Response(200, "OK", Headers(headers))

    async def on_describe(self, request: Request) -> Response:
        redirect = self.context.router.redirect_for(request.uri)
        if redirect is not None:  # policy: never the REDIRECT method
            status, location = redirect
            log.info("%s DESCRIBE %s -> %d %s", context(self.peer, request.cseq), request.uri[:200], status,
                     location)
            self.ending = f"redirected ({status})"
            return Response(status, REDIRECT_REASONS[status], Headers([("Location", location)]))
        target = self.target_for(request)
        presentation = url_key(request.uri)
        previous = self.origins.pop((target.origin_host, target.origin_port), None)
        exchange = OriginExchange(target, request, self.context.origin_connector, previous)
        try:
            for strategy in self.context.strategies:
                resp = await strategy.describe(self, exchange)
                if resp is not None:
                    self.claimed[presentation] = strategy
                    return resp
            self.claimed.pop(presentation, None)  # the relay serves it
            resp = await exchange.describe()
            self.targets.keep_for_setup(exchange)
        finally:
            exchange.close()
        headers = rewrite_response_headers(resp, target, None)
        body = resp.body
        if 200 <= resp.status < 300 and body:
            base = content_base(resp.headers, target.origin_url)
            for url, rate in media_clock_rates(body, base).items():
                self.clock_rates[url_key(target.to_player(url))] = rate
            body = rewrite_sdp_controls(body, target.to_player)
        return Response(resp.status, resp.reason, Headers(headers), body)

    async def on_setup(self, request: Request) -> Response:
        session = self.session_for(request, required=False)
        target = self.target_for(request)
        tcp_only = self.tls and not self.config.tls.allow_udp
        spec = choose_player_transport(request.headers.get("Transport"), tcp_only)
        if spec is None:
            raise Reply(461, "Unsupported Transport",
                        f"no usable transport{' over TLS (TCP only)' if tcp_only else ''} in "
                        f"{request.headers.get('Transport')!r}")
        created = session is None
        if created:
            if len(self.context.sessions) >= self.limits.max_sessions:
                raise Reply(453, "Not Enough Bandwidth", "session limit reached")
            session = self.targets.claimed_session(request, target)
            if session is None:
                origin = await self.targets.origin_for(target, adopt=True)
                session = ProxySession(self.context, self, target, origin)
        elif (target.origin_host, target.origin_port) != (session.target.origin_host,
                                                          session.target.origin_port):
            raise Reply(459, "Aggregate Operation Not Allowed", "SETUP for another origin within a session")
        try:
            clock_rate = self.clock_rates.get(url_key(request.uri), 90000)
            resp = await session.setup(request, target.origin_url, spec, clock_rate)
        except BaseException:
            if created:
                session.close("origin_error", "setup failed", origin_teardown=False)
            raise
        if created:
            if 200 <= resp.status < 300:
                session.created_ip, session.setup_uri = self.peer_ip, request.uri
                self.sessions[session.id] = session
                self.context.sessions[session.id] = session
            else:
                session.close("origin_error", "setup refused", origin_teardown=False)
        return resp

    async def on_play(self, request: Request) -> Response:
        return await self.session_for(request).play(request)

    async def on_pause(self, request: Request) -> Response:
        return await self.session_for(request).pause(request)

    async def on_teardown(self, request: Request) -> Response:
        session = self.session_for(request)
        if session.addressed_stream(request) is not None:  # SelectStream deselect, not the session's end
            return await session.deselect(request)
        self.tearing_down.add(session.id)
        try:
            response = await session.teardown(request)
        finally:
            self.tearing_down.discard(session.id)
        if response.status < 300 and not self.sessions:  # [MS-RTSP] 3.2.5.17: then close TCP
            self.close_when_idle = True
        return response

    async def on_parameter(self, request: Request) -> Response:
        answered = await handle_parameter(self, request)  # WM logs, SendEvent, GCI from cache
        if answered is not None:
            return answered
        session = self.session_for(request, required=False)
        if session is not None:
            return await session.origin_request(request)
        if not request.body:  # session-less keepalive
            return Response(200, "OK", Headers())
        target = self.target_for(request)
        origin = await self.targets.origin_for(target, adopt=False)
        resp = await origin.request(request.method, target.origin_url, forward_headers(request.headers),
                                    request.body)
        headers = Headers(rewrite_response_headers(resp, target, None))
        return Response(resp.status, resp.reason, headers, resp.body)

    # --- used by sessions (the Player contract) ------------------------------------------------------------------
    def media_writer(self) -> InterleavedWriter:
        if self.writer is None:
            self.writer = InterleavedWriter(self.transport, high_water=self.limits.write_high_water,
                                            drop_limit=self.limits.write_drop_limit,
                                            max_dropped=self.limits.max_dropped_packets,
                                            on_overflow=self.close_connection)
        return self.writer

    def register_channel(self, channel: int, stream: StreamRelay) -> None:
        self.channels[channel] = stream

    def unregister_stream(self, stream) -> None:
        for channel in [c for c, s in self.channels.items() if s is stream]:
            del self.channels[channel]

    def forget_session(self, session: PlayerSession) -> None:
        if self.sessions.pop(session.id, None) is not None:
            for channel in [c for c, s in self.channels.items() if s in session.streams]:
                del self.channels[channel]

    def send_server_request(self, request: Request) -> None:
        if not self.is_open:
            return
        try:
            self.transport.write(self.conn.send_request(request))
        except RtspError as exc:
            log.warning("%s cannot relay %s to player: %s", context(self.peer), request.method, exc)

    def close_connection(self, why: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            log.info("%s closing player connection: %s", context(self.peer), why)
            self.transport.close()
