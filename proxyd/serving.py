"""How a player's presentation is served: relayed from the origin, replayed from the cache, or
split from a shared live session.

Each alternative is a `ServingStrategy`. At DESCRIBE the strategies are asked in order and the
first that answers owns the presentation for this connection; at SETUP (first SETUP of a
session) the owner creates the session object. The relay (one origin session per player) is the
fallback when no strategy claims the request.

A session object offers downstream.py what ProxySession does: `id`, `state`, `target`, `streams`,
`player_session_header`, `touch()`, `setup()`, `play()`, `pause()`, `teardown()`,
`origin_request()`, `counters_data()` and `close()`, plus `detach()` / `attach(player)` from
`Resumable` ([MS-RTSP] 3.2.7.2: a session outlives its player's TCP connection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from proxyd.rtsp.uri import is_within

if TYPE_CHECKING:
    from proxyd.downstream import PlayerConnection
    from proxyd.routing import Target
    from proxyd.rtsp.events import Request, Response


class Resumable:
    """[MS-RTSP] 3.2.7.2 for every session kind. When the player's TCP connection drops, a session in
    INIT ends at once; a READY or PLAYING one is detached: its RTP stops, it moves to READY and its
    Idle-Timeout starts (the session timer reaps it with end_reason "timeout"). A request carrying
    its Session id on a new connection from the same address adopts it (downstream.py), and PLAY
    resumes it. Each kind implements `_park()` (stop sending, keep the origin session, split
    membership or replay position) and `_unpark(player)` (rebind the streams to `player`)."""

    detached = False
    created_ip = ""  # the player address the session was created from (set by downstream.py)
    setup_uri = ""  # the player-facing URL of its first SETUP (set by downstream.py)

    def detach(self) -> None:
        if self.ended:
            return
        if self.state == "init":
            self.close("connection_lost")
            return
        self._park()
        self.state = "ready"
        self.detached = True
        self.touch()  # the Idle-Timeout runs from the drop; the session timer already runs

    def attach(self, player: PlayerConnection) -> None:
        self.player = player
        self.detached = False
        self._unpark(player)
        self.touch()

    def same_presentation(self, uri: str) -> bool:
        """`uri` names this session's presentation (its aggregate URL or the stream it set up
        first): a session id alone is not enough to adopt a session."""
        return uri.strip() == "*" or is_within(self.setup_uri, uri)


def park_relays(streams) -> list[tuple]:
    """Stop a StreamRelay-based session's output (relay, cache replay); returns what unpark needs."""
    parked = []
    for s in streams:
        parked.append((s.player_rtp_addr, s.player_rtcp_addr, s.player_writer is not None))
        s.player_rtp_addr = s.player_rtcp_addr = s.player_writer = None
    return parked


def unpark_relays(streams, parked: list[tuple], player: PlayerConnection) -> None:
    """Send again, to the same UDP client ports or on `player`'s connection with the same channels."""
    for s, (rtp, rtcp, tcp) in zip(streams, parked, strict=True):
        if tcp:
            s.player_writer = player.media_writer()
            player.register_channel(s.player_channels[1], s)
        else:
            s.player_rtp_addr, s.player_rtcp_addr = rtp, rtcp


class ServingStrategy(Protocol):
    name: str

    async def describe(self, player: PlayerConnection, request: Request, target: Target) -> Response | None:
        """Answer DESCRIBE for `target`, or None to let the next strategy (finally the relay) answer."""

    def create_session(self, player: PlayerConnection, request: Request, target: Target):
        """A new session for the first SETUP of a presentation this strategy claimed, or None."""


def strategies_for(server) -> list[ServingStrategy]:
    """The strategies of a server, in the order they are asked (built once per server)."""
    found = getattr(server, "_serving_strategies", None)
    if found is None:
        found = [factory(server) for factory in STRATEGY_FACTORIES]
        found = [s for s in found if s is not None]
        server._serving_strategies = found
    return found


def _split_strategy(server):
    from proxyd.split.strategy import split_strategy  # imported when first asked: split imports this module
    return split_strategy(server)


def _cache_strategy(server):
    from proxyd.cache.strategy import cache_strategy
    return cache_strategy(server)


# Each factory takes the ProxyServer and returns a strategy, or None when disabled by config.
# Cache first: split answers every DESCRIBE it sees (handing non-split ones to the relay); the cache
# claims only cacheable on-demand content and returns None for live, so split still gets those.
# The relay is the implicit fallback.
STRATEGY_FACTORIES: list = [_cache_strategy, _split_strategy]
