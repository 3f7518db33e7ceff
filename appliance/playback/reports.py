"""Play-log aggregates, computed in SQL. Only LogPlay rows count as plays (LogConnect carries no play data)."""
from __future__ import annotations

from django.db.models import Avg, Count, F, FloatField, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, Collate, NullIf, TruncDate

from appliance.playback.models import PlayLog

REPORT_GROUPS: dict[str, tuple[str, ...]] = {
    "by-content": ("url",),
    "by-day": ("day",),
    "by-player-software": ("c_hostexe", "c_playerversion"),
    "by-origin": ("origin_id", "origin__name"),
}


class _Bytewise(Collate):
    """`expression COLLATE "C"` on PostgreSQL; SQLite compares bytes already (and has no collation "C")."""

    def __init__(self, expression):
        super().__init__(expression, "C")

    def as_sqlite(self, compiler, connection, **extra_context):
        return compiler.compile(self.get_source_expressions()[0])


def _float(expression):
    return Cast(expression, FloatField())


def _metrics() -> dict:
    received = Coalesce(F("c_pkts_received"), Value(0))
    lost = Coalesce(F("c_pkts_lost_client"), Value(0))
    return {
        "plays": Count("*"),  # not Count("id"): id is not in the covering indexes
        # byte order for the DISTINCT's sort: memcmp and abbreviated keys, where the database's collation calls
        # strcoll per comparison (the same count: equality is bytewise under any deterministic collation)
        "unique_players": Count(_Bytewise("c_playerid"), distinct=True, filter=~Q(c_playerid="")),
        "hours_watched": Coalesce(_float(Sum("x_duration")) / Value(3600.0), Value(0.0)),
        "avg_bandwidth_bps": Avg("avgbandwidth"),
        "packets_received": Coalesce(Sum(received), Value(0)),
        "packets_lost": Coalesce(Sum(lost), Value(0)),
        "loss_ratio": _float(Sum(lost)) / NullIf(_float(Sum(received + lost)), Value(0.0)),
        "buffer_count": Coalesce(Sum("c_buffercount"), Value(0)),
        "buffer_seconds": Coalesce(Sum("c_totalbuffertime"), Value(0)),
    }


def playlog_report(*, group: str, playlogs: QuerySet[PlayLog]) -> QuerySet:
    """One row per group key with the metrics above, most plays first."""
    keys = REPORT_GROUPS[group]
    queryset = playlogs.filter(kind="logplay").order_by()
    if group == "by-day":
        queryset = queryset.annotate(day=TruncDate("logged_at"))
    return queryset.values(*keys).annotate(**_metrics()).order_by("-plays", *keys)
