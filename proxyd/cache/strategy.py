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
import dataclasses
import time
import weakref
from urllib.parse import urlsplit

from proxyd.cache.content_info import entry_content_info
from proxyd.cache.freshness import OriginPolicy, decide, describe_changed, policy_from_flags, validators_of
from proxyd.cache.media import EntryMedia
from proxyd.cache.playlist import Playlist, stored_gen_id
from proxyd.cache.prestuff import prestuff
from proxyd.cache.fill_item import describe_body
from proxyd.cache.recorder import Fill
from proxyd.cache.replay import ReplaySession
from proxyd.cache.replay_source import ReplaySource
from proxyd.cache.store import CacheStore, Entry
from proxyd.log import get_logger
from proxyd.metrics.counters import CACHE_LOOKUPS, CACHE_REVALIDATIONS
from proxyd.origin.exchange import OriginExchange
from proxyd.routing import rewrite_sdp_controls
from proxyd.rtsp.events import Headers, Response
from proxyd.origin.client import OriginError
from proxyd.rtsp.uri import is_within, url_key
from proxyd.wm.cache_control import parse_cache_control, reemit_for_hit
from proxyd.wm.messages import get_content_info_request
from proxyd.wm.supported import parse_supported
from proxyd.wm.validators import comparable, content_changed
from proxyd.serving.contracts import ServerContext
from proxyd.wmext.gci import ContentInfo
from proxyd.wmext.playlist import generation_mismatch

log = get_logger("cache")

GCI_ROLLOVER_TRIES = 1  # new connections tried after a failed GetContentInfo before answering 404
DEFAULT_RTSP_PORT = 554


def speaks_wm_headers(headers) -> bool:
    return any(t.startswith("com.microsoft.wm.") for n, v in headers if n.lower() == "supported"
               for t in parse_supported(v))


class CacheStrategy:
    name = "cache"

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        config = context.config
        self.store = CacheStore(config.cache_dir, max_bytes=config.cache_max_bytes, emit=context.emit,
                                media_keep_bytes=config.limits.cache_media_keep_bytes).open()
        self.default_policy = policy_from_flags(config.cache_ttl, config.stale_if_error)
        self.origin_policies: dict[str, OriginPolicy] = {}  # origin base URL -> policy (snapshot)
        # the three below are keyed by url_key(origin URL)
        self.fills: dict[str, Fill] = {}
        self.describing: dict[str, asyncio.Future] = {}  # a miss DESCRIBE in flight
        self.loaded: dict[str, tuple[Entry, list[EntryMedia]]] = {}  # media per playlist entry
        self.wm_origins: set[tuple[str, int]] = set()  # (host, port) that answered as WM servers
        for entry in self.store.entries.values():
            self.learn_wm(entry.url, entry.body.get("headers", []))
        # player -> {url_key(player-facing presentation URL): source maker}
        self.claims: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # --- operator policy ---
    def set_origin_policies(self, origins) -> None:
        """Per-origin policy from the control-plane snapshot (objects with base_url, cache_policy,
        cache_ttl, stale_if_error, live); replaces the previous set."""
        policies = {}
        for o in origins:
            kind = "never" if o.live else o.cache_policy
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
        prefixes = self.context.config.live_prefixes or ()
        return any(("/" + path).startswith(p.rstrip("/") + "/") or "/" + path.rstrip("/") == p.rstrip("/")
                   for p in prefixes)

    # --- ServingStrategy ---
    async def describe(self, player, exchange: OriginExchange) -> Response | None:
        request, target = exchange.request, exchange.target
        url = target.origin_url.rstrip("/")
        policy = self.policy_for(url)
        if "authorization" in request.headers:
            # The player's own credentials: never cached, and the relay answers on the connection
            # that challenged it (Digest nonces may be per connection).
            return None
        if policy.policy == "never" or target.live or self.live_by_operator(player, request) \
                or self.context.config.split_policy == "always":
            if (target.split or self.context.config.split_policy) != "never":
                self.through_owner(exchange)  # live: the owner judges it and splits it once per cluster
            return None
        now = time.time()
        entry = self.store.lookup(url)
        CACHE_LOOKUPS.inc("miss" if entry is None else "hit" if entry.fresh(now) else "stale")
        if entry is not None and entry.fresh(now):
            return await self._hit(player, request, target, entry, now)
        key = url_key(url)
        fill = self.fills.get(key)
        if fill is not None:
            return self._follow(player, request, target, fill)
        pending = self.describing.get(key)
        if pending is not None:  # another player's miss or revalidation is asking: share its outcome
            await asyncio.shield(pending)
            return await self.describe(player, exchange)
        self.describing[key] = self.loop_future()
        try:
            self.through_owner(exchange)
            if entry is not None:
                self.store.mark_stale(entry)
                return await self._revalidate(player, exchange, entry, policy, now)
            return await self._miss(player, exchange, url, policy, content_info=True)
        finally:
            self.describing.pop(key).set_result(None)

    def through_owner(self, exchange: OriginExchange) -> None:
        """Cache cluster: a URL another node owns is asked of (and filled or split through) that
        node, so the origin sends it once per cluster (player misses, revalidations and prestuff)."""
        exchange.through_owner(self.context.cluster, self.context.config.limits.cluster_connect_timeout)

    async def _miss(self, player, exchange: OriginExchange, url: str, policy, *, content_info: bool):
        """Ask the origin: GetContentInfo first when it is a Windows Media server ([MS-RTSP] 4.6.1
        steps 1-2), then DESCRIBE (unless already asked), then fill or leave it to split and relay."""
        if not exchange.asked:
            if content_info and self.speaks_wm(exchange.target):
                unreachable = await self._content_info_first(exchange)
                if unreachable is not None:
                    return unreachable
            try:
                await exchange.describe()
            except OriginError as exc:
                log.info("cache: origin DESCRIBE of %s failed (%s); relaying", url, exc.detail)
                return None  # the relay answers the same error
        return self._after_describe(player, exchange, url, policy)

    async def _content_info_first(self, exchange: OriginExchange) -> Response | None:
        """The miss's GetContentInfo; when the origin cannot be reached, one more try on a new
        connection (the spec's protocol rollover; RTSP control is TCP only), then 404: the content
        cannot be found (WMS Protocol Rollover)."""
        headers, body = get_content_info_request(
            [("User-Agent", exchange.request.headers.get("User-Agent") or "")])
        for attempt in range(1 + GCI_ROLLOVER_TRIES):
            try:
                client = await (exchange.connection() if attempt == 0 else exchange.reconnect())
                await client.request("GET_PARAMETER", exchange.target.origin_url, Headers(headers), body)
                return None
            except OriginError as exc:
                failure = exc
        log.warning("cache: GetContentInfo for %s failed %d times (%s); 404", exchange.target.origin_url,
                    1 + GCI_ROLLOVER_TRIES, failure.detail)
        return Response(404, "Not Found", Headers())

    def speaks_wm(self, target) -> bool:
        return (target.origin_host.lower(), target.origin_port) in self.wm_origins

    def learn_wm(self, url: str, headers) -> None:
        """Remember origins that answered as Windows Media servers (Supported com.microsoft.wm.*)."""
        if speaks_wm_headers(headers):
            parts = urlsplit(url)
            self.wm_origins.add(((parts.hostname or "").lower(), parts.port or DEFAULT_RTSP_PORT))

    @staticmethod
    def loop_future() -> asyncio.Future:
        return asyncio.get_running_loop().create_future()

    def create_session(self, player, request, target):
        makers = self.claims.get(player) or {}
        for presentation, make in makers.items():
            if is_within(request.uri, presentation):
                return make(player, target) if make is not None else None
        return None

    def stop(self) -> None:
        """Server shutdown: running fills end with the process (their files are wiped at start)."""

    def content_info(self, origin_url: str) -> ContentInfo | None:
        """GetContentInfo answer for a fresh stored entry (a proxyd.wmext.gci source), else None."""
        entry = self.store.lookup(origin_url.rstrip("/"))
        now = time.time()
        if entry is None or not entry.fresh(now) or not entry.body.get("cache_control"):
            return None
        cc = reemit_for_hit(parse_cache_control(entry.body["cache_control"]),
                            age_seconds=now - float(entry.body.get("fetched_at", now)))
        return ContentInfo(cc, entry.body.get("last_modified"), entry.body.get("etag"))

    # --- paths ---
    def _claim(self, player, request, make) -> None:
        self.claims.setdefault(player, {})[url_key(request.uri)] = make

    def _after_describe(self, player, exchange: OriginExchange, url: str, policy) -> Response | None:
        """Fill on a cacheable miss; anything else (live, errors, not cacheable) is left with the
        same answer to the split strategy and the relay."""
        request, target, resp = exchange.request, exchange.target, exchange.response
        if url_key(url) in self.fills:  # another player's miss started it meanwhile
            return self._follow(player, request, target, self.fills[url_key(url)])
        if not exchange.via_peer:  # a peer answers as a WM server whatever the origin is
            self.learn_wm(url, resp.headers.items())
        decision = decide(resp, policy, live_by_operator=False)
        if resp.status != 200 or not decision.cacheable:
            log.debug("cache: %s not cached (%s)", url, decision.reason)
            return None
        fill = Fill(self.store, exchange.take_client(), describe_body(url, resp, decision, time.time()),
                    max_bytes=self.store.max_bytes, on_done=self.fill_done, resume=exchange.origin_fallback())
        limits = self.context.config.limits
        self.fills[url_key(url)] = fill.start_when_played(limits.session_timeout + limits.session_idle_margin)
        return self._follow(player, request, target, fill)

    def fill_done(self, fill: Fill) -> None:
        if self.fills.get(url_key(fill.url)) is fill:
            del self.fills[url_key(fill.url)]

    def _follow(self, player, request, target, fill: Fill) -> Response:
        """A player of a URL being filled: replayed from the growing recording, entry by entry."""
        def make(player, target):
            first = fill.playlist.entries[0]
            return ReplaySession(self.context, player, target,
                                 dataclasses.replace(first, playlist=fill.playlist, on_play=fill.played))

        self._claim(player, request, make)
        return self._sdp_response(target, fill.body, None)

    async def _hit(self, player, request, target, entry: Entry, now: float) -> Response | None:
        stale_generation = generation_mismatch(request, stored_gen_id(entry.body))
        if stale_generation is not None:  # 3.2.5.1 step 3, as the origin would answer it
            return stale_generation
        key = url_key(entry.url)
        loaded = self.loaded.get(key)
        if loaded is None or loaded[0] is not entry:
            medias = []
            for item in range(1 + len(entry.body.get("playlist", []))):
                media = await asyncio.to_thread(self.store.read_media, entry, item)
                if media is None:
                    self.store.purge(url=entry.url)  # a playlist is kept or dropped whole
                    return None
                medias.append(media)
            self.loaded[key] = (entry, medias)
        medias = self.loaded[key][1]
        body = entry.body
        age = now - float(body.get("fetched_at", now))

        def release(bytes_served: int) -> None:
            self.store.release(entry, bytes_served)
            if entry.users <= 0 and self.loaded.get(key, (None,))[0] is entry:
                del self.loaded[key]

        def source(described: dict, media: EntryMedia, gen_id: int) -> ReplaySource:
            streams = described["streams"]
            return ReplaySource(media, [s["control"] for s in streams], [s["clock_rate"] for s in streams],
                                [s["rtptime0"] for s in streams], described.get("duration"), release=release,
                                content_url=entry.url, gen_id=gen_id, sdp=described["sdp"],
                                cache_control=described.get("cache_control"),
                                supported=described.get("supported"), age=age)

        def make(player, target):
            self.store.acquire(entry)
            sources = [source(body, medias[0], stored_gen_id(body))]
            sources += [source(item, media, item.get("gen_id", 0))
                        for item, media in zip(body.get("playlist", []), medias[1:])]
            playlist = Playlist(sources) if len(sources) > 1 else None
            return ReplaySession(self.context, player, target, dataclasses.replace(sources[0], playlist=playlist))

        self._claim(player, request, make)
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

    # --- revalidation ---
    async def _revalidate(self, player, exchange: OriginExchange, entry: Entry, policy: OriginPolicy,
                          now: float):
        request, target = exchange.request, exchange.target
        url = entry.url
        wm = speaks_wm_headers(entry.body.get("headers", []))
        try:
            if wm:
                answer = await entry_content_info(self.context, exchange, entry.body.get("moved_to") or url,
                                                  request.headers.get("User-Agent") or "")
                resp, moved = answer.response, {"moved_to": answer.url} if answer.url != url else {}
            else:
                resp = await exchange.describe()
        except OriginError as exc:
            CACHE_REVALIDATIONS.inc("origin_error")
            grace = 0 if entry.body.get("revalidate") else policy.stale_if_error
            if now < entry.expires_at + grace:
                log.warning("cache: origin unreachable (%s); serving stale %s", exc.detail, url)
                return await self._hit(player, request, target, entry, now)
            log.warning("cache: revalidation of %s failed (%s); the stale copy is not served", url, exc.detail)
            return None
        if resp.status in (404, 410):  # gone at the origin: the copy goes, the player is told at once
            CACHE_REVALIDATIONS.inc("changed")
            log.info("cache: %s answered %d at the origin; purging", url, resp.status)
            self.store.purge(url=url)
            return Response(404, "Not Found", Headers())
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
            cc = resp.headers.get_all("Cache-Control")  # the origin's current value is served from now on
            self.store.update(entry, expires_at=now + (decision.ttl_seconds or 0), fetched_at=now,
                              cache_control=", ".join(cc) if cc else entry.body.get("cache_control"),
                              **(moved if wm else {}))
            self.store.report(entry, "complete")
            CACHE_REVALIDATIONS.inc("unchanged")
            log.info("cache: revalidated %s (unchanged)", url)
            return await self._hit(player, request, target, entry, now)
        CACHE_REVALIDATIONS.inc("changed")
        log.info("cache: %s changed or no longer cacheable at the origin; purging", url)
        self.store.purge(url=url)  # a playlist goes whole: its entries are one stored entry
        return await self._miss(player, exchange, url, policy, content_info=False)

