"""Report ingestion: each event id is stored once per node and applied once, in one transaction."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import connection, transaction

from appliance.control.ingest import BatchApply
from appliance.control.models import ReportEvent
from appliance.core.live import publish_after_commit
from appliance.nodes.models import ProxyNode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def report_batch_ingest(*, node: ProxyNode, node_info: dict, events: list[dict], now: dt.datetime) -> IngestResult:
    """Store and apply a validated batch. Safe to call again with the same batch."""
    unique: dict = {}
    for event in events:
        unique.setdefault(event["id"], event)
    with transaction.atomic():
        # Locking the node row serialises batches from one node, so the "already stored?" check below
        # cannot race with a concurrent retry of the same batch.
        locked = ProxyNode.objects.select_for_update().get(pk=node.pk)
        fresh = sorted(_store_new_events(locked, unique), key=lambda e: e["seq"])
        batch = BatchApply(locked)
        batch.run(fresh)
        batch.traffic.flush(locked, spool_bytes=_spool_bytes(node_info), now=now)
        _touch_node(locked, node_info, now)
    publish_after_commit("node.bandwidth", {"node": locked.name, "sessions": locked.load_sessions,
                                       "bandwidth_bps": locked.load_bandwidth_bps})
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def _store_new_events(node: ProxyNode, unique: dict) -> list[dict]:
    """Record the ids not stored yet and return their events (the node row is locked by the caller)."""
    if not unique:
        return []
    if connection.vendor == "postgresql":
        # One statement for check + insert, parameters as arrays: the ORM path costs ~5x more per event.
        events = list(unique.values())
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO control_reportevent (node_id, event_id, seq, kind, at, received_at) "
                "SELECT %s, e.id, e.seq, e.kind, e.at, now() FROM unnest(%s::uuid[], %s::bigint[], "
                "%s::varchar[], %s::timestamptz[]) AS e(id, seq, kind, at) "
                "ON CONFLICT (node_id, event_id) DO NOTHING RETURNING event_id",
                [node.pk, [str(e["id"]) for e in events], [e["seq"] for e in events],
                 [e["kind"][:32] for e in events], [e["at"] for e in events]])
            stored = {str(row[0]) for row in cursor.fetchall()}
        return [e for key, e in unique.items() if str(key) in stored]
    known = {str(k) for k in ReportEvent.objects.filter(node=node, event_id__in=list(unique))
             .values_list("event_id", flat=True)}
    fresh = [e for key, e in unique.items() if str(key) not in known]
    ReportEvent.objects.bulk_create(
        [ReportEvent(node=node, event_id=e["id"], seq=e["seq"], kind=e["kind"][:32], at=e["at"]) for e in fresh])
    return fresh


def _spool_bytes(info: dict) -> int:
    reporter = info.get("reporter")
    value = reporter.get("spool_bytes") if isinstance(reporter, dict) else 0
    return value if type(value) is int and value > 0 else 0


def _touch_node(node: ProxyNode, info: dict, now: dt.datetime) -> None:
    node.last_seen = now
    node.version = info.get("version") or node.version
    node.listen = info.get("listen") or node.listen
    load = info.get("load") or {}
    node.load_sessions = load.get("sessions", node.load_sessions)
    node.load_bandwidth_bps = load.get("bandwidth_bps", node.load_bandwidth_bps)
    node.save(update_fields=["last_seen", "version", "listen", "load_sessions", "load_bandwidth_bps"])


def report_events_prune(*, older_than: dt.datetime, limit: int) -> int:
    """Forget at most `limit` event ids received before `older_than` (for periodic housekeeping).

    A node re-sending an event older than the retention would have it applied again, so keep the
    retention well above the longest proxyd spool outage (APPLIANCE_REPORT_EVENT_RETENTION_DAYS).
    """
    ids = list(ReportEvent.objects.filter(received_at__lt=older_than).order_by("id")
               .values_list("id", flat=True)[:limit])
    return ReportEvent.objects.filter(id__in=ids).delete()[0]


def node_mark_seen(*, node: ProxyNode, now: dt.datetime) -> None:
    """A snapshot poll proves the node is alive even when it has nothing to report."""
    ProxyNode.objects.filter(pk=node.pk).update(last_seen=now)
