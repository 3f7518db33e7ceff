"""The serving contracts: what the player connection, the strategies, the sessions and wmext may use
of each other, declared once. Nothing here is found by getattr/hasattr: a member is either in
the Protocol or not used.

- `ServerContext`: the node's shared state (config, routes, session registry, report sink, task
  spawning, Windows Media state, content-info sources, serving strategies). Built by the app
  (proxyd.app.server) and handed to everything below it instead of the server object.
- `Player`: what sessions, strategies and wmext use of a player's RTSP connection.
- `PlayerSession`: every member the dispatcher, timers, resume, reports and wmext use of a session
  (relay ProxySession, cache ReplaySession, SplitSession).
- `ServingStrategy`: asked at DESCRIBE in order (cache, split); the relay is the fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Protocol

from proxyd.cluster import Membership, Peer
from proxyd.config import Config
from proxyd.control.reports import NullSink, ReportSink
from proxyd.log import get_logger
from proxyd.net.tls import OriginTls
from proxyd.origin.client import OriginConnector
from proxyd.routing import Router, Target
from proxyd.rtsp.connection import ParserLimits
from proxyd.rtsp.events import Request, Response
from proxyd.rtsp.headers import TransportSpec
from proxyd.rtsp.player_auth import PlayerAuthenticator
from proxyd.wm.state import WmState

if TYPE_CHECKING:
    from proxyd.origin.exchange import OriginExchange
    from proxyd.origin.stream_relay import InterleavedWriter

log = get_logger("server")


class ServerContext:
    """Everything a connection, a strategy or a session needs of the node it runs in."""

    def __init__(self, config: Config, reporter: ReportSink | None = None) -> None:
        self.config = config
        self.router = Router(config)
        self.reporter: ReportSink = reporter or NullSink()
        limits = config.limits
        self.parser_limits = ParserLimits(max_header_bytes=limits.max_header_bytes,
                                          max_headers=limits.max_headers,
                                          max_body_bytes=limits.max_body_bytes)
        origin_tls = OriginTls(config.tls.origin_ca_file, config.tls.origin_verify)
        self.origin_connector = OriginConnector(self.parser_limits, limits.origin_connect_timeout,
                                                limits.origin_response_timeout, origin_tls)
        self.sessions: dict[str, PlayerSession] = {}
        self.connections: set[Player] = set()
        self.background: set[asyncio.Task] = set()
        self.wm = WmState()
        self.player_auth = PlayerAuthenticator(  # nonces and failure counts shared by every connection
            max_failures=limits.auth_max_failures, failure_window=limits.auth_failure_window,
            nonce_lifetime=limits.auth_nonce_lifetime, max_nonces=limits.auth_max_nonces,
            max_addresses=limits.auth_max_addresses)
        # the cache cluster (proxyd.cluster): from --cluster-peer here, else the control-plane snapshot
        self.cluster = Membership(peer_retry=limits.cluster_peer_retry)
        if config.cluster_peers:
            self.cluster.configure(Peer(*config.cluster_self), [Peer(h, p) for h, p in config.cluster_peers],
                                   config.cluster_id)
        # Registered by the app when it builds the strategies (proxyd.app.strategies):
        self.strategies: list[ServingStrategy] = []
        self.content_info_sources: list[Callable[[str], object]] = []  # origin URL -> ContentInfo | None

    def emit(self, kind: str, data: dict) -> None:
        try:
            self.reporter.emit(kind, data)
        except Exception:  # the sink contract says never raises; a broken one must not stop media
            log.exception("report sink failed for %s", kind)

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        """A background task the server waits for (up to shutdown_grace) when it stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def add_connection(self, conn: Player) -> bool:
        self.connections.add(conn)
        return len(self.connections) <= self.config.limits.max_connections

    def connections_from(self, address: str) -> int:
        return sum(1 for c in self.connections if c.peer_ip == address)  # per accept, not per packet

    def remove_connection(self, conn: Player) -> None:
        self.connections.discard(conn)

    def forget_session(self, session: PlayerSession) -> None:
        self.sessions.pop(session.id, None)


class Player(Protocol):
    """A player's RTSP connection (proxyd.player.connection.PlayerConnection)."""

    context: ServerContext
    peer: str
    peer_ip: str
    local_host: str
    local_port: int
    user_agent: str
    transport: asyncio.Transport | None
    sessions: dict[str, PlayerSession]

    @property
    def is_open(self) -> bool: ...

    def media_writer(self) -> InterleavedWriter: ...

    def register_channel(self, channel: int, stream) -> None:
        """RTCP from the player on interleaved `channel` goes to `stream.rtcp_from_player`."""

    def unregister_stream(self, stream) -> None:
        """Forget `stream`'s interleaved channels (a deselected stream)."""

    def forget_session(self, session: PlayerSession) -> None: ...

    def send_server_request(self, request: Request) -> None: ...

    def close_connection(self, why: str) -> None: ...

    def session_for(self, request: Request, required: bool = True) -> PlayerSession | None:
        """The session named by the request's Session header (454/455 raised as a reply)."""

    def target_for(self, request: Request) -> Target: ...


class PlayerSession(Protocol):
    id: str
    state: str  # init | ready | playing
    target: Target
    player: Player
    streams: list
    ended: bool
    detached: bool
    created_ip: str
    setup_uri: str
    started_reported: bool

    @property
    def player_session_header(self) -> str: ...

    @property
    def presentation_url(self) -> str:
        """The origin URL of the presentation (aggregate), for reports and WM messages."""

    @property
    def pipelines_select_streams(self) -> bool:
        """Its SelectStreams (stream SETUP/TEARDOWN) may run side by side, relayed upstream
        pipelined ([MS-RTSP] 3.1.4.3.1, 3.1.4.5); False: the connection takes them one by one."""

    def addressed_stream(self, request: Request) -> object | None:
        """The stream a request's URL names (SelectStream), None for the aggregate URL."""

    async def deselect(self, request: Request) -> Response:
        """TEARDOWN of one stream (SelectStream, [MS-RTSP] 4.4.5): the session stays."""

    def touch(self) -> None: ...

    def admit_transaction(self, method: str) -> bool:
        """False past --session-max-transactions this heartbeat ([MS-RTSP] 3.2.5.1: 503)."""

    async def setup(self, request: Request, origin_url: str, spec: TransportSpec, clock_rate: int) -> Response: ...

    async def play(self, request: Request) -> Response: ...

    async def pause(self, request: Request) -> Response: ...

    async def teardown(self, request: Request) -> Response: ...

    async def origin_request(self, request: Request, timeout: float | None = None) -> Response: ...

    def counters_data(self) -> dict: ...

    def close(self, reason: str, detail: str = "", *, origin_teardown: bool = True) -> None: ...

    def detach(self) -> None: ...

    def attach(self, player: Player) -> None: ...

    def same_presentation(self, uri: str) -> bool: ...


class ServingStrategy(Protocol):
    name: str

    async def describe(self, player: Player, exchange: OriginExchange) -> Response | None:
        """Answer DESCRIBE for `exchange.target`, or None to let the next strategy (finally the
        relay) answer; the origin is asked through `exchange` only."""

    def create_session(self, player: Player, request: Request, target: Target) -> PlayerSession | None:
        """A new session for the first SETUP of a presentation this strategy claimed, or None."""

    def stop(self) -> None:
        """Server shutdown: release shared origin sessions (split hubs); may do nothing."""
