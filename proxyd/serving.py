"""How a player's presentation is served: relayed from the origin, replayed from the cache, or
split from a shared live session.

Each alternative is a `ServingStrategy`. At DESCRIBE the strategies are asked in order and the
first that answers owns the presentation for this connection; at SETUP (first SETUP of a
session) the owner creates the session object. The relay (one origin session per player) is the
fallback when no strategy claims the request.

A session object offers downstream.py what ProxySession does: `id`, `state`, `target`, `streams`,
`player_session_header`, `touch()`, `setup()`, `play()`, `pause()`, `teardown()`,
`origin_request()`, `counters_data()` and `close()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from proxyd.downstream import PlayerConnection
    from proxyd.routing import Target
    from proxyd.rtsp.events import Request, Response


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


# Each factory takes the ProxyServer and returns a strategy, or None when disabled by config.
# Order matters: split (live) before cache (on demand); the relay is the implicit fallback.
STRATEGY_FACTORIES: list = []

from proxyd.split.strategy import split_strategy  # noqa: E402  (split before cache)

STRATEGY_FACTORIES.append(split_strategy)
# Cache first: split answers every DESCRIBE it sees (handing non-split ones to the relay); the cache
# claims only cacheable on-demand content and returns None for live, so split still gets those.
STRATEGY_FACTORIES.insert(0, lambda server: __import__("proxyd.cache.strategy", fromlist=["x"]).cache_strategy(server))
