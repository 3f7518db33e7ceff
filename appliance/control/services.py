"""Report ingestion: each event id is stored once per node and applied once, in one transaction."""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from appliance.control.ingest import BatchApply
from appliance.control.models import ReportEvent
from appliance.control.poll import seen_again, snapshot_generation_bump
from appliance.core.live import publish_many_after_commit
from appliance.nodes.models import ProxyNode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def report_batch_ingest(*, node: ProxyNode, node_info: dict, events: list[dict], now: dt.datetime) -> IngestResult:
    """Store and apply a validated batch. Safe to call again with the same batch."""
    unique: dict[str, dict] = {}
    for event in events:  # ids as validation gives them (canonical text); str() also takes a UUID
        unique.setdefault(str(event["id"]), event)
    with transaction.atomic():
        # Updating the node row first locks it: batches from one node are serialised, so the "already
        # stored?" check below cannot race with a concurrent retry of the same batch.
        locked, generation = _touch_node(node, node_info, now)
        fresh = sorted(_store_new_events(locked, unique), key=lambda e: e["seq"])
        batch = BatchApply(locked, generation=generation)
        live = batch.run(fresh)
        batch.traffic.flush(locked, spool_bytes=_spool_bytes(node_info), now=now)
        publish_many_after_commit(live + [("node.bandwidth", {
            "node": locked.name, "sessions": locked.load_sessions, "bandwidth_bps": locked.load_bandwidth_bps})])
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def _store_new_events(node: ProxyNode, unique: dict[str, dict]) -> list[dict]:
    """Record the ids not stored yet and return their events (the node row is locked by the caller)."""
    if not unique:
        return []
    if connection.vendor == "postgresql":
        # One statement for check + insert, the rows as one JSON parameter (parsed by PostgreSQL in C;
        # per-element array adaptation in Python cost more than the insert itself).
        rows = json.dumps([[key, e["seq"], e["kind"][:32], e["at"].isoformat()] for key, e in unique.items()])
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO control_reportevent (node_id, event_id, seq, kind, at, received_at) "
                "SELECT %s, (e->>0)::uuid, (e->>1)::bigint, e->>2, (e->>3)::timestamptz, now() "
                "FROM json_array_elements(%s::json) AS e "
                "ON CONFLICT (node_id, event_id) DO NOTHING RETURNING event_id::text",  # no UUID object per row
                [node.pk, rows])
            stored = {row[0] for row in cursor.fetchall()}
        return [e for key, e in unique.items() if key in stored]
    known = {str(k) for k in ReportEvent.objects.filter(node=node, event_id__in=list(unique))
             .values_list("event_id", flat=True)}
    fresh = [e for key, e in unique.items() if key not in known]
    ReportEvent.objects.bulk_create(
        [ReportEvent(node=node, event_id=e["id"], seq=e["seq"], kind=e["kind"][:32], at=e["at"]) for e in fresh])
    return fresh


def _spool_bytes(info: dict) -> int:
    reporter = info.get("reporter")
    value = reporter.get("spool_bytes") if isinstance(reporter, dict) else 0
    return value if type(value) is int and value > 0 else 0


def _touch_node(node: ProxyNode, info: dict, now: dt.datetime) -> tuple[ProxyNode, int | None]:
    """Record the node's liveness and load in one UPDATE, which also locks its row; returns the row and
    the snapshot generation (None: not kept, SQLite)."""
    load = info.get("load") or {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE nodes_proxynode AS n SET last_seen = %s, version = COALESCE(NULLIF(%s, ''), n.version), "
                "listen = COALESCE(NULLIF(%s, ''), n.listen), load_sessions = COALESCE(%s, n.load_sessions), "
                "load_bandwidth_bps = COALESCE(%s, n.load_bandwidth_bps), "
                "cache_disk_full = COALESCE(%s, n.cache_disk_full) "
                "FROM (SELECT last_seen, listen FROM nodes_proxynode WHERE id = %s) AS prior WHERE n.id = %s "
                "RETURNING n.last_seen, n.version, n.listen, n.load_sessions, n.load_bandwidth_bps, "
                "n.cache_disk_full, prior.last_seen, prior.listen, "
                "(SELECT value FROM control_snapshotgeneration WHERE id = 1)",
                [now, info.get("version") or "", info.get("listen") or "", load.get("sessions"),
                 load.get("bandwidth_bps"), load.get("cache_disk_full"), node.pk, node.pk])
            (node.last_seen, node.version, node.listen, node.load_sessions,
             node.load_bandwidth_bps, node.cache_disk_full, seen_before, listen_before, generation) = cursor.fetchone()
        if seen_again(seen_before, now) or (settings.APPLIANCE_CLUSTER_CACHE and node.listen != listen_before):
            # Its cluster peers' snapshots list it online again, or at another address. After the commit:
            # inside the transaction the generation row's lock would queue other nodes' batches.
            transaction.on_commit(snapshot_generation_bump)
        return node, generation or 0
    locked = ProxyNode.objects.select_for_update().get(pk=node.pk)
    locked.last_seen = now
    locked.version = info.get("version") or locked.version
    locked.listen = info.get("listen") or locked.listen
    locked.load_sessions = load.get("sessions", locked.load_sessions)
    locked.load_bandwidth_bps = load.get("bandwidth_bps", locked.load_bandwidth_bps)
    locked.cache_disk_full = load.get("cache_disk_full", locked.cache_disk_full)
    locked.save(update_fields=["last_seen", "version", "listen", "load_sessions", "load_bandwidth_bps",
                               "cache_disk_full"])
    return locked, None


def report_events_prune(*, older_than: dt.datetime, limit: int) -> int:
    """Forget at most `limit` event ids received before `older_than` (for periodic housekeeping).

    A node re-sending an event older than the retention would have it applied again, so keep the
    retention well above the longest proxyd spool outage (APPLIANCE_REPORT_EVENT_RETENTION_DAYS).
    """
    ids = list(ReportEvent.objects.filter(received_at__lt=older_than).order_by("id")
               .values_list("id", flat=True)[:limit])
    return ReportEvent.objects.filter(id__in=ids).delete()[0]
