"""Origin-facing RTSP client: one TCP connection, requests matched to responses by CSeq,
interleaved media frames and origin-initiated requests (EndOfStream, ANNOUNCE) handed to callbacks.

With credentials (the route's, from the control-plane origin row) the client authenticates itself:
a 401 is answered by sending the same request again with Authorization (proxyd.rtsp.auth: Basic or
Digest, a stale nonce once more), later requests on the connection carry it from the start, and a
player's own Authorization is never forwarded. Without credentials requests go as given (a
player's Authorization included) and a 401 is returned to the caller. Authorization values and
passwords are never logged.

rtsps:// origins are reached over TLS (proxyd.net.tls: TLS 1.2+, the certificate checked against
--origin-ca-file or the system store and the origin's host name, unless the route turns checking
off); a failed handshake is a 502 like a refused connection, counted as kind tls_failed."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from proxyd.cluster import Membership, Peer
from proxyd.config import format_hostport
from proxyd.log import get_logger
from proxyd.metrics.counters import ORIGIN_ERRORS, ORIGIN_REQUEST_SECONDS, ORIGIN_RESPONSES, method_label
from proxyd.net.tls import OriginTls, TlsConfigError
from proxyd.rtsp.auth import ClientAuth, Credentials
from proxyd.rtsp.connection import ParserLimits, Role, RtspConnection
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed, Headers, InterleavedFrame, Request, Response
from proxyd.rtsp.uri import split_rtsp_url
from proxyd.origin.wm_identity import decorate_upstream

log = get_logger("upstream")


class OriginError(Exception):
    """The origin could not be reached or did not answer; carries the status to give the player."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class OriginConnector:
    """The one way to open an origin connection: the node's parser limits and timeouts bound once."""

    parser_limits: ParserLimits
    connect_timeout: float
    response_timeout: float
    tls: OriginTls = field(default_factory=OriginTls)  # client contexts for rtsps:// origins

    async def connect(self, host: str, port: int, credentials: Credentials | None = None, *,
                      tls: bool = False, verify: bool = True) -> OriginClient:
        try:
            context = self.tls.context(verify) if tls else None
        except TlsConfigError as exc:
            raise OriginError(502, "Bad Gateway", f"no TLS client context for {host}:{port}: {exc}") from None
        client = await OriginClient.connect(host, port, limits=self.parser_limits,
                                            connect_timeout=self.connect_timeout,
                                            response_timeout=self.response_timeout, credentials=credentials,
                                            tls=context)
        client.tls, client.tls_verify = tls, verify  # so a reconnect (split hub) reaches it the same way
        return client

    async def connect_peer(self, peer: Peer, membership: Membership, connect_timeout: float) -> OriginClient:
        """To the cluster peer owning a URL (a chained proxy): from this node's own address (so the
        peer knows it as a member), every request marked; no origin credentials (the owner has its
        own)."""
        return await OriginClient.connect(peer.host, peer.port, limits=self.parser_limits,
                                          connect_timeout=connect_timeout, response_timeout=self.response_timeout,
                                          local_host=membership.me.host, mark=membership.mark())

    async def connect_target(self, target) -> OriginClient:
        """For a routing.Target: its origin's host, port and scheme, the route's credentials."""
        return await self.connect(target.origin_host, target.origin_port, target.credentials,
                                  tls=target.origin_tls, verify=target.tls_verify)

    async def connect_url(self, url: str, credentials: Credentials | None = None) -> OriginClient:
        """For an absolute origin URL (rtsp:// or rtsps://, IPv6 literals in brackets)."""
        parts = split_rtsp_url(url)
        return await self.connect(parts.host, parts.port, credentials, tls=parts.scheme == "rtsps")


class OriginClient(asyncio.Protocol):
    def __init__(self, host: str, port: int, *, limits: ParserLimits, response_timeout: float,
                 credentials: Credentials | None = None, mark: tuple[tuple[str, str], ...] = ()) -> None:
        self.host = host
        self.mark = mark  # headers every request carries (the cluster peer mark)
        self.port = port
        self.label = format_hostport(host, port)  # proxyd.metrics origin label
        self.credentials = credentials
        self.tls = False  # reached over TLS (an rtsps:// origin)
        self.tls_verify = True
        self.auth = ClientAuth(credentials) if credentials is not None else None
        self.conn = RtspConnection(Role.CLIENT, limits)
        self.response_timeout = response_timeout
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self._cseq = 0
        self.closed = asyncio.Event()
        self.on_frame: Callable[[int, bytes], None] | None = None
        self.on_request: Callable[[Request], None] | None = None
        self.on_lost: Callable[[str], None] | None = None
        self.on_flush: Callable[[], None] | None = None

    @classmethod
    async def connect(cls, host: str, port: int, *, limits: ParserLimits, connect_timeout: float,
                      response_timeout: float, credentials: Credentials | None = None,
                      tls: ssl.SSLContext | None = None, local_host: str | None = None,
                      mark: tuple[tuple[str, str], ...] = ()) -> OriginClient:
        loop = asyncio.get_running_loop()
        client = cls(host, port, limits=limits, response_timeout=response_timeout, credentials=credentials,
                     mark=mark)
        try:
            async with asyncio.timeout(connect_timeout):
                await loop.create_connection(lambda: client, host, port, ssl=tls,
                                             server_hostname=host if tls is not None else None,
                                             local_addr=(local_host, 0) if local_host else None)
        except TimeoutError:
            ORIGIN_ERRORS.inc(format_hostport(host, port), "connect_timeout")
            raise OriginError(504, "Gateway Timeout", f"connect to {host}:{port} timed out") from None
        except ssl.SSLError as exc:  # before OSError: SSLError is one
            ORIGIN_ERRORS.inc(format_hostport(host, port), "tls_failed")
            raise OriginError(502, "Bad Gateway", f"TLS with {format_hostport(host, port)} failed: "
                                                  f"{exc.reason or exc}") from None
        except OSError as exc:
            ORIGIN_ERRORS.inc(format_hostport(host, port), "connect_refused")
            raise OriginError(502, "Bad Gateway",
                              f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        return client

    @property
    def is_peer(self) -> bool:
        """A connection to a cache-cluster peer (chained proxy): its media always comes over TCP."""
        return bool(self.mark)

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.closed.is_set()

    async def request(self, method: str, url: str, headers: Headers | None = None,
                      body: bytes = b"") -> Response:
        """Send one request and return its response (any status); raises OriginError when the origin
        cannot be asked or does not answer in time."""
        headers = headers or Headers()
        if self.auth is None:
            return await self._exchange(method, url, headers, body)
        headers = headers.remove("Authorization")  # we are the client: never the player's credentials
        attempt = self.auth.attempt(method, url, body)
        while True:
            value = attempt.header()
            sent = headers.set("Authorization", value) if value else headers
            resp = await self._exchange(method, url, sent, body)
            if attempt.retry(resp.status, resp.headers.get_all("WWW-Authenticate")):
                log.debug("origin=%s:%s %s challenge (realm %r) on %s: answering as user %r", self.host,
                          self.port, self.auth.challenge.scheme, self.auth.challenge.realm, method,
                          self.credentials.username)
                continue
            if attempt.outcome:
                log.warning("origin=%s:%s answered %s with 401 (%s%s) for the configured user %r", self.host,
                            self.port, method, attempt.outcome, f": {attempt.error}" if attempt.error else "",
                            self.credentials.username)
            return resp

    async def _exchange(self, method: str, url: str, headers: Headers, body: bytes) -> Response:
        if not self.is_open:
            ORIGIN_ERRORS.inc(self.label, "connection_closed")
            raise OriginError(502, "Bad Gateway", f"origin {self.host}:{self.port} connection is closed")
        self._cseq += 1
        cseq = self._cseq
        try:
            headers = decorate_upstream(method, headers).set("CSeq", str(cseq))
            for name, value in self.mark:
                headers = headers.set(name, value)
            data = self.conn.send_request(Request(method, url, headers, body))
        except RtspError as exc:
            ORIGIN_ERRORS.inc(self.label, "send_failed")
            raise OriginError(502, "Bad Gateway", f"cannot send {method} upstream: {exc}") from None
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.pending[cseq] = future
        self.transport.write(data)
        sent_at = time.monotonic()
        try:
            async with asyncio.timeout(self.response_timeout):
                response = await future
        except TimeoutError:
            ORIGIN_ERRORS.inc(self.label, "response_timeout")
            raise OriginError(504, "Gateway Timeout", f"origin did not answer {method} in "
                                                      f"{self.response_timeout}s") from None
        except OriginError:  # the connection was lost while waiting
            ORIGIN_ERRORS.inc(self.label, "connection_closed")
            raise
        finally:
            self.pending.pop(cseq, None)
        ORIGIN_REQUEST_SECONDS.observe(time.monotonic() - sent_at, self.label, method_label(method))
        ORIGIN_RESPONSES.inc(self.label, str(response.status))
        return response

    async def teardown_and_close(self, url: str, origin_session: str, timeout: float = 2.0) -> None:
        """Best-effort TEARDOWN of an origin session, then close the connection."""
        try:
            async with asyncio.timeout(timeout):
                await self.request("TEARDOWN", url, Headers([("Session", origin_session)]))
        except (OriginError, TimeoutError):
            pass
        finally:
            self.close()

    def send_frame(self, channel: int, payload: bytes) -> None:
        if self.is_open:
            self.transport.write(self.conn.send_frame(channel, payload))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._fail_pending("closed")

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        self._drain_events()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self._drain_events()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self._fail_pending("connection lost")
        if self.on_lost is not None:
            self.on_lost("origin closed the connection")

    def _drain_events(self) -> None:
        conn = self.conn
        try:
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    break
                if isinstance(event, InterleavedFrame):
                    if self.on_frame is not None:
                        self.on_frame(event.channel, event.payload)
                elif isinstance(event, Response):
                    future = self.pending.get(event.cseq) if event.cseq is not None else None
                    if future is not None and not future.done():
                        future.set_result(event)
                elif isinstance(event, Request):
                    self._answer_origin_request(event)
                elif isinstance(event, ConnectionClosed):
                    self.transport.close()
                    break
        except RtspError as exc:
            log.warning("origin=%s:%s protocol error from origin: %s", self.host, self.port, exc)
            self._fail_pending(f"protocol error: {exc}")
            self.transport.close()

    def _answer_origin_request(self, request: Request) -> None:
        known = request.method in ("SET_PARAMETER", "GET_PARAMETER", "ANNOUNCE", "OPTIONS")
        headers = [("CSeq", str(request.cseq if request.cseq is not None else 0))]
        if request.headers.get("Session"):
            headers.append(("Session", request.headers.get("Session").split(";")[0]))
        status, reason = (200, "OK") if known else (501, "Not Implemented")
        self.transport.write(self.conn.send_response(Response(status, reason, Headers(headers))))
        if known and request.method != "OPTIONS" and self.on_request is not None:
            self.on_request(request)

    def _fail_pending(self, why: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(OriginError(502, "Bad Gateway",
                                                 f"origin {self.host}:{self.port}: {why}"))
