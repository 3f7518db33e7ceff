from django.db import models


class ReportEvent(models.Model):
    """Every report event id ever accepted from a node; the unique key makes ingestion exactly-once."""

    # No database constraint or index of its own: every batch stores up to 1,000 of these rows, and a deferred
    # foreign-key check per row at commit plus a node_id index beside the unique key were a third of the
    # insert's cost. The node row is locked by the same transaction, the unique key leads with node_id, and
    # the ORM still deletes a node's rows with it (CASCADE is applied by Django, not by PostgreSQL).
    node = models.ForeignKey("nodes.ProxyNode", on_delete=models.CASCADE, related_name="report_events",
                             db_constraint=False, db_index=False)
    event_id = models.UUIDField()
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "event_id"], name="report_event_unique_node_id")]
        indexes = [models.Index(fields=["received_at"])]


class SnapshotGeneration(models.Model):
    """One row: bumped (by database triggers, migration 0002) by every write that can change any node's
    snapshot: origins, their node assignment and player accounts, purges, prestuff, node names,
    addresses and enabled flags; and by the ingest/poll when a node comes back online in a cluster."""

    value = models.BigIntegerField(default=0)


class SnapshotState(models.Model):
    """Per node: `version` is bumped (by triggers) by writes that change only this node's snapshot
    (termination requests, ended terminated sessions, revalidated cache entries); the other columns
    remember the ETag of the last snapshot built for it, under which key and until when it holds, so
    a poll with that ETag is answered 304 without building the snapshot (appliance/control/poll.py).
    No foreign key: a trigger may touch the row of a node being deleted."""

    node_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField(default=0)
    built_key = models.CharField(max_length=200, blank=True)
    etag = models.CharField(max_length=64, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
