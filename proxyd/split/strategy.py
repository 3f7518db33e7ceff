"""SplitStrategy: the serving strategy (proxyd.serving.contracts) that claims live presentations a split
may serve, and creates SplitSessions on their hub. Content it declines is left to the relay with the
same origin answer and connection (proxyd.origin.exchange)."""

from __future__ import annotations

import weakref

from proxyd.origin.exchange import OriginExchange
from proxyd.log import context, get_logger
from proxyd.routing import Target, forward_headers, rewrite_response_headers, rewrite_sdp_controls
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.uri import is_within, url_key
from proxyd.serving.contracts import ServerContext
from proxyd.split.detect import decide_split, operator_live
from proxyd.split.hub import Hub
from proxyd.split.player import SplitSession

log = get_logger("split")


class SplitStrategy:
    name = "split"

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.config = context.config
        self.hubs: dict[str, Hub] = {}  # url_key(origin presentation URL) -> hub (Hub.registry_key)
        # per player connection: url_key(claimed player-facing URL) -> hub
        self.claims: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _path(self, target: Target) -> str:
        return "/" + target.to_player(target.origin_url).split("://", 1)[-1].partition("/")[2]

    async def describe(self, player, exchange: OriginExchange) -> Response | None:
        request, target = exchange.request, exchange.target
        policy = target.split or self.config.split_policy  # the origin row's, else --split
        if policy == "never":
            return None
        operator = target.live or operator_live(self._path(target), self.config.live_prefixes)
        hub = self.hubs.get(url_key(target.origin_url))
        if hub is not None and hub.accepting:
            return self._claim(player, request, hub, hub.describe, target)
        if "authorization" in request.headers:
            # The player's own credentials: never split, and the relay answers on the connection
            # that challenged it (Digest nonces may be per connection).
            return None
        resp = await exchange.describe()  # the cache's answer when it asked already
        decision = decide_split(resp.status, resp.headers.get("Cache-Control"), resp.body,
                                operator_says_live=operator, policy=policy)
        log.debug("%s split decision for %s: %s", context(player.peer, request.cseq), target.origin_url,
                  decision)
        if not decision.split:
            return None  # the relay serves it with the same answer and connection
        hub = self.hubs.get(url_key(target.origin_url))
        if hub is None or not hub.accepting:  # else another player created it while we waited
            client = exchange.take_client()
            hub = Hub(self.context, self.hubs, target.origin_url, resp, client,
                      forward_headers(request.headers), transport="tcp" if client.is_peer else target.transport)
            hub.start()
            log.info("split %s started (%s)", target.origin_url, decision.reason)
        return self._claim(player, request, hub, hub.describe, target)

    def _claim(self, player, request: Request, hub: Hub, resp: Response, target: Target) -> Response:
        self.claims.setdefault(player, {})[url_key(request.uri)] = hub
        body = resp.body
        if 200 <= resp.status < 300 and body:
            body = rewrite_sdp_controls(body, target.to_player)
        return Response(resp.status, resp.reason, Headers(rewrite_response_headers(resp, target, None)), body)

    def stop(self) -> None:
        """Server shutdown: end every hub now (lingering ones too), tearing down origin sessions."""
        for hub in list(self.hubs.values()):
            hub.end("shutdown")

    def create_session(self, player, request: Request, target: Target):
        for url, hub in self.claims.get(player, {}).items():
            if is_within(request.uri, url):
                if not hub.accepting:
                    return None
                return SplitSession(self.context, player, target, hub)
        return None
