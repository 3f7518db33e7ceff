"""Snapshot polls answered 304 without building the snapshot.

A snapshot changes by writes and by time. Every write that can change one bumps, in its own
transaction (database triggers, control migration 0002), either the global generation (origins,
assignments, player accounts, purges, prestuff, node names/addresses/enabled) or the node's own
version (its pending terminations, its revalidated cache entries); a node coming back online in a
cache cluster bumps the generation from the poll or report that shows it (`seen_again`). Time
changes it at a moment known when it is built (a revalidated entry leaving the window, a cluster
member turning stale): `valid_until`. So a poll whose If-None-Match is the ETag last built for the
node, under the same key (generation, version, settings) and before `valid_until`, is answered 304
by one statement that also authenticates the node and marks it seen. The key is read before the
snapshot is built, so a write committed during the build leaves the stored key behind: the next
poll builds again. PostgreSQL only: elsewhere (the SQLite quick start) every poll builds.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from appliance.control.schemas import SCHEMA_VERSION
from appliance.control.snapshot import snapshot_build_expiring
from appliance.nodes.models import ProxyNode
from appliance.nodes.selectors import stale_cutoff

# as the triggers of control migration 0002 do it: numbers from a sequence are never reused
BUMP_GENERATION = ("INSERT INTO control_snapshotgeneration (id, value) VALUES (1, nextval('control_snapshot_seq')) "
                   "ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value")
SNAPSHOT_FORMAT = 1  # bump when snapshot.py changes what a snapshot holds: cached ETags then expire
_NODE_COLUMNS = [f.attname for f in ProxyNode._meta.concrete_fields]


@dataclass
class SnapshotPoll:
    node: ProxyNode
    now: dt.datetime
    key: str  # what the snapshot depends on besides time, read before any building
    built_key: str = ""
    etag: str = ""
    valid_until: dt.datetime | None = None

    def unchanged_etag(self) -> str | None:
        """The ETag of the node's last snapshot if nothing it depends on changed since, else None."""
        if self.etag and self.built_key == self.key and (self.valid_until is None or self.now < self.valid_until):
            return self.etag
        return None


def _settings_key() -> str:
    values = (SCHEMA_VERSION, SNAPSHOT_FORMAT, settings.APPLIANCE_REPORT_BATCH_DELAY,
              settings.APPLIANCE_SNAPSHOT_POLL_INTERVAL, settings.APPLIANCE_SNAPSHOT_REVALIDATED_WINDOW,
              settings.APPLIANCE_SNAPSHOT_MAX_PURGES, settings.APPLIANCE_CLUSTER_CACHE,
              settings.APPLIANCE_CLUSTER_ID, settings.APPLIANCE_NODE_STALE_SECONDS)
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def snapshot_generation_bump() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"{BUMP_GENERATION} RETURNING value")
        return cursor.fetchone()[0]


def seen_again(before: dt.datetime | None, now: dt.datetime) -> bool:
    """A node not online in the cluster until now: every node's snapshot lists it online from now on."""
    return settings.APPLIANCE_CLUSTER_CACHE and (before is None or before < stale_cutoff(now))


def poll_authenticate(token_hash: str, now: dt.datetime) -> SnapshotPoll | None:
    """The enabled node with this token hash, marked seen at `now`, with its cached snapshot state; None
    for an unknown or disabled token. One statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        node = ProxyNode.objects.filter(token_hash=token_hash, enabled=True).first()
        if node is None:
            return None
        ProxyNode.objects.filter(pk=node.pk).update(last_seen=now)
        return SnapshotPoll(node=node, now=now, key="")
    returned = ", ".join(f"n.{connection.ops.quote_name(c)}" for c in _NODE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE nodes_proxynode AS n SET last_seen = %s "
            f"FROM (SELECT p.id, p.last_seen, s.version, s.built_key, s.etag, s.valid_until "
            f"      FROM nodes_proxynode p LEFT JOIN control_snapshotstate s ON s.node_id = p.id "
            f"      WHERE p.token_hash = %s AND p.enabled) AS prior "
            f"WHERE n.id = prior.id RETURNING {returned}, prior.last_seen, "
            f"(SELECT value FROM control_snapshotgeneration WHERE id = 1), prior.version, prior.built_key, "
            f"prior.etag, prior.valid_until", [now, token_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    count = len(_NODE_COLUMNS)
    node = ProxyNode.from_db(connection.alias, _NODE_COLUMNS, row[:count])
    seen_before, generation, version, built_key, etag, valid_until = row[count:]
    if seen_again(seen_before, now):
        generation = snapshot_generation_bump()
    key = f"{generation or 0}.{version or 0}.{_settings_key()}"
    return SnapshotPoll(node=node, now=now, key=key, built_key=built_key or "", etag=etag or "",
                        valid_until=valid_until)


def snapshot_for_poll(poll: SnapshotPoll) -> dict:
    """Build the node's snapshot and remember its ETag under the key read before building it."""
    snapshot, valid_until = snapshot_build_expiring(node=poll.node, now=poll.now)
    if connection.vendor == "postgresql" and (poll.etag, poll.built_key, poll.valid_until) != (
            snapshot["etag"], poll.key, valid_until):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO control_snapshotstate (node_id, version, built_key, etag, valid_until) "
                "VALUES (%s, 0, %s, %s, %s) ON CONFLICT (node_id) DO UPDATE SET built_key = EXCLUDED.built_key, "
                "etag = EXCLUDED.etag, valid_until = EXCLUDED.valid_until",
                [poll.node.pk, poll.key, snapshot["etag"], valid_until])
    return snapshot
