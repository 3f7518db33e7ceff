"""The serving strategies of a node, built once from its config and registered in its context.

Order matters: a running split is joined first (SplitJoin: no origin request for its new players),
then the cache (it claims only cacheable on-demand content and returns None for live, so split
still sees those), then split; the relay is the implicit fallback of the player
connection. Each strategy's extras are registered here, explicitly: the cache's GetContentInfo
source (proxyd.wmext.gci) and its store (purged by proxyd.app.snapshot_apply).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyd.cache.strategy import CacheStrategy
from proxyd.serving.contracts import ServerContext
from proxyd.split.strategy import SplitJoin, SplitStrategy


@dataclass(frozen=True)
class Strategies:
    cache: CacheStrategy | None
    split: SplitStrategy | None


def build_strategies(context: ServerContext) -> Strategies:
    config = context.config
    cache = CacheStrategy(context) if config.cache_dir else None
    split = SplitStrategy(context) if config.split_policy != "never" else None
    if cache is not None:
        context.content_info_sources.append(cache.content_info)
    joiner = SplitJoin(split) if split is not None and cache is not None else None
    context.strategies = [s for s in (joiner, cache, split) if s is not None]
    return Strategies(cache, split)
