"""Periodic live-dashboard figures (per-node bandwidth, cache hit ratio, pushed over Channels) and the
report roll-up fold."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from appliance.history.selectors import hit_ratio
from appliance.nodes.models import ProxyNode
from appliance.nodes.services import nodes_zero_offline_load
from appliance.playback import live
from appliance.playback.rollups import rollups_fold
from appliance.playback.selectors import live_sessions


def cache_hit_ratio(*, since: dt.datetime) -> live.CacheHitRatio:
    """By bytes sent to players (and by sessions started), from the traffic history."""
    return {**hit_ratio(since=since), "window_seconds": settings.APPLIANCE_HIT_RATIO_WINDOW}


@shared_task(name="playback.publish_live_stats", ignore_result=True, soft_time_limit=20, time_limit=30)
def publish_live_stats() -> int:
    now = timezone.now()
    for name in nodes_zero_offline_load(now=now):
        live.publish("node.bandwidth", {"node": name, "sessions": 0, "bandwidth_bps": 0})
    seen_since = now - dt.timedelta(seconds=settings.APPLIANCE_LIVE_STATS_INTERVAL * 3)
    nodes = ProxyNode.objects.filter(last_seen__gte=seen_since).only("name", "load_sessions", "load_bandwidth_bps")
    published = 0
    for node in nodes[:200]:
        live.publish("node.bandwidth", {"node": node.name, "sessions": node.load_sessions,
                                        "bandwidth_bps": node.load_bandwidth_bps})
        published += 1
    live.publish("sessions.active", {"count": live_sessions().count()})  # resets the dashboard card's count
    live.publish("cache.hit_ratio",
                 cache_hit_ratio(since=now - dt.timedelta(seconds=settings.APPLIANCE_HIT_RATIO_WINDOW)))
    return published + 2


@shared_task(name="playback.fold_rollups", ignore_result=True, soft_time_limit=50, time_limit=60)
def fold_rollups() -> int:
    """Add the play logs inserted since the last run to the report roll-ups (safe to repeat: each pending
    row is claimed once). At most APPLIANCE_ROLLUP_FOLD_MAX_BATCHES transactions per run; beat comes back."""
    total = 0
    for _ in range(settings.APPLIANCE_ROLLUP_FOLD_MAX_BATCHES):
        folded = rollups_fold(limit=settings.APPLIANCE_ROLLUP_FOLD_BATCH)
        total += folded
        if folded < settings.APPLIANCE_ROLLUP_FOLD_BATCH:
            break
    return total
