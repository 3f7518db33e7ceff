"""Control-plane metrics. Counters (HTTP requests, Celery tasks) are counted where they happen;
everything about the appliance's state (nodes, sessions, splits, uplink backlog, cache, queue depth)
is read from PostgreSQL and Redis at scrape time, so every process reports the same figures."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from appliance.ops import multiproc

HTTP_REQUESTS = Counter("appliance_http_requests_total", "HTTP requests answered by the web app",
                        ["method", "status"])
HTTP_SECONDS = Histogram("appliance_http_request_seconds", "time to answer an HTTP request", ["method"])
TASKS = Counter("appliance_celery_tasks_total", "Celery tasks run by this worker, by outcome "
                "(success, failure, retry)", ["task", "outcome"])
TASK_SECONDS = Histogram("appliance_celery_task_seconds", "Celery task run time", ["task"],
                         buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300))

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class StateCollector:
    """Gauges from the database (and the broker queue in Redis) at scrape time; with the database
    down only appliance_state_up 0 (one log line), so the process's own counters still scrape."""

    def collect(self):
        try:
            families = list(self._state())
        except DatabaseError as exc:
            log.warning("metrics: database unavailable, state gauges left out: %s", str(exc).strip()[:200])
            families = []
        yield GaugeMetricFamily("appliance_state_up", "1 when the state gauges could be read from the "
                                "database", value=1 if families else 0)
        yield from families

    def _state(self):
        from appliance.content.models import CachedContent, ContentState
        from appliance.nodes.models import ProxyNode
        from appliance.playback.models import LiveSplit, SplitState, StreamSession
        from appliance.uplink.models import UplinkEvent

        now = timezone.now()
        stale = now - dt.timedelta(seconds=settings.APPLIANCE_NODE_STALE_SECONDS)
        offline = now - dt.timedelta(seconds=settings.APPLIANCE_NODE_OFFLINE_SECONDS)
        nodes = GaugeMetricFamily("appliance_nodes", "enabled proxyd nodes by status (stale and offline: "
                                  "silent APPLIANCE_NODE_STALE_SECONDS / APPLIANCE_NODE_OFFLINE_SECONDS)",
                                  labels=["status"])
        enabled = ProxyNode.objects.filter(enabled=True)
        reachable = enabled.filter(last_seen__gte=offline)
        nodes.add_metric(["online"], enabled.filter(last_seen__gte=stale).count())
        nodes.add_metric(["stale"], reachable.filter(last_seen__lt=stale).count())
        nodes.add_metric(["offline"], enabled.exclude(pk__in=reachable).count())
        yield nodes
        load = reachable.aggregate(bps=Sum("load_bandwidth_bps"))
        yield GaugeMetricFamily("appliance_node_bandwidth_bps", "outgoing bandwidth of nodes not offline "
                                "(their last report)", value=load["bps"] or 0)
        sessions = GaugeMetricFamily("appliance_sessions_active", "open player sessions by served_from",
                                     labels=["served_from"])
        for row in (StreamSession.objects.filter(ended_at__isnull=True, started_at__isnull=False)
                    .values("served_from").annotate(n=Count("id")).order_by()):
            sessions.add_metric([row["served_from"]], row["n"])
        yield sessions
        yield GaugeMetricFamily("appliance_splits_live", "live splits not ended",
                                value=LiveSplit.objects.exclude(state=SplitState.ENDED).count())
        uplink = GaugeMetricFamily("appliance_uplink_events", "SendEvent outbox rows by state (pending and "
                                   "sending: the uplink backlog)", labels=["state"])
        for row in UplinkEvent.objects.values("state").annotate(n=Count("id")).order_by():
            uplink.add_metric([row["state"]], row["n"])
        yield uplink
        cached = CachedContent.objects.exclude(state__in=[ContentState.PURGED, ContentState.PURGING])
        cached_bytes = cached.aggregate(total=Sum("size_bytes"))["total"] or 0
        yield GaugeMetricFamily("appliance_cached_bytes", "bytes cached on the nodes (as reported)",
                                value=cached_bytes)
        depth = broker_queue_depth()
        if depth is not None:
            yield GaugeMetricFamily("appliance_celery_queue_depth", "tasks waiting in the broker queue",
                                    value=depth)


def broker_queue_depth() -> int | None:
    """Messages waiting in the Celery queue (Redis broker only; None otherwise or when unreachable)."""
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.APPLIANCE_READY_TIMEOUT,
                                      socket_connect_timeout=settings.APPLIANCE_READY_TIMEOUT)
        return int(client.llen(settings.CELERY_TASK_DEFAULT_QUEUE))
    except redis.RedisError:
        return None


def exposition(*, with_state: bool) -> bytes:
    """The text a scrape gets: this process's counters (in multiprocess mode: every child's, summed),
    plus the state gauges when `with_state` (the web app; the worker leaves them to it)."""
    from prometheus_client import REGISTRY
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if multiproc.active():
        MultiProcessCollector(registry)
    else:
        registry.register(ProcessCounters(REGISTRY))
    if with_state:
        registry.register(StateCollector())
    return generate_latest(registry)


class ProcessCounters:
    """The default registry's metrics inside a per-scrape registry."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def collect(self):
        yield from self.registry.collect()
