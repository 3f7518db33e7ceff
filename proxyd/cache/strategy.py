"""CacheStrategy: the serving strategy for on-demand content (asked at DESCRIBE after split).

Fresh hit: DESCRIBE answered from the store, no origin contact. Stale: revalidated with the
client role (GetContentInfo for Windows Media origins, DESCRIBE + comparison otherwise);
unchanged extends freshness, changed purges and fills again, unreachable serves stale within the
operator's stale-if-error window or falls back to the relay (which answers the spec's error).
Miss of cacheable content: one Fill per URL; every player of that URL is replayed from it.
Anything not cacheable goes to the relay with the origin's DESCRIBE answer passed through.
"""

from __future__ import annotations

import asyncio
import time
import weakref

from proxyd.cache.freshness import OriginPolicy, decide, describe_changed, policy_from_flags, validators_of
from proxyd.cache.media import EntryMedia
from proxyd.cache.prestuff import prestuff
from proxyd.cache.recorder import Fill, describe_body
from proxyd.cache.replay import ReplaySession, ReplaySource
from proxyd.cache.store import CacheStore, Entry
from proxyd.log import get_logger
from proxyd.metrics.counters import CACHE_LOOKUPS, CACHE_REVALIDATIONS
from proxyd.routing import forward_headers, rewrite_response_headers, rewrite_sdp_controls
from proxyd.rtsp.events import Headers, Response
from proxyd.rtsp.uri import is_within, url_key
from proxyd.upstream import OriginClient, OriginError
from proxyd.wm.cache_control import parse_cache_control, reemit_for_hit
from proxyd.wm.messages import get_content_info_request
from proxyd.wm.supported import parse_supported
from proxyd.wm.validators import comparable, content_changed
from proxyd.wmext.playlist import generation_mismatch, parse_gen_id

log = get_logger("cache")

DEFAULT_MAX_BYTES = 1 << 30


class CacheStrategy:
    name = "cache"

    def __init__(self, server) -> None:
        self.server = server
        config = server.config
        self.store = CacheStore(config.cache_dir, max_bytes=getattr(config, "cache_max_bytes", DEFAULT_MAX_BYTES),
                                emit=server.emit).open()
        server.cache_store = self.store  # proxyd.snapshot_apply purges through it
        self.default_policy = policy_from_flags(getattr(config, "cache_ttl", None),
                                                getattr(config, "stale_if_error", 0))
        self.origin_policies: dict[str, OriginPolicy] = {}  # origin base URL -> policy (snapshot)
        # the three below are keyed by url_key(origin URL)
        self.fills: dict[str, Fill] = {}
        self.describing: dict[str, asyncio.Future] = {}  # a miss DESCRIBE in flight
        self.loaded: dict[str, tuple[Entry, EntryMedia]] = {}
        # player -> {url_key(player-facing presentation URL): source maker}
        self.claims: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # --- operator policy ---
    def set_origin_policies(self, origins) -> None:
        """Per-origin policy from the control-plane snapshot (objects with base_url, cache_policy,
        cache_ttl, stale_if_error, live); replaces the previous set."""
        policies = {}
        for o in origins:
            kind = "never" if getattr(o, "live", False) else o.cache_policy
            if kind in ("obey", "force_ttl", "never"):
                policies[o.base_url.rstrip("/")] = OriginPolicy(kind, int(o.cache_ttl), int(o.stale_if_error))
        self.origin_policies = policies

    async def prestuff(self, url: str) -> bool:
        """Fill an origin URL ahead of players (control-plane prestuff); see proxyd.cache.prestuff."""
        return await prestuff(self, url)

    def policy_for(self, url: str) -> OriginPolicy:
        best = ""
        for base in self.origin_policies:
            if is_within(url, base) and len(url_key(base)) > len(url_key(best)):
                best = base
        return self.origin_policies[best] if best else self.default_policy

    def live_by_operator(self, player, request) -> bool:
        path = request.uri.split("://", 1)[-1].partition("/")[2]
        prefixes = getattr(self.server.config, "live_prefixes", ()) or ()
        return any(("/" + path).startswith(p.rstrip("/") + "/") or "/" + path.rstrip("/") == p.rstrip("/")
                   for p in prefixes)

    # --- ServingStrategy ---
    async def describe(self, player, request, target) -> Response | None:
        url = target.origin_url.rstrip("/")
        policy = self.policy_for(url)
        if policy.policy == "never" or self.live_by_operator(player, request) \
                or getattr(self.server.config, "split_policy", "auto") == "always":
            return None
        if "authorization" in request.headers:
            # The player's own credentials: never cached, and the relay answers on the connection
            # that challenged it (Digest nonces may be per connection).
            return None
        now = time.time()
        entry = self.store.lookup(url)
        CACHE_LOOKUPS.inc("miss" if entry is None else "hit" if entry.fresh(now) else "stale")
        if entry is not None:
            if entry.fresh(now):
                return await self._hit(player, request, target, entry, now)
            self.store.mark_stale(entry)
            return await self._revalidate(player, request, target, entry, policy, now)
        key = url_key(url)
        fill = self.fills.get(key)
        if fill is not None:
            return self._follow(player, request, target, fill)
        pending = self.describing.get(key)
        if pending is not None:  # another player's miss is asking the origin: share its outcome
            await asyncio.shield(pending)
            return await self.describe(player, request, target)
        self.describing[key] = self.loop_future()
        try:
            try:
                client = await self._connect(target)
                resp = await client.request("DESCRIBE", target.origin_url, forward_headers(request.headers))
            except OriginError as exc:
                log.info("cache: origin DESCRIBE of %s failed (%s); relaying", url, exc.detail)
                return None  # the relay tries and answers the error
            return self._after_describe(player, request, target, url, client, resp, policy)
        finally:
            self.describing.pop(key).set_result(None)

    @staticmethod
    def loop_future() -> asyncio.Future:
        return asyncio.get_running_loop().create_future()

    def create_session(self, player, request, target):
        makers = self.claims.get(player) or {}
        for presentation, make in makers.items():
            if is_within(request.uri, presentation):
                return make(player, target) if make is not None else None
        return None

    # --- paths ---
    def _claim(self, player, request, make) -> None:
        self.claims.setdefault(player, {})[url_key(request.uri)] = make

    def _after_describe(self, player, request, target, url, client, resp, policy) -> Response:
        decision = decide(resp, policy, live_by_operator=False)
        if decision.reason in ("live", "broadcast"):
            client.close()
            return None  # live: the split strategy (or the relay) serves it
        if resp.status != 200 or not decision.cacheable or url_key(url) in self.fills:
            if resp.status in (401, 407):
                hand_to_relay(player, target, client)  # the player's retry goes on the challenged connection
            else:
                client.close()
            self._claim(player, request, None)
            log.debug("cache: %s not cached (%s)", url, decision.reason)
            return self._passthrough(player, target, resp)
        fill = Fill(self.store, client, describe_body(url, resp, decision, time.time()),
                    max_bytes=self.store.max_bytes, on_done=self._fill_done)
        self.fills[url_key(url)] = fill.start()
        return self._follow(player, request, target, fill)

    def _fill_done(self, fill: Fill) -> None:
        if self.fills.get(url_key(fill.url)) is fill:
            del self.fills[url_key(fill.url)]

    def _follow(self, player, request, target, fill: Fill) -> Response:
        """A player of a URL being filled: replayed from the growing recording."""
        def make(player, target):
            source = ReplaySource(fill.media, [s.control for s in fill.streams],
                                  [s.clock_rate for s in fill.streams],
                                  [s.rtptime0 for s in fill.streams], fill.duration,
                                  release=lambda n: None, served_from="origin", content_url=fill.url,
                                  gen_id=stored_gen_id(fill.body))
            return ReplaySession(self.server, player, target, source)

        self._claim(player, request, make)
        return self._sdp_response(target, fill.body, None)

    async def _hit(self, player, request, target, entry: Entry, now: float) -> Response | None:
        stale_generation = generation_mismatch(request, stored_gen_id(entry.body))
        if stale_generation is not None:  # 3.2.5.1 step 3, as the origin would answer it
            return stale_generation
        key = url_key(entry.url)
        loaded = self.loaded.get(key)
        if loaded is None or loaded[0] is not entry:
            media = await asyncio.to_thread(self.store.read_media, entry)
            if media is None:
                self.store.purge(url=entry.url)
                return None
            self.loaded[key] = (entry, media)
        media = self.loaded[key][1]
        body = entry.body

        def release(bytes_served: int) -> None:
            self.store.release(entry, bytes_served)
            if entry.users <= 0 and self.loaded.get(key, (None,))[0] is entry:
                del self.loaded[key]

        def make(player, target):
            self.store.acquire(entry)
            streams = body["streams"]
            source = ReplaySource(media, [s["control"] for s in streams], [s["clock_rate"] for s in streams],
                                  [s["rtptime0"] for s in streams], body.get("duration"), release=release,
                                  content_url=entry.url, gen_id=stored_gen_id(body))
            return ReplaySession(self.server, player, target, source)

        self._claim(player, request, make)
        age = now - float(body.get("fetched_at", now))
        return self._sdp_response(target, body, age)

    def _sdp_response(self, target, body: dict, age: float | None) -> Response:
        headers = [("Content-Type", "application/sdp"),
                   ("Content-Base", target.to_player(body["content_base"]))]
        for name, value in body.get("headers", []):
            if name.lower() in ("last-modified", "etag", "supported", "x-playlist-gen-id"):
                headers.append((name, value))
        cc = body.get("cache_control")
        if cc:
            value = reemit_for_hit(parse_cache_control(cc), age_seconds=age or 0)
            if value:
                headers.append(("Cache-Control", value))
        sdp = rewrite_sdp_controls(body["sdp"].encode("latin-1"), target.to_player)
        return Response(200, "OK", Headers(headers), sdp)

    def _passthrough(self, player, target, resp: Response) -> Response:
        """The origin's DESCRIBE answer for the relay (as downstream.on_describe would give it)."""
        from proxyd.downstream import sdp_clock_rates
        from proxyd.rtsp.uri import content_base

        body = resp.body
        if 200 <= resp.status < 300 and body:
            base = content_base(resp.headers, target.origin_url)
            for url, rate in sdp_clock_rates(body, base).items():
                player.clock_rates[url_key(target.to_player(url))] = rate
            body = rewrite_sdp_controls(body, target.to_player)
        return Response(resp.status, resp.reason, Headers(rewrite_response_headers(resp, target, None)), body)

    # --- revalidation ---
    async def _revalidate(self, player, request, target, entry: Entry, policy: OriginPolicy, now: float):
        url = entry.url
        wm = any(t.startswith("com.microsoft.wm.") for n, v in entry.body.get("headers", [])
                 if n.lower() == "supported" for t in parse_supported(v))
        try:
            client = await self._connect(target)
            if wm:
                headers, body = get_content_info_request([("User-Agent", request.headers.get("User-Agent") or "")])
                resp = await client.request("GET_PARAMETER", target.origin_url, Headers(headers), body)
            else:
                resp = await client.request("DESCRIBE", target.origin_url, forward_headers(request.headers))
        except OriginError as exc:
            CACHE_REVALIDATIONS.inc("origin_error")
            grace = 0 if entry.body.get("revalidate") else policy.stale_if_error
            if now < entry.expires_at + grace:
                log.warning("cache: origin unreachable (%s); serving stale %s", exc.detail, url)
                return await self._hit(player, request, target, entry, now)
            return None
        decision = decide(resp, policy, live_by_operator=False) if not wm else \
            decide(Response(resp.status, resp.reason, resp.headers, entry.body["sdp"].encode("latin-1")),
                   policy, live_by_operator=False)
        if wm:
            stored = validators_of(Response(200, "", Headers([(n, v) for n, v in entry.body["headers"]])))
            changed = content_changed(stored, validators_of(resp)) if comparable(stored, validators_of(resp)) \
                else not (decision.ttl_seconds or 0) > 0
        else:
            changed = resp.status != 200 or describe_changed(entry.body, resp)
        if resp.status == 200 and decision.cacheable and not changed:
            client.close()
            self.store.update(entry, expires_at=now + (decision.ttl_seconds or 0), fetched_at=now)
            self.store.report(entry, "complete")
            CACHE_REVALIDATIONS.inc("unchanged")
            log.info("cache: revalidated %s (unchanged)", url)
            return await self._hit(player, request, target, entry, now)
        CACHE_REVALIDATIONS.inc("changed")
        log.info("cache: %s changed or no longer cacheable at the origin; purging", url)
        self.store.purge(url=url)
        if wm:
            client.close()
            return await self.describe(player, request, target)
        return self._after_describe(player, request, target, url, client, resp, policy)

    async def _connect(self, target) -> OriginClient:
        limits = self.server.config.limits
        return await OriginClient.connect(target.origin_host, target.origin_port, limits=self.server.parser_limits,
                                          connect_timeout=limits.origin_connect_timeout,
                                          response_timeout=limits.origin_response_timeout,
                                          credentials=target.credentials)


def hand_to_relay(player, target, client: OriginClient) -> None:
    """Leave an origin connection where the relay looks for it (downstream.PlayerConnection._origin_for)."""
    key = (target.origin_host, target.origin_port)
    if key in player.origins or player.closing:
        client.close()
    else:
        player.origins[key] = client


def stored_gen_id(body: dict) -> int:
    """The X-Playlist-Gen-Id the origin answered the stored DESCRIBE with (0: none)."""
    for name, value in body.get("headers", []):
        if name.lower() == "x-playlist-gen-id":
            return parse_gen_id(value) or 0
    return 0


def cache_strategy(server) -> CacheStrategy | None:
    """Factory for proxyd.serving.STRATEGY_FACTORIES: None when no --cache-dir is configured."""
    if not server.config.cache_dir:
        return None
    return CacheStrategy(server)


def content_info(server, origin_url: str):
    """GetContentInfo answer for a fresh stored entry (proxyd.wmext.gci source), else None."""
    store = getattr(server, "cache_store", None)
    entry = store.lookup(origin_url.rstrip("/")) if store is not None else None
    now = time.time()
    if entry is None or not entry.fresh(now) or not entry.body.get("cache_control"):
        return None
    from proxyd.wmext.gci import ContentInfo

    cc = reemit_for_hit(parse_cache_control(entry.body["cache_control"]),
                        age_seconds=now - float(entry.body.get("fetched_at", now)))
    return ContentInfo(cc, entry.body.get("last_modified"), entry.body.get("etag"))


def _register_content_info() -> None:
    try:
        from proxyd.wmext.gci import CONTENT_INFO_SOURCES
    except ImportError:  # Windows Media runtime integration not installed
        return
    if content_info not in CONTENT_INFO_SOURCES:
        CONTENT_INFO_SOURCES.append(content_info)


_register_content_info()
