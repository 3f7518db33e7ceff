"""SplitStrategy: the serving strategy (proxyd/serving.py) that claims live presentations a split
may serve, and creates SplitSessions on their hub. Content it declines after asking the origin is
answered as the relay would (and the origin connection is left for the relay's SETUP)."""

from __future__ import annotations

import weakref

from proxyd.log import context, get_logger
from proxyd.routing import Target, forward_headers, rewrite_response_headers, rewrite_sdp_controls
from proxyd.rtp.errors import SdpError
from proxyd.rtp.sdp import parse_sdp
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.uri import content_base, is_within, url_key
from proxyd.split.detect import decide_split, operator_live
from proxyd.split.hub import Hub
from proxyd.split.player import SplitSession
from proxyd.upstream import OriginClient

log = get_logger("split")


class SplitStrategy:
    name = "split"

    def __init__(self, server) -> None:
        self.server = server
        self.config = server.config
        self.hubs: dict[str, Hub] = {}  # url_key(origin presentation URL) -> hub (Hub.registry_key)
        # per player connection: url_key(claimed player-facing URL) -> hub (None: declined, the relay serves)
        self.claims: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _path(self, target: Target) -> str:
        return "/" + target.to_player(target.origin_url).split("://", 1)[-1].partition("/")[2]

    async def describe(self, player, request: Request, target: Target) -> Response | None:
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
        limits = self.server.parser_limits
        origin = await OriginClient.connect(target.origin_host, target.origin_port, limits=limits,
                                            connect_timeout=self.config.limits.origin_connect_timeout,
                                            response_timeout=self.config.limits.origin_response_timeout,
                                            credentials=target.credentials)
        try:
            resp = await origin.request("DESCRIBE", target.origin_url, forward_headers(request.headers))
        except BaseException:
            origin.close()
            raise
        decision = decide_split(resp.status, resp.headers.get("Cache-Control"), resp.body,
                                operator_says_live=operator, policy=policy)
        log.debug("%s split decision for %s: %s", context(player.peer, request.cseq), target.origin_url,
                  decision)
        if not decision.split:
            self._hand_to_relay(player, origin, target, resp)
            return self._claim(player, request, None, resp, target)
        hub = self.hubs.get(url_key(target.origin_url))
        if hub is not None and hub.accepting:  # another player created it while we waited
            origin.close()
        else:
            hub = Hub(self.server, self.hubs, target.origin_url, resp, origin,
                      forward_headers(request.headers), transport=target.transport)
            hub.start()
            log.info("split %s started (%s)", target.origin_url, decision.reason)
        return self._claim(player, request, hub, hub.describe, target)

    def _claim(self, player, request: Request, hub: Hub | None, resp: Response, target: Target) -> Response:
        self.claims.setdefault(player, {})[url_key(request.uri)] = hub
        body = resp.body
        if 200 <= resp.status < 300 and body:
            body = rewrite_sdp_controls(body, target.to_player)
        return Response(resp.status, resp.reason, Headers(rewrite_response_headers(resp, target, None)), body)

    def _hand_to_relay(self, player, origin: OriginClient, target: Target, resp: Response) -> None:
        """Leave the DESCRIBE connection and the clock rates where the relay's SETUP looks for them."""
        key = (target.origin_host, target.origin_port)
        if key in player.origins or player.closing:
            origin.close()
        else:
            player.origins[key] = origin
        if 200 <= resp.status < 300 and resp.body:
            try:
                sdp = parse_sdp(resp.body)
            except SdpError:
                return
            base = content_base(resp.headers, target.origin_url)
            for url, media in zip(sdp.media_urls(base), sdp.media, strict=True):
                player.clock_rates[url_key(target.to_player(url))] = media.clock_rate or 90000

    def stop(self) -> None:
        """Server shutdown: end every hub now (lingering ones too), tearing down origin sessions."""
        for hub in list(self.hubs.values()):
            hub.end("shutdown")

    def create_session(self, player, request: Request, target: Target):
        for url, hub in self.claims.get(player, {}).items():
            if is_within(request.uri, url):
                if hub is None or not hub.accepting:
                    return None
                return SplitSession(self.server, player, target, hub)
        return None


def split_strategy(server) -> SplitStrategy | None:
    if server.config.split_policy == "never":
        return None
    return SplitStrategy(server)
