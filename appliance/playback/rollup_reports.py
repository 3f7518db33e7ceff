"""Reports read from the roll-ups (ReportCell/ReportPlayer) when the filters are expressible on them.

Expressible: no filter, `origin`, and `since`/`until` at local midnight (whole report days), on
PostgreSQL with roll-ups built for the current time zone. Everything else returns None and the
caller aggregates the raw play logs. Results equal the raw aggregate (same expressions over sums).
"""
from __future__ import annotations

import datetime as dt

from django.db import DatabaseError, connection
from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, FloatField, Min, Sum, Value
from django.db.models.functions import Cast, Coalesce, NullIf
from django.utils import timezone

from appliance.origins.models import Origin
from appliance.playback.models import ReportCell, ReportPlayer

EXPRESSIBLE = {"since", "until", "origin"}
# group -> (grain without filters, grain with origin, grain with a day range, cell group-by column)
GRAINS = {
    "by-day": ("d", "do", "d", "day"),
    "by-origin": ("o", "o", "do", "origin_id"),
    "by-content": ("c", "co", "cd", "key_hash"),
    "by-player-software": ("s", "so", "sd", "key_hash"),
}


def rollup_time_zone() -> str | None:
    """The zone the roll-up days were built in (None: no roll-ups on this database)."""
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regproc('playback_rollup_tz') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return None
            cursor.execute("SELECT playback_rollup_tz()")
            return cursor.fetchone()[0]
    except DatabaseError:
        return None


def _local_day(value: dt.datetime | None) -> dt.date | None | bool:
    """The report day starting at `value`; False when `value` is not a local midnight."""
    if value is None:
        return None
    local = timezone.localtime(value)
    return local.date() if local.time() == dt.time(0) else False


def _metrics(players) -> dict:
    return {
        "plays": Cast(Sum("plays"), BigIntegerField()),
        "unique_players": players,
        "hours_watched": Coalesce(Cast(Sum("duration_sum"), FloatField()) / Value(3600.0), Value(0.0)),
        "avg_bandwidth_bps": ExpressionWrapper(Sum("bw_sum") / NullIf(Sum("bw_n"), Value(0)),
                                               output_field=FloatField()),
        "packets_received": Cast(Coalesce(Sum("received_sum"), Value(0)), BigIntegerField()),
        "packets_lost": Cast(Coalesce(Sum("lost_sum"), Value(0)), BigIntegerField()),
        "loss_ratio": Cast(Sum("lost_sum"), FloatField())
        / NullIf(Cast(Sum(F("received_sum") + F("lost_sum")), FloatField()), Value(0.0)),
        "buffer_count": Cast(Coalesce(Sum("buffer_count"), Value(0)), BigIntegerField()),
        "buffer_seconds": Cast(Coalesce(Sum("buffer_seconds"), Value(0)), BigIntegerField()),
    }


METRIC_NAMES = tuple(_metrics(None))  # built once: expressions are costly to build per output row


def rollup_report(*, group: str, filters: dict) -> list[dict] | None:
    """Report rows from the roll-ups, or None when they cannot answer these filters exactly."""
    if any(filters.get(name) not in (None, "") for name in set(filters) - EXPRESSIBLE):
        return None
    first, end = _local_day(filters.get("since")), _local_day(filters.get("until"))
    if first is False or end is False:
        return None
    if rollup_time_zone() != timezone.get_current_timezone_name():
        return None
    origin = filters.get("origin")
    plain, with_origin, ranged, column = GRAINS[group]
    has_range = first is not None or end is not None
    if has_range and group in ("by-content", "by-player-software") and origin is not None:
        return None  # no (day, origin, key) grain: the raw table answers
    grain = ranged if has_range else (with_origin if origin is not None else plain)
    if group == "by-day":
        grain = with_origin if origin is not None else plain

    def scoped(queryset):
        queryset = queryset.filter(grain=grain)
        if origin is not None:
            queryset = queryset.filter(origin_id=origin.pk)
        if first is not None:
            queryset = queryset.filter(day__gte=first)
        if end is not None:
            queryset = queryset.filter(day__lt=end)
        return queryset

    single = group == "by-day" or not has_range  # one cell per output row: its `players` is exact
    # a range's players: first-ever days in it (cells' first_players) + rows back after a gap (rollup_sql.py)
    players = Cast(Sum("players" if single else "first_players"), BigIntegerField())
    cells = scoped(ReportCell.objects.order_by()).values(column).annotate(**_metrics(players))
    if column == "key_hash":
        cells = cells.annotate(key_a=Min("key_a"), key_b=Min("key_b"))
    order_key = {"day": "day", "origin_id": "origin_key", "key_hash": "key_a"}[column]
    if column == "origin_id":
        cells = cells.annotate(origin_key=NullIf(Min("origin_id"), Value(0)))
    rows = list(cells.order_by("-plays", order_key, *(["key_b"] if group == "by-player-software" else [])))
    if not single and first is not None:
        returning = (scoped(ReportPlayer.objects.order_by()).filter(prev_day__lt=first).values(column)
                     .annotate(n=Count("*")))
        counts = {row[column]: row["n"] for row in returning}
        for row in rows:
            row["unique_players"] += counts.get(row[column], 0)
    return [_output(group, row) for row in _with_origin_names(group, rows)]


def _with_origin_names(group: str, rows: list[dict]) -> list[dict]:
    if group == "by-origin":
        names = dict(Origin.objects.filter(pk__in=[r["origin_id"] for r in rows]).values_list("pk", "name"))
        for row in rows:
            row["origin__name"] = names.get(row["origin_id"])
    return rows


def _output(group: str, row: dict) -> dict:
    metrics = {name: row[name] for name in METRIC_NAMES}
    if group == "by-content":
        return {"url": row["key_a"], **metrics}
    if group == "by-player-software":
        return {"c_hostexe": row["key_a"], "c_playerversion": row["key_b"], **metrics}
    if group == "by-origin":
        origin_id = row["origin_id"] or None
        return {"origin_id": origin_id, "origin__name": row["origin__name"] if origin_id else None, **metrics}
    return {"day": row["day"], **metrics}
