"""Writes for the traffic history.

Ingestion adds each report batch's counter deltas to the node's minute, hour and day rows in one upsert
(exactly once: only events stored for the first time are applied). The roll-up task sets the gauges
(sessions, players) from the session rows, and prunes each grain past its retention; running it twice
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from appliance.history.models import COUNTERS, Grain, TrafficBucket
from appliance.nodes.models import ProxyNode
from appliance.playback.models import StreamSession

TABLE = TrafficBucket._meta.db_table


def bucket_start(grain: str, at: dt.datetime) -> dt.datetime:
    """Start of the bucket holding `at`: minutes in UTC, hours and days on the local clock."""
    if grain == Grain.MINUTE:
        return at.astimezone(dt.UTC).replace(second=0, microsecond=0)
    local = timezone.localtime(at)
    if grain == Grain.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    return timezone.make_aware(dt.datetime.combine(local.date(), dt.time(0)))


class TrafficDeltas:
    """One report batch's counter deltas per minute, written by flush() in one statement."""

    def __init__(self) -> None:
        self.minutes: dict[dt.datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
        # the last event's minute [start, end) and its row: a batch's events come in time order, mostly
        # several per minute, so most events skip bucket_start
        self._start = self._end = dt.datetime.max.replace(tzinfo=dt.UTC)
        self._row: dict[str, int] = {}

    def add(self, at: dt.datetime, **deltas: int) -> None:
        if not self._start <= at < self._end:
            self._start = bucket_start(Grain.MINUTE, at)
            self._end = self._start + dt.timedelta(minutes=1)
            self._row = self.minutes[self._start]
        row = self._row
        for name, value in deltas.items():
            if value > 0:  # a counter going back (proxyd restarted) is not negative traffic
                row[name] += value

    def flush(self, node: ProxyNode, *, spool_bytes: int, now: dt.datetime) -> None:
        buckets: dict[tuple[str, dt.datetime], list[int]] = {}
        for minute, row in self.minutes.items():
            for grain in Grain.values:
                totals = buckets.setdefault((grain, bucket_start(grain, minute)), [0] * len(COUNTERS))
                for i, name in enumerate(COUNTERS):
                    totals[i] += row[name]
        if spool_bytes:
            for grain in Grain.values:
                buckets.setdefault((grain, bucket_start(grain, now)), [0] * len(COUNTERS))
        if not buckets:
            return
        _upsert(node.pk, [(grain, start, *totals) for (grain, start), totals in buckets.items()], spool_bytes)


def _upsert(node_id: int, rows: list[tuple], spool_bytes: int) -> None:
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    columns = ", ".join(COUNTERS)
    values = ", ".join(["(%s, %s, %s, " + ", ".join(["%s"] * len(COUNTERS)) + ", 0, 0, %s)"] * len(rows))
    params: list = []
    for row in rows:
        grain, start, *totals = row  # the backend's datetime form, as the ORM writes it (text in SQLite)
        params += [node_id, grain, connection.ops.adapt_datetimefield_value(start), *totals, spool_bytes]
    added = ", ".join(f"{name} = {TABLE}.{name} + EXCLUDED.{name}" for name in COUNTERS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (node_id, grain, start, {columns}, sessions, players, spool_bytes) "
            f"VALUES {values} ON CONFLICT (node_id, grain, start) DO UPDATE SET {added}, "
            f"spool_bytes = {greatest}({TABLE}.spool_bytes, EXCLUDED.spool_bytes)",
            params,
        )


def history_rollup(*, now: dt.datetime, lookback_minutes: int) -> int:
    """Set sessions/players of the last `lookback_minutes` minutes (and their hours and days) from the
    session rows. Returns the number of minute rows written."""
    first = bucket_start(Grain.MINUTE, now) - dt.timedelta(minutes=max(lookback_minutes - 1, 0))
    last = bucket_start(Grain.MINUTE, now)
    in_sql = connection.vendor == "postgresql"  # set-based; elsewhere (SQLite quick start) the same in Python
    with transaction.atomic():
        written = (_minute_gauges if in_sql else _minute_gauges_python)(first, last)
        for grain, span in (
            (Grain.HOUR, bucket_start(Grain.HOUR, first)),
            (Grain.DAY, bucket_start(Grain.DAY, first)),
        ):
            (_coarse_gauges if in_sql else _coarse_gauges_python)(grain, span)
    return written


def _minute_gauges(first: dt.datetime, last: dt.datetime) -> int:
    """Sessions open during each minute in [first, last]: started before its end, not ended before
    its start."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (node_id, grain, start, {', '.join(COUNTERS)}, sessions, players, "
            "spool_bytes) "
            f"SELECT s.node_id, 'minute', m.start, {', '.join(['0'] * len(COUNTERS))}, count(*), "
            "count(DISTINCT s.player_ip), 0 "
            "FROM generate_series(%s::timestamptz, %s::timestamptz, interval '1 minute') AS m(start) "
            "JOIN playback_streamsession s ON s.started_at < m.start + interval '1 minute' "
            "AND (s.ended_at IS NULL OR s.ended_at >= m.start) "
            "GROUP BY s.node_id, m.start "
            f"ON CONFLICT (node_id, grain, start) DO UPDATE SET sessions = EXCLUDED.sessions, "
            "players = EXCLUDED.players",
            [first, last],
        )
        written = cursor.rowcount
        # minutes in the window where nothing was open any more
        cursor.execute(
            f"UPDATE {TABLE} t SET sessions = 0, players = 0 "
            "WHERE grain = 'minute' AND start BETWEEN %s AND %s "
            "AND sessions > 0 AND NOT EXISTS (SELECT 1 FROM playback_streamsession s "
            "WHERE s.node_id = t.node_id AND s.started_at < t.start + interval '1 minute' "
            "AND (s.ended_at IS NULL OR s.ended_at >= t.start))",
            [first, last],
        )
    return written


def _coarse_gauges(grain: str, since: dt.datetime) -> None:
    """An hour's (day's) gauges: the largest of its minutes (hours), for the buckets from `since` on."""
    finer, unit = (Grain.MINUTE, "hour") if grain == Grain.HOUR else (Grain.HOUR, "day")
    tz = timezone.get_current_timezone_name()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (node_id, grain, start, {', '.join(COUNTERS)}, sessions, players, "
            "spool_bytes) "
            f"SELECT node_id, %s, date_trunc('{unit}', start AT TIME ZONE %s) AT TIME ZONE %s, "
            f"{', '.join(['0'] * len(COUNTERS))}, max(sessions), max(players), max(spool_bytes) "
            f"FROM {TABLE} WHERE grain = %s AND start >= %s GROUP BY 1, 2, 3 "
            f"ON CONFLICT (node_id, grain, start) DO UPDATE SET sessions = EXCLUDED.sessions, "
            f"players = EXCLUDED.players, spool_bytes = GREATEST({TABLE}.spool_bytes, EXCLUDED.spool_bytes)",
            [grain, tz, tz, finer, since],
        )


def _minute_gauges_python(first: dt.datetime, last: dt.datetime) -> int:
    """_minute_gauges without SQL of PostgreSQL's: the open sessions of the window, counted per minute."""
    minute = dt.timedelta(minutes=1)
    open_sessions = StreamSession.objects.filter(started_at__lt=last + minute).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=first)
    )
    counted: dict[tuple[int, dt.datetime], list] = {}
    for node_id, ip, started, ended in open_sessions.values_list(
        "node_id", "player_ip", "started_at", "ended_at"
    ):
        at = max(first, bucket_start(Grain.MINUTE, started))
        stop = min(last, bucket_start(Grain.MINUTE, ended)) if ended else last
        while at <= stop:
            entry = counted.setdefault((node_id, at), [0, set()])
            entry[0] += 1
            if ip is not None:
                entry[1].add(ip)
            at += minute
    window = TrafficBucket.objects.filter(grain=Grain.MINUTE, start__gte=first, start__lte=last)
    stale = [r.pk for r in window.filter(sessions__gt=0) if (r.node_id, r.start) not in counted]
    TrafficBucket.objects.filter(pk__in=stale).update(sessions=0, players=0)
    _set_gauges(Grain.MINUTE, {key: (n, len(ips), 0) for key, (n, ips) in counted.items()})
    return len(counted)


def _coarse_gauges_python(grain: str, since: dt.datetime) -> None:
    finer = Grain.MINUTE if grain == Grain.HOUR else Grain.HOUR
    largest: dict[tuple[int, dt.datetime], tuple[int, int, int]] = {}
    for row in TrafficBucket.objects.filter(grain=finer, start__gte=since):
        key = (row.node_id, bucket_start(grain, row.start))
        old = largest.get(key, (0, 0, 0))
        largest[key] = (max(old[0], row.sessions), max(old[1], row.players), max(old[2], row.spool_bytes))
    _set_gauges(grain, largest)


def _set_gauges(grain: str, gauges: dict[tuple[int, dt.datetime], tuple[int, int, int]]) -> None:
    """Upsert (node, start) -> (sessions, players, spool_bytes); the spool only grows."""
    existing = {
        (r.node_id, r.start): r
        for r in TrafficBucket.objects.filter(grain=grain, start__in={start for _, start in gauges})
    }
    fresh, changed = [], []
    for (node_id, start), (sessions, players, spool) in gauges.items():
        row = existing.get((node_id, start))
        if row is None:
            fresh.append(
                TrafficBucket(
                    node_id=node_id,
                    grain=grain,
                    start=start,
                    sessions=sessions,
                    players=players,
                    spool_bytes=spool,
                )
            )
        else:
            row.sessions, row.players, row.spool_bytes = sessions, players, max(row.spool_bytes, spool)
            changed.append(row)
    TrafficBucket.objects.bulk_update(changed, ["sessions", "players", "spool_bytes"])
    # a row ingestion inserted meanwhile: take it over (the counters stay as they are)
    TrafficBucket.objects.bulk_create(
        fresh,
        update_conflicts=True,
        unique_fields=["node", "grain", "start"],
        update_fields=["sessions", "players", "spool_bytes"],
    )


def history_prune(*, now: dt.datetime, keep: dict[str, dt.timedelta], limit: int) -> int:
    """Delete at most `limit` rows per grain older than that grain's retention."""
    deleted = 0
    for grain, age in keep.items():
        ids = list(
            TrafficBucket.objects.filter(grain=grain, start__lt=now - age)
            .order_by("start")
            .values_list("id", flat=True)[:limit]
        )
        deleted += TrafficBucket.objects.filter(id__in=ids).delete()[0]
    return deleted
