"""Reads of the traffic history: one point per bucket, all selected nodes summed. The API and the
dashboard charts both read through traffic_series, so they show the same numbers."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet, Sum
from django.utils import timezone

from appliance.history.models import COUNTERS, GAUGES, GRAIN_SECONDS, TrafficBucket


def traffic_buckets() -> QuerySet[TrafficBucket]:
    return TrafficBucket.objects.all()


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def traffic_series(
    *, buckets: QuerySet[TrafficBucket], grain: str, now: dt.datetime | None = None
) -> list[dict]:
    """Points (oldest first) from filtered bucket rows of one grain, with rates and hit ratios.

    A bucket still running is averaged over its elapsed seconds, so its bandwidth is not diluted."""
    now = now or timezone.now()
    width = GRAIN_SECONDS[grain]
    rows = (
        buckets.order_by()
        .values("start")
        .annotate(**{name: Sum(name) for name in COUNTERS + GAUGES})
        .order_by("start")
    )
    points = []
    for row in rows:
        seconds = max(1.0, min(width, (now - row["start"]).total_seconds()))
        points.append(
            {
                "start": row["start"],
                **{name: row[name] for name in COUNTERS + GAUGES},
                "bandwidth_out_bps": row["bytes_out"] * 8 / seconds,
                "bandwidth_in_bps": row["origin_bytes"] * 8 / seconds,
                "hit_ratio_requests": _ratio(row["cache_requests"], row["requests"]),
                "hit_ratio_bytes": _ratio(row["cache_bytes_out"], row["bytes_out"]),
            }
        )
    return points


def traffic_totals(points: list[dict]) -> dict:
    """The range's totals: counters summed, gauges at their largest, ratios over the sums."""
    totals = {name: sum(p[name] for p in points) for name in COUNTERS}
    totals.update({name: max((p[name] for p in points), default=0) for name in GAUGES})
    totals["hit_ratio_requests"] = _ratio(totals["cache_requests"], totals["requests"])
    totals["hit_ratio_bytes"] = _ratio(totals["cache_bytes_out"], totals["bytes_out"])
    return totals


def hit_ratio(*, since: dt.datetime) -> dict:
    """Cache hit ratio by bytes (and by requests) since `since`, all nodes (minute rows while kept,
    else hours)."""
    from django.conf import settings

    kept = dt.timedelta(hours=settings.APPLIANCE_HISTORY_MINUTE_RETENTION_HOURS)
    grain = "minute" if timezone.now() - since <= kept else "hour"
    sums = TrafficBucket.objects.filter(grain=grain, start__gte=since).aggregate(
        **{name: Sum(name) for name in ("bytes_out", "cache_bytes_out", "requests", "cache_requests")}
    )
    sums = {name: value or 0 for name, value in sums.items()}
    return {
        "ratio": _ratio(sums["cache_bytes_out"], sums["bytes_out"]) or 0.0,
        "ratio_requests": _ratio(sums["cache_requests"], sums["requests"]) or 0.0,
        "cache_bytes_out": sums["cache_bytes_out"],
        "bytes_out": sums["bytes_out"],
    }
