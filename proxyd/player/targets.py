"""A player connection's target and auth resolution: which content a request names, whether the
player may have it, and the origin connections and strategy claims the connection keeps for it."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Protocol

from proxyd.origin.client import OriginClient
from proxyd.origin.exchange import OriginExchange
from proxyd.player.reply import Reply
from proxyd.routing import RoutingError, Target
from proxyd.rtsp.events import Request
from proxyd.rtsp.uri import is_within
from proxyd.serving.contracts import Player


class ResolvingConnection(Player, Protocol):
    """What target resolution needs from the player connection."""

    closing: bool
    origins: dict[tuple[str, int], OriginClient]  # DESCRIBE connections, adopted by SETUP
    claimed: dict[str, object]  # url_key(player-facing presentation URL) -> owning strategy


class TargetResolution:
    def __init__(self, connection: ResolvingConnection) -> None:
        self.connection = connection
        self.context = connection.context

    def authenticate(self, request: Request) -> Request:
        """Check the player's credentials for the content the request names (its URL, else its
        session's); the request goes on without them, so they never reach the origin."""
        target = self.protected_target(request)
        if target is None:
            return request
        name = "Proxy-Authorization" if target.forward else "Authorization"
        verdict = self.context.player_auth.check(
            target.player_auth, method=request.method, uri=request.uri,
            authorization=request.headers.get(name), address=self.connection.peer_ip,
            now=asyncio.get_running_loop().time(), proxy=target.forward)
        if not verdict.ok:
            raise Reply(verdict.status, verdict.reason, verdict.detail, verdict.headers)
        return dataclasses.replace(request, headers=request.headers.remove(name))

    def protected_target(self, request: Request) -> Target | None:
        try:
            target = self.target_for(request)
        except RoutingError:  # "*" or not ours: the session's content, else the handler answers
            value = request.headers.get("Session")
            session = self.context.sessions.get(value.split(";")[0].strip()) if value else None
            target = session.target if session is not None else None
        return target if target is not None and target.player_auth is not None else None

    def claimed_session(self, request: Request, target: Target):
        """A session from the strategy that answered DESCRIBE for this presentation, if any."""
        for url, strategy in self.connection.claimed.items():
            if is_within(request.uri, url):
                return strategy.create_session(self.connection, request, target)
        return None

    def target_for(self, request: Request) -> Target:
        connection = self.connection
        return self.context.router.resolve(request.uri, connection.local_host, connection.local_port,
                                           peer=self.context.cluster.trusts(request.headers, connection.peer_ip))

    async def origin_for(self, target: Target, adopt: bool) -> OriginClient:
        origins = self.connection.origins
        key = (target.origin_host, target.origin_port)
        client = origins.pop(key, None) if adopt else origins.get(key)
        if client is not None and client.is_open:
            return client
        client = await self.context.origin_connector.connect_target(target)
        if not adopt:
            origins[key] = client
        return client

    def keep_for_setup(self, exchange: OriginExchange) -> None:
        """The relay's SETUP continues on the connection that DESCRIBEd (a challenge's nonce, an
        origin that ties SETUP to its DESCRIBE connection)."""
        key = (exchange.target.origin_host, exchange.target.origin_port)
        if exchange.has_client and not self.connection.closing and key not in self.connection.origins:
            self.connection.origins[key] = exchange.take_client()
