"""Player-facing RTSP connection: bytes -> sans-IO events -> method handlers (dispatch table)."""

from __future__ import annotations

import asyncio
import dataclasses
import re

from proxyd.origin.exchange import OriginExchange
from proxyd.log import context, get_logger
from proxyd.metrics.counters import RTSP_RESPONSES, method_label
from proxyd.net.listen import unmapped_ip
from proxyd.origin.stream_relay import InterleavedWriter, StreamRelay
from proxyd.player.pipeline import RequestPipeline
from proxyd.routing import RoutingError, Target, rewrite_sdp_controls
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.errors import RemoteProtocolError, RtspError
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed, Headers, InterleavedFrame, Request, Response
from proxyd.rtp.sdp import media_clock_rates
from proxyd.rtsp.headers import TransportSpec, parse_transport
from proxyd.rtsp.uri import content_base, is_within, url_key
from proxyd.routing import forward_headers, rewrite_response_headers
from proxyd.relay.session import ProxySession
from proxyd.serving.contracts import PlayerSession, ServerContext
from proxyd.origin.client import OriginClient, OriginError
from proxyd.wmext.negotiate import respond as wm_respond
from proxyd.wmext.parameters import handle_parameter

log = get_logger("downstream")

PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
CSEQ_HINT = re.compile(rb"(?im)^cseq[ \t]*:[ \t]*(\d{1,9})[ \t]*\r?$")
# proxyd's own refusal of a request (an ACL: forward origin not allowed, player not authorised):
# [MS-RTSP] 3.2.7.6 deletes the session state and closes TCP; the status is still sent, so the
# player can tell why. A redirect (302/305, 3.2.5.4) ends the connection the same way.
REJECTED = 403
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


class Reply(Exception):
    """Raised inside a handler to answer with a status (logged as a warning once)."""

    def __init__(self, status: int, reason: str, detail: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


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
        self.requests = RequestPipeline(self.limits.max_pipelined_requests, self._handle,
                                        self._pipelined_session, self._answer)
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
        self._last_data = b""
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
        self._arm_request_timer()

    def _arm_request_timer(self) -> None:
        if self.request_timer is not None:
            self.request_timer.cancel()
        self.request_timer = asyncio.get_running_loop().call_later(self.limits.request_timeout,
                                                                   self._request_timer_fired)

    def _request_timer_fired(self) -> None:
        busy = self.sessions or self.requests.unanswered
        if busy:
            self._arm_request_timer()
        else:
            self.close_connection("no complete request within --request-timeout")

    def data_received(self, data: bytes) -> None:
        self._last_data = data[-4096:]
        self.conn.receive_data(data)
        self._drain_events()

    def resume_writing(self) -> None:
        # The transport's buffer drained below the media writer's low mark (its limits).
        if self.writer is not None:
            self.writer.drained()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self._drain_events()
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

    def _drain_events(self) -> None:
        while not self.closing:
            try:
                event = self.conn.next_event()
            except RemoteProtocolError as exc:
                match = CSEQ_HINT.search(self._last_data)
                cseq = match.group(1).decode() if match else None
                self._reject(exc.status_hint, exc.reason, str(exc), cseq)
                return
            if event is NEED_DATA:
                return
            if isinstance(event, InterleavedFrame):
                stream = self.channels.get(event.channel)
                if stream is not None:
                    stream.rtcp_from_player(event.payload)
            elif isinstance(event, Request):
                self._arm_request_timer()
                if not self.requests.add(event):
                    log.warning("%s %s -> 503 Service Unavailable: over --max-pipelined-requests (%d "
                                "unanswered)", context(self.peer, event.cseq), event.method[:32],
                                self.requests.limit)
                if self.requests.full:
                    self.transport.pause_reading()  # resumed as answers go out
            elif isinstance(event, ConnectionClosed):
                if self.requests.unanswered:
                    self.close_when_idle = True  # e.g. ffmpeg sends TEARDOWN and closes at once
                else:
                    self.close_connection("player closed")
                return
            # Responses are players' answers to our relayed server requests: nothing to do.

    def _reject(self, status: int, reason: str, detail: str, cseq: str | None) -> None:
        log.warning("%s %d %s: %s", context(self.peer, cseq), status, reason, detail)
        headers = Headers([("CSeq", cseq)] if cseq else [])
        RTSP_RESPONSES.inc("other", str(status))
        self.transport.write(self.conn.send_response(Response(status, reason, headers)))
        self.close_connection(f"protocol error {status}")

    # --- requests in, answers out (proxyd.player.pipeline) ------------------------------------
    def _pipelined_session(self, request: Request) -> str | None:
        """The id of the session this request is a pipelinable SelectStream of, else None: a
        stream SETUP or TEARDOWN naming a session of this connection whose kind relays them
        pipelined (the aggregate TEARDOWN ends the session: never pipelined)."""
        if request.method not in ("SETUP", "TEARDOWN"):
            return None
        value = request.headers.get("Session")
        session = self.sessions.get(value.split(";")[0].strip()) if value else None
        if session is None or not session.pipelines_select_streams:
            return None
        if request.method == "TEARDOWN" and session.addressed_stream(request) is None:
            return None
        return session.id

    def _answer(self, request: Request, response: Response) -> bool:
        """Write one answer; False when the connection ends with it."""
        if self.closing:
            return False
        response = wm_respond(self, request, response)  # Supported; remembers origin Cache-Control
        headers = Headers((("CSeq", str(request.cseq)), *response.headers.items()))
        RTSP_RESPONSES.inc(method_label(request.method), str(response.status))
        self.transport.write(self.conn.send_response(Response(response.status, response.reason, headers,
                                                              response.body)))
        if self.ending:
            self._end_after_answer(self.ending)
            return False
        if self.close_when_idle and not self.requests.unanswered:
            self.close_connection("player closed")
            return False
        if not self.requests.full:
            self.transport.resume_reading()
        return True

    async def _handle(self, request: Request) -> Response:
        session_value = request.headers.get("Session")
        session_id = session_value.split(";")[0].strip() if session_value else None
        if request.headers.get("User-Agent"):
            self.user_agent = request.headers.get("User-Agent")[:256]
        handler = self.dispatch.get(request.method)
        extra: tuple[tuple[str, str], ...] = ()
        try:
            if self.overloaded:
                raise Reply(503, "Service Unavailable", "too many connections")
            if handler is None:
                raise Reply(501, "Not Implemented", f"method {request.method[:32]!r} not implemented")
            if request.method != "OPTIONS":  # OPTIONS names no content: players discover methods first
                request = self._authenticate(request)
            response = await handler(request)
            if response.status >= 400:  # origin errors passed through, session state errors
                log.warning("%s %s -> %d %s", context(self.peer, request.cseq, session_id), request.method,
                            response.status, response.reason)
            else:
                log.debug("%s %s -> %d", context(self.peer, request.cseq, session_id), request.method,
                          response.status)
            return response
        except Reply as exc:
            status, reason, detail = exc.status, exc.reason, exc.detail
            extra = exc.headers
        except RoutingError as exc:
            status, reason, detail = exc.status, exc.reason, exc.detail
        except OriginError as exc:
            status, reason, detail = exc.status, exc.reason, exc.detail
        except RtspError as exc:
            status, reason, detail = exc.status_hint, exc.reason, str(exc)
        except OSError as exc:
            status, reason, detail = 503, "Service Unavailable", f"local resource error: {exc}"
        except Exception as exc:  # a bug of ours: answer 500, keep the connection and other players going
            log.error("%s %s -> 500 internal error: %r", context(self.peer, request.cseq, session_id),
                      request.method, exc)
            log.debug("internal error detail", exc_info=True)
            return Response(500, "Internal Server Error", Headers())
        log.warning("%s %s -> %d %s: %s", context(self.peer, request.cseq, session_id), request.method,
                    status, reason, detail)
        if status == REJECTED:
            self.ending = f"request refused ({REJECTED})"
        headers = [("Public", PUBLIC)] if status == 501 else list(extra)
        if self.overloaded:
            asyncio.get_running_loop().call_soon(self.close_connection, "too many connections")
        return Response(status, reason, Headers(headers))

    def _end_after_answer(self, why: str) -> None:
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

    def _authenticate(self, request: Request) -> Request:
        """Check the player's credentials for the content the request names (its URL, else its
        session's); the request goes on without them, so they never reach the origin."""
        target = self._protected_target(request)
        if target is None:
            return request
        name = "Proxy-Authorization" if target.forward else "Authorization"
        verdict = self.context.player_auth.check(
            target.player_auth, method=request.method, uri=request.uri,
            authorization=request.headers.get(name), address=self.peer_ip,
            now=asyncio.get_running_loop().time(), proxy=target.forward)
        if not verdict.ok:
            raise Reply(verdict.status, verdict.reason, verdict.detail, verdict.headers)
        return dataclasses.replace(request, headers=request.headers.remove(name))

    def _protected_target(self, request: Request) -> Target | None:
        try:
            target = self.target_for(request)
        except RoutingError:  # "*" or not ours: the session's content, else the handler answers
            value = request.headers.get("Session")
            session = self.context.sessions.get(value.split(";")[0].strip()) if value else None
            target = session.target if session is not None else None
        return target if target is not None and target.player_auth is not None else None

    def _claimed_session(self, request: Request, target: Target):
        """A session from the strategy that answered DESCRIBE for this presentation, if any."""
        for url, strategy in self.claimed.items():
            if is_within(request.uri, url):
                return strategy.create_session(self, request, target)
        return None

    def target_for(self, request: Request) -> Target:
        return self.context.router.resolve(request.uri, self.local_host, self.local_port,
                                           peer=self.context.cluster.trusts(request.headers, self.peer_ip))

    async def _origin_for(self, target: Target, adopt: bool) -> OriginClient:
        key = (target.origin_host, target.origin_port)
        client = self.origins.pop(key, None) if adopt else self.origins.get(key)
        if client is not None and client.is_open:
            return client
        client = await self.context.origin_connector.connect_target(target)
        if not adopt:
            self.origins[key] = client
        return client

    def _keep_for_setup(self, exchange: OriginExchange) -> None:
        """The relay's SETUP continues on the connection that DESCRIBEd (a challenge's nonce, an
        origin that ties SETUP to its DESCRIBE connection)."""
        key = (exchange.target.origin_host, exchange.target.origin_port)
        if exchange.has_client and not self.closing and key not in self.origins:
            self.origins[key] = exchange.take_client()

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
            self._keep_for_setup(exchange)
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
            session = self._claimed_session(request, target)
            if session is None:
                origin = await self._origin_for(target, adopt=True)
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
        origin = await self._origin_for(target, adopt=False)
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
