"""SplitStrategy: the serving strategy (proxyd.serving.contracts) that claims live presentations a split
may serve, and creates SplitSessions on their hub. Content it declines is left to the relay with the
same origin answer and connection (proxyd.origin.exchange)."""

from __future__ import annotations

import asyncio
import weakref

from proxyd.cluster import is_marked
from proxyd.origin.client import OriginError
from proxyd.origin.exchange import OriginExchange
from proxyd.log import context, get_logger
from proxyd.routing import Target, forward_headers, rewrite_response_headers, rewrite_sdp_controls
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.uri import is_within, url_key
from proxyd.serving.contracts import ServerContext
from proxyd.split.detect import decide_split, granted_to_peer, operator_live, permission_lifetime
from proxyd.split.hub import Hub, Reconnect
from proxyd.split.player import SplitSession
from proxyd.wm.messages import get_content_info_request

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
        if url_key(target.origin_url) in self.hubs:
            return await self.join_running(player, exchange)
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
                      forward_headers(request.headers), transport="tcp" if client.is_peer else target.transport,
                      reconnect=self._through_owner(target, request) if client.is_peer else None)
            hub.renew_permission(permission_lifetime(decision, resp.headers.get("Cache-Control")))
            hub.start()
            log.info("split %s started (%s)", target.origin_url, decision.reason)
        return self._claim(player, request, hub, hub.describe, target)

    async def join_running(self, player, exchange: OriginExchange) -> Response | None:
        """A player of a URL whose split runs joins it: no request to the origin ([MS-RTSP] 4.6.2
        step 3), unless the split permission expired (one GetContentInfo). None: no running split,
        or no longer splittable (this player gets its own origin session)."""
        target = exchange.target
        policy = target.split or self.config.split_policy
        hub = self.hubs.get(url_key(target.origin_url))
        if policy == "never" or hub is None or not hub.accepting:
            return None
        if hub.permission_expired() and not await self._renew_permission(exchange, hub, policy):
            return None
        return self._claim(player, exchange.request, hub, hub.describe, target)

    async def _renew_permission(self, exchange: OriginExchange, hub: Hub, policy: str) -> bool:
        """The split permission expired: one GetContentInfo (shared by concurrent joiners) says
        whether the origin still lets this stream be shared ([MS-WMSP] 4.12.1.2)."""
        if hub.permission_check is None:
            hub.permission_check = asyncio.ensure_future(self._ask_permission(exchange, hub, policy))
            hub.permission_check.add_done_callback(lambda _: setattr(hub, "permission_check", None))
        return await asyncio.shield(hub.permission_check)

    async def _ask_permission(self, exchange: OriginExchange, hub: Hub, policy: str) -> bool:
        headers, body = get_content_info_request([("User-Agent", exchange.request.headers.get("User-Agent") or "")])
        try:
            client = await exchange.connection()
            resp = await client.request("GET_PARAMETER", hub.origin_url, Headers(headers), body)
        except OriginError as exc:
            log.warning("split %s: GetContentInfo for the split permission failed (%s)", hub.origin_url,
                        exc.detail)
            return False
        cache_control = resp.headers.get("Cache-Control")
        decision = decide_split(resp.status, cache_control, hub.describe.body, operator_says_live=False,
                                policy=policy)
        log.info("split %s permission revalidated: %s", hub.origin_url, decision.reason)
        if not decision.split:
            return False
        hub.renew_permission(permission_lifetime(decision, cache_control))
        return True

    def _through_owner(self, target: Target, request: Request) -> Reconnect:
        """How a hub split through the URL's owner node reconnects: through its owner again (the
        next one over the nodes left when it went away, the origin when that is this node), so the
        cluster goes on with one origin session for the URL."""
        context = self.context

        async def reconnect():
            exchange = OriginExchange(target, request, context.origin_connector)
            exchange.through_owner(context.cluster, context.config.limits.cluster_connect_timeout)
            try:
                resp = await exchange.describe()
            except OriginError:
                exchange.close()
                raise
            client = exchange.take_client()
            log.info("split %s reconnecting through %s", target.origin_url,
                     client.label if client.is_peer else "the origin")
            return client, resp

        return reconnect

    def _claim(self, player, request: Request, hub: Hub, resp: Response, target: Target) -> Response:
        self.claims.setdefault(player, {})[url_key(request.uri)] = hub
        body = resp.body
        if 200 <= resp.status < 300 and body:
            body = rewrite_sdp_controls(body, target.to_player)
        headers = rewrite_response_headers(resp, target, None)
        if is_marked(request.headers) and 200 <= resp.status < 300:  # a cluster peer: it may split it too
            cache_control = ", ".join(v for n, v in headers if n.lower() == "cache-control") or None
            headers = [(n, v) for n, v in headers if n.lower() != "cache-control"]
            headers.append(("Cache-Control", granted_to_peer(cache_control)))
        return Response(resp.status, resp.reason, Headers(headers), body)

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


class SplitJoin:
    """Asked first, before the cache: joins a running split without the cache's GetContentInfo and
    DESCRIBE of a miss ([MS-RTSP] 4.6.2 step 3: a new player of a live split costs the origin
    nothing). New splits are still started by the SplitStrategy after the cache declined."""

    name = "split"

    def __init__(self, split: SplitStrategy) -> None:
        self.split = split

    async def describe(self, player, exchange: OriginExchange) -> Response | None:
        return await self.split.join_running(player, exchange)

    def create_session(self, player, request: Request, target: Target):
        return self.split.create_session(player, request, target)

    def stop(self) -> None:
        """The SplitStrategy ends the hubs."""
