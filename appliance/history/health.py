"""Dashboard reads beside the time series: node health, origin health, top content (now and over a range)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Avg, Count, Max, Q, Sum

from appliance.content.models import CachedContent, ContentState
from appliance.history.models import Grain, OriginCheck, TrafficBucket
from appliance.nodes.models import ProxyNode
from appliance.nodes.selectors import node_status
from appliance.origins.models import Origin
from appliance.playback.models import EndReason, LiveSplit, SplitEndReason, StreamSession

CACHE_HELD = (ContentState.FILLING, ContentState.COMPLETE, ContentState.INCOMPLETE, ContentState.STALE)


def node_health(*, now: dt.datetime) -> list[dict]:
    """Per node: status, load (zero once offline), cache use against the quota, latest report spool."""
    cache = dict(
        CachedContent.objects.filter(state__in=CACHE_HELD)
        .values("node_id")
        .annotate(total=Sum("size_bytes"))
        .values_list("node_id", "total")
    )
    spool = dict(
        TrafficBucket.objects.filter(grain=Grain.MINUTE, start__gte=now - dt.timedelta(minutes=5))
        .values("node_id")
        .annotate(top=Max("spool_bytes"))
        .values_list("node_id", "top")
    )
    quota = settings.APPLIANCE_CACHE_QUOTA_BYTES
    rows = []
    for node in ProxyNode.objects.order_by("name")[: settings.APPLIANCE_DASHBOARD_MAX_ROWS]:
        status = node_status(node.last_seen, now)
        used = cache.get(node.pk) or 0
        rows.append(
            {
                "node": node.name,
                "status": status,
                "last_seen": node.last_seen,
                "sessions": node.load_sessions if status != "offline" else 0,
                "bandwidth_bps": node.load_bandwidth_bps if status != "offline" else 0,
                "cache_bytes": used,
                "cache_quota_bytes": quota,
                "cache_use": used / quota if quota else None,
                "spool_bytes": spool.get(node.pk) or 0,
                "cache_disk_full": node.cache_disk_full and status != "offline",
            }
        )
    return rows


def origin_health(*, since: dt.datetime) -> list[dict]:
    """Per origin since `since`: sessions started, those ended by an origin error, split reconnects, and the
    control plane's OPTIONS probes (average latency of the answered ones, failed probes, the latest)."""
    sessions = (
        StreamSession.objects.filter(started_at__gte=since, origin__isnull=False)
        .values("origin_id")
        .annotate(started=Count("pk"), errors=Count("pk", filter=Q(end_reason=EndReason.ORIGIN_ERROR)))
    )
    splits = (
        LiveSplit.objects.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=since), origin__isnull=False)
        .values("origin_id")
        .annotate(
            reconnects=Sum("reconnects"), errors=Count("pk", filter=Q(end_reason=SplitEndReason.ORIGIN_ERROR))
        )
    )
    by_origin: dict[int, dict] = {}
    for row in sessions:
        by_origin[row["origin_id"]] = {"sessions": row["started"], "errors": row["errors"], "reconnects": 0}
    for row in splits:
        entry = by_origin.setdefault(row["origin_id"], {"sessions": 0, "errors": 0, "reconnects": 0})
        entry["errors"] += row["errors"]
        entry["reconnects"] += row["reconnects"] or 0
    checks = {
        row["origin_id"]: row
        for row in OriginCheck.objects.filter(at__gte=since)
        .values("origin_id")
        .annotate(
            latency_ms=Avg("latency_ms", filter=Q(ok=True)),
            failed=Count("pk", filter=Q(ok=False)),
            last=Max("at"),
        )
    }
    latest = {
        c.origin_id: c
        for c in OriginCheck.objects.filter(
            at__in=[row["last"] for row in checks.values()], origin_id__in=list(checks)
        )
    }
    rows = []
    for origin in Origin.objects.order_by("name")[: settings.APPLIANCE_DASHBOARD_MAX_ROWS]:
        entry = by_origin.get(origin.pk, {"sessions": 0, "errors": 0, "reconnects": 0})
        probe, last = checks.get(origin.pk, {}), latest.get(origin.pk)
        rows.append(
            {
                "origin": origin.name,
                **entry,
                "error_ratio": entry["errors"] / entry["sessions"] if entry["sessions"] else None,
                "latency_ms": probe.get("latency_ms"),
                "probes_failed": probe.get("failed", 0),
                "last_probe": None
                if last is None
                else {
                    "at": last.at,
                    "ok": last.ok,
                    "status": last.status,
                    "latency_ms": last.latency_ms,
                    "error": last.error,
                },
            }
        )
    return rows


def top_content_now(*, limit: int) -> list[dict]:
    """URLs with the most open sessions."""
    rows = (
        StreamSession.objects.filter(ended_at__isnull=True, started_at__isnull=False)
        .values("url")
        .annotate(sessions=Count("pk"), bytes_out=Sum("bytes_out"))
        .order_by("-sessions", "url")[:limit]
    )
    return list(rows)


def top_content_range(*, since: dt.datetime, until: dt.datetime, limit: int) -> list[dict]:
    """URLs by bytes sent to players in sessions started in [since, until)."""
    rows = (
        StreamSession.objects.filter(started_at__gte=since, started_at__lt=until)
        .values("url")
        .annotate(sessions=Count("pk"), bytes_out=Sum("bytes_out"))
        .order_by("-bytes_out", "url")[:limit]
    )
    return list(rows)
