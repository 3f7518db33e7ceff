"""Prestuff: fill an origin URL into the cache ahead of any player (control-plane `prestuff` entries).

The fill is the same Fill a player's miss starts (one origin session over TCP, committed only when
complete, Speed when the origin offers fastcache), shared with players that arrive meanwhile. The
origin's Cache-Control and the operator's policy still decide whether the URL may be stored.
Outcomes are reported as cache.changed: `filling` then `complete`/`incomplete`; a URL already
stored fresh is reported `complete` again so the control plane can close the request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from proxyd.cache.freshness import OriginPolicy, decide
from proxyd.cache.fill_item import describe_body
from proxyd.cache.recorder import Fill
from proxyd.cache.store import CacheStore
from proxyd.log import get_logger
from proxyd.origin.client import OriginError
from proxyd.origin.exchange import OriginExchange
from proxyd.routing import Target
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request
from proxyd.rtsp.uri import split_rtsp_url, url_key
from proxyd.serving.contracts import ServerContext

log = get_logger("cache.prestuff")


class FillRegistry(Protocol):
    """What prestuff uses of proxyd.cache.strategy.CacheStrategy (one fill per URL, shared)."""

    context: ServerContext
    store: CacheStore
    fills: dict[str, Fill]
    describing: dict[str, asyncio.Future]

    def policy_for(self, url: str) -> OriginPolicy: ...

    def fill_done(self, fill: Fill) -> None: ...

    def through_owner(self, exchange: OriginExchange) -> None: ...


async def prestuff(strategy: FillRegistry, url: str) -> bool:
    """Fill `url` (an origin URL) into the cache; True when it is stored or being filled, False when
    it cannot be (unreachable origin, refused, not cacheable, live): worth asking again later."""
    url = url.rstrip("/")
    store = strategy.store
    entry = store.lookup(url)
    if entry is not None and entry.fresh(time.time()):
        store.report(entry, "complete")
        return True
    key = url_key(url)
    if key in strategy.fills:
        return True
    pending = strategy.describing.get(key)
    if pending is not None:  # a player's miss is asking the origin: its fill (if any) serves us too
        await asyncio.shield(pending)
        return await prestuff(strategy, url)
    try:
        parts = split_rtsp_url(url)
    except RtspError as exc:
        log.warning("cache: prestuff of %r ignored: %s", url, exc)
        return False
    strategy.describing[key] = asyncio.get_running_loop().create_future()
    try:
        return await _describe_and_fill(strategy, url, parts.host, parts.port)
    finally:
        strategy.describing.pop(key).set_result(None)


async def _describe_and_fill(strategy: FillRegistry, url: str, host: str, port: int) -> bool:
    """DESCRIBE then fill, through the cluster peer owning the URL when there is one (the same
    OriginExchange a player's miss uses: the next owner when that peer cannot be reached)."""
    context = strategy.context
    target = Target(host, port, url, url, url, forward=True, credentials=context.router.credentials_for(url))
    exchange = OriginExchange(target, Request("DESCRIBE", url, Headers([("Accept", "application/sdp")])),
                              context.origin_connector)
    strategy.through_owner(exchange)
    try:
        resp = await exchange.describe()
    except OriginError as exc:
        exchange.close()
        log.warning("cache: prestuff of %s: origin unreachable or DESCRIBE failed (%s)", url, exc.detail)
        return False
    decision = decide(resp, strategy.policy_for(url), live_by_operator=False)
    if resp.status != 200 or not decision.cacheable:
        exchange.close()
        why = f"status {resp.status}" if resp.status != 200 else decision.reason
        log.warning("cache: prestuff of %s not possible (%s)", url, why)
        strategy.store.report(None, "incomplete", {"url": url})
        return False
    fill = Fill(strategy.store, exchange.take_client(), describe_body(url, resp, decision, time.time()),
                max_bytes=strategy.store.max_bytes, on_done=strategy.fill_done, resume=exchange.origin_fallback())
    strategy.fills[url_key(url)] = fill.start()
    log.info("cache: prestuffing %s", url)
    return True
