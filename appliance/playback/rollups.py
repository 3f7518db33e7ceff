"""Folding the play logs pending roll-up into the report roll-ups (rollup_sql.py, deferred mode)."""
from __future__ import annotations

from django.db import connection, transaction

from appliance.playback.models import RollupPending


def rollups_fold(*, limit: int) -> int:
    """Add at most `limit` pending play logs (the oldest) to the roll-ups in one transaction; returns
    how many were claimed. Safe to run concurrently and again: the rows are claimed under a lock."""
    if connection.vendor != "postgresql" or not RollupPending.objects.exists():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT playback_rollup_fold(%s)", [limit])
        return cursor.fetchone()[0]


def rollups_fold_pending(*, limit: int) -> int:
    """Fold until nothing that was pending when called is left: `limit` rows per transaction. Rows
    inserted meanwhile may be folded too; the loop ends at the first batch smaller than `limit`."""
    total = 0
    while True:
        folded = rollups_fold(limit=limit)
        total += folded
        if folded < limit:
            return total
