"""Reports read from the roll-ups (ReportCell/ReportPlayer) when the filters are expressible on them.

Expressible: no filter, `origin`, `node` alone, `since`/`until` at local midnight (whole report days), and `url`
when no LogPlay row matches it by cs-uri-stem alone (then it is a url prefix, answered by the url-keyed grains),
on PostgreSQL with roll-ups built for the current time zone (see _grain for the combinations). Everything else returns None and the
caller aggregates the raw play logs. Results equal the raw aggregate (same expressions over sums).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import (BigIntegerField, Count, ExpressionWrapper, F, FloatField, Min, OuterRef, QuerySet,
                              Subquery, Sum, UUIDField, Value, Window)
from django.db.models.functions import MD5, Cast, Coalesce, NullIf
from django.utils import timezone

from appliance.origins.models import Origin
from appliance.playback.models import PlayLog, ReportCell, ReportPlayer, ReportReturning
from appliance.playback.paged_rows import PagedRows
from appliance.playback.reports import playlog_report
from appliance.playback.rollup_sql import GRAINS as GRAIN_KEYS
from appliance.playback.rollup_sql import PLAYER
from appliance.playback.rollups import rollups_fold_pending

NO_DAY = dt.date(1970, 1, 1)  # rollup_sql.NO_DAY: the day of the grains without one
EXPRESSIBLE = {"since", "until", "origin", "url", "node"}
# group -> (grain without filters, with origin, with a day range, with origin and a day range, with node,
# cell group-by column)
GRAINS = {
    "by-day": ("d", "do", "d", "do", "dn", "day"),
    "by-origin": ("o", "o", "do", "do", "on", "origin_id"),
    "by-content": ("c", "co", "cd", "oc", "cn", "key_hash"),
    "by-player-software": ("s", "so", "sd", "os", "sn", "key_hash"),
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


def _url_is_a_prefix_filter(url: str) -> bool:
    """The url filter (url prefix, or cs-uri-stem equal) selects just the url-prefix rows: no LogPlay row
    matches by cs-uri-stem alone. Then the url-keyed grains answer it (one index probe on cs_uri_stem)."""
    return not (PlayLog.objects.filter(kind="logplay", cs_uri_stem=url).exclude(url__startswith=url).exists())


def _url_prefix_raw_report(group: str, filters: dict) -> list[dict]:
    """No url-keyed grain for these filters: the raw aggregate over the url-prefix rows only (an index-only
    scan of playlog_report_url_range, where the cs-uri-stem OR would need a bitmap heap scan)."""
    playlogs = PlayLog.objects.filter(url__startswith=filters["url"])
    if filters.get("origin") is not None:
        playlogs = playlogs.filter(origin=filters["origin"])
    if filters.get("since") is not None:
        playlogs = playlogs.filter(logged_at__gte=filters["since"])
    if filters.get("until") is not None:
        playlogs = playlogs.filter(logged_at__lt=filters["until"])
    # the server's default work_mem (4 MB) spills the sort of a hot prefix's rows to disk (a month of c17 at 10M:
    # 10 MB, about 1.5x slower)
    with _statement_setting("work_mem", f"{settings.APPLIANCE_REPORT_URL_PREFIX_WORK_MEM_MB}MB"):
        return list(playlog_report(group=group, playlogs=playlogs))


@contextmanager
def _statement_setting(name: str, value: str):
    """A PostgreSQL setting for the statements inside only: set_config(..., true) (SET LOCAL) in a transaction
    of their own (if the caller already holds one, it lasts to that transaction's end)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        yield cursor


def _grain(group: str, *, has_range: bool, origin, url) -> str | None:
    """The grain answering these filters (`node` aside: _node_grain) exactly, or None (the raw table answers)."""
    plain, with_origin, ranged, ranged_with_origin, _, _ = GRAINS[group]
    if url is not None:  # url-keyed grains only: c, co, cd, cs
        if group == "by-content":
            return None if has_range and origin is not None else ("cd" if has_range else
                                                                   "co" if origin is not None else "c")
        if group == "by-day":
            return None if origin is not None else "cd"
        if group == "by-origin":
            return None if has_range else "co"
        return None if has_range or origin is not None else "cs"
    if group == "by-day":
        return with_origin if origin is not None else plain
    if has_range:
        return ranged_with_origin if origin is not None else ranged
    return with_origin if origin is not None else plain


def _whole_weeks(first: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date] | None:
    """The Mondays [w0, w1) bounding the whole weeks inside [first, end) (the url x week grain's days), or None."""
    if first is None or end is None:
        return None
    w0, w1 = first + dt.timedelta(days=-first.weekday() % 7), end - dt.timedelta(days=end.weekday())
    return (w0, w1) if w0 < w1 else None


WEEK = dt.timedelta(days=7)
WEEK_MINUS_DAYS_FROM = 5  # an edge of 5 or 6 days of a week: its week cells minus 1-2 days' cells (fewer rows)


def _ranking_ranges(first: dt.date, end: dt.date, weeks: tuple[dt.date, dt.date]) -> list[tuple[str, dt.date, dt.date, int]]:
    """(grain, from, to, sign) cell ranges whose plays sum to [first, end)'s per url: the url x week cells of
    the whole weeks, each edge by its url x day cells, or (WEEK_MINUS_DAYS_FROM days or more) by its week's
    cells minus the days outside the range (sign -1). The week range comes first (UnionRanking's columns)."""
    (w0, w1), lead, tail = weeks, (weeks[0] - first).days, (end - weeks[1]).days
    week_from = w0 - WEEK if lead >= WEEK_MINUS_DAYS_FROM else w0
    week_to = w1 + WEEK if tail >= WEEK_MINUS_DAYS_FROM else w1
    return [("cw", week_from, week_to, 1), ("cd", week_from, first, -1) if week_from < w0 else ("cd", first, w0, 1),
            ("cd", end, week_to, -1) if week_to > w1 else ("cd", w1, end, 1)]


def _node_grain(group: str, *, has_range: bool, origin, url) -> str | None:
    """The node grains answer the node filter alone (with origin too on by-origin), else None (raw table)."""
    if has_range or url is not None or (origin is not None and group != "by-origin"):
        return None
    return GRAINS[group][4]


def rollup_report(*, group: str, filters: dict) -> Sequence[dict] | None:
    """Report rows from the roll-ups, or None when they cannot answer these filters exactly."""
    if any(filters.get(name) not in (None, "") for name in set(filters) - EXPRESSIBLE):
        return None
    first, end = _local_day(filters.get("since")), _local_day(filters.get("until"))
    if first is False or end is False:
        return None
    if rollup_time_zone() != timezone.get_current_timezone_name():
        return None
    rollups_fold_pending(limit=settings.APPLIANCE_ROLLUP_FOLD_BATCH)  # the tail beat has not folded yet
    origin, url, node = filters.get("origin"), filters.get("url") or None, filters.get("node")
    column = GRAINS[group][5]
    has_range = first is not None or end is not None
    if node is not None:
        grain = _node_grain(group, has_range=has_range, origin=origin, url=url)
        if grain is None:
            return None
    else:
        grain = _grain(group, has_range=has_range, origin=origin, url=url)
    if url is not None and not _url_is_a_prefix_filter(url):
        return None
    if grain is None:
        return None if url is None else _url_prefix_raw_report(group, filters)
    if grain == "cs":
        return _url_software_report(url)

    # by-content over a long range ranks its urls by whole weeks (url x week cells) plus the edge days
    # (not with a url: the page's few urls are probed in the day cells)
    weeks = _whole_weeks(first, end) if grain == "cd" and group == "by-content" and url is None else None

    def scoped(queryset, page: bool = False):
        queryset = queryset.filter(grain=grain)
        if first is not None:
            queryset = queryset.filter(day__gte=first)
        if end is not None:
            queryset = queryset.filter(day__lt=end)
        if origin is not None:
            queryset = queryset.filter(origin_id=origin.pk)
        if node is not None:  # node grains' cells only (ReportPlayer rows are never read for them)
            queryset = queryset.filter(node_id=node.pk)
        if url is not None:  # literal lists, so the planner probes the (grain, origin, key) indexes per key
            # a by-content page's urls (key_hash IN the page's keys) are some of these: a second key list
            # would make the planner cost a probe per pair of keys and scan the table instead
            if not (page and column == "key_hash"):
                queryset = queryset.filter(key_hash__in=url_keys)
            # c cells: origin 0 before key_hash in reportcell_unique_key, a probe per url; cd cells (origin 0 as
            # well) without it, so reportcell_url_day_sums answers index-only; co: the urls' cells of every origin
            if grain == "c":
                queryset = queryset.filter(origin_id=0)
            if grain != "cd":
                queryset = queryset.filter(day=NO_DAY)
        return queryset

    if url is not None:  # a url cell's key_hash is the same in every url-keyed grain
        url_keys = list(ReportCell.objects.filter(grain="c", key_a__startswith=url).values_list("key_hash", flat=True))

    # distinct players of an output row: "cell" one cell per row, its `players` is exact; "ranged" one key over
    # a day range, first-ever days (cells' first_players) + rows back after a gap (rollup_sql.py); "prefix"
    # several urls per row (url filter on by-day/by-origin), the cells' players minus the player rows that repeat
    # a player of the prefix (prev_url_overlap: rollup_sql.py)
    mode = ("prefix" if url is not None and group in ("by-day", "by-origin")
            else "ranged" if has_range and group != "by-day" else "cell")
    players = Cast(Sum("first_players" if mode == "ranged" else "players"), BigIntegerField())
    # ties in plays: by day, origin ("no origin" last), url, or player software
    sort_keys = {"day": ["day"], "origin_id": ["origin_key"],
                 "key_hash": ["key_a", "key_b"] if group == "by-player-software" else ["key_a"]}[column]
    key_columns = {"origin_key": NullIf(Min("origin_id"), Value(0)), "key_a": Min("key_a"), "key_b": Min("key_b")}
    # "prefix" rows are few (days, origins): the ranking sums every metric in its one pass over the cells
    ranked_sums = _metrics(players) if mode == "prefix" else {"plays": Cast(Sum("plays"), BigIntegerField())}
    if weeks is not None:  # no origin, node or url filter here (grain cd without a url)
        ranking = UnionRanking([(ReportCell.objects.filter(grain=cell_grain, day__gte=lo, day__lt=hi), sign)
                                for cell_grain, lo, hi, sign in _ranking_ranges(first, end, weeks) if lo < hi])
    else:
        ranking = (scoped(ReportCell.objects.order_by()).values(column)
                   .annotate(**ranked_sums, **{k: key_columns[k] for k in sort_keys if k in key_columns})
                   .order_by("-plays", *sort_keys).annotate(rows_total=Window(Count("*"))))
    cells = None if mode == "prefix" else scoped(ReportCell.objects.order_by(), page=True).values(column).annotate(
        **_metrics(players), **({"key_a": Min("key_a"), "key_b": Min("key_b")} if column == "key_hash" else {}))

    def players_of(rows: list[dict]) -> None:
        """The page's unique_players where a cell's own count is not the answer (modes above)."""
        keys = [row[column] for row in rows]
        if mode == "ranged" and first is not None:
            returning = scoped(ReportReturning.objects.order_by(), page=True).filter(prev_day__lt=first, **{f"{column}__in": keys})
            if not GRAIN_KEYS[grain][1]:  # origin 0 throughout: the page's keys are probed in the index
                returning = returning.filter(origin_id=0)
            returning = returning.values(column).annotate(n=Sum("n"))
            counts = {row[column]: row["n"] for row in returning}
            for row in rows:
                row["unique_players"] += counts.get(row[column], 0)
        elif mode == "prefix" and rows:
            repeats = _prefix_repeats(grain, column, url_keys, keys, len(url))
            for row in rows:
                row["unique_players"] -= repeats.get(row[column], 0)

    def finish(rows: list[dict]) -> list[dict]:
        players_of(rows)
        return [_output(group, row) for row in _with_origin_names(group, rows)]

    return ReportRows(ranking, cells, column, finish)


def _prefix_repeats(grain: str, column: str, url_keys: list, keys: list, prefix_length: int) -> dict:
    """Per day (grain cd) or origin (co), the player rows of the urls `url_keys` (those starting with a prefix of
    `prefix_length` characters) whose player has an earlier url under the prefix in the same partition: their
    prev_url_overlap reaches the prefix's length (rollup_sql.py). A row's distinct players are its cells'
    `players` minus these. One probe per url in reportplayer_url_repeats reading only such rows; by-day counts
    the served page's days only, by-origin every origin (PostgreSQL 15 would probe a second key list for every
    pair of keys)."""
    repeats = ReportPlayer.objects.order_by().filter(grain=grain, key_hash__in=url_keys,
                                                    prev_url_overlap__gte=prefix_length)
    if grain == "cd":
        repeats = repeats.filter(day__gte=min(keys), day__lte=max(keys), day__in=keys)
    return {row[column]: row["n"] for row in repeats.values(column).annotate(n=Count("*"))}


def _url_software_report(url: str) -> ReportRows:
    """by-player-software with a url prefix alone, from the url x software cells (grain cs, migration 0021): the
    ranking sums every metric per software in one pass over the prefix's cells (reportcell_url_software,
    index-only). A software's names are read from its own cell of grain s (key_hash = md5 of the cs key_b), not
    split from key_b: hostexe or version may hold a chr(31) themselves; the subquery runs once per software
    (annotated after the sums: not in GROUP BY, where it would run once per cell). Ties in plays by hostexe, then
    version, as in the raw report. Unique players: the cells' players minus, for the page served, the rows repeating a
    player of the prefix (_software_repeats)."""
    software = ReportCell.objects.filter(grain="s", day=NO_DAY, origin_id=0,
                                         key_hash=Cast(MD5(OuterRef("key_b")), UUIDField()))
    ranking = (ReportCell.objects.order_by().filter(grain="cs", key_a__startswith=url).values("key_b")
               .annotate(**_metrics(Cast(Sum("players"), BigIntegerField())))  # names: not grouped by
               .annotate(hostexe=Subquery(software.values("key_a")[:1]), version=Subquery(software.values("key_b")[:1]))
               .order_by("-plays", "hostexe", "version").annotate(rows_total=Window(Count("*"))))

    def finish(rows: list[dict]) -> list[dict]:
        repeats = _software_repeats(url, [row["key_b"] for row in rows]) if rows else {}
        return [_output("by-player-software", {**row, "key_a": row["hostexe"], "key_b": row["version"],
                                               "unique_players": row["unique_players"] - repeats.get(row["key_b"], 0)})
                for row in rows]

    return ReportRows(ranking, None, "key_b", finish)


def _software_repeats(url: str, software: list[str]) -> dict[str, int]:
    """Per software (a cs key_b of `software`), the player rows of the url prefix's cs cells whose player has an
    earlier url under the prefix with that software (prev_url_overlap >= the prefix's length: _prefix_repeats):
    the page's software's cells (reportcell_url_software), each probed in reportplayer_url_repeats."""
    cells = ReportCell.objects.order_by().filter(grain="cs", key_a__startswith=url, key_b__in=software)
    sql, params = cells.values("key_b", "key_hash").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.key_b, count(*) FROM ({sql}) c JOIN {PLAYER} p ON p.key_hash = c.key_hash "
                       "AND p.grain = 'cs' AND p.prev_url_overlap >= %s GROUP BY 1", [*params, len(url)])
        return dict(cursor.fetchall())


class UnionRanking:
    """by-content's ranking over whole weeks: url x week cells and url x day cells (rollup_reports._ranking_ranges,
    some taken off), as one UNION ALL of (grain, day) ranges, each an index-only scan of reportcell_content_days
    (an OR of the ranges is not: the planner then reads the whole index). Sliced like the ORM ranking: rows of
    key_hash, plays, key_a and rows_total, ordered by plays descending, then url; a url whose plays are all
    taken off (played only on days outside the range) is left out, as in the raw report."""

    def __init__(self, parts: list[tuple[QuerySet, int]]) -> None:
        compiled = [(part.order_by().values_list("key_hash", "plays", "key_a").query.sql_with_params(), sign)
                    for part, sign in parts]
        self._cells = " UNION ALL ".join(f"({sql})" if sign > 0 else
                                         f"(SELECT key_hash, -plays AS plays, key_a FROM ({sql}) taken_off)"
                                         for (sql, _), sign in compiled)
        self._params = [param for (_, params), _ in compiled for param in params]

    def _rows(self, sql: str, params: list) -> list[tuple]:
        with _statement_setting("max_parallel_workers_per_gather",
                                str(settings.APPLIANCE_REPORT_RANKING_PARALLEL_WORKERS)) as cursor:
            cursor.execute(sql, self._params + params)
            return cursor.fetchall()

    def __getitem__(self, index: slice) -> list[dict]:
        rows = self._rows("SELECT key_hash, sum(plays)::bigint, min(key_a), count(*) OVER () FROM "
                          f"({self._cells}) cells GROUP BY 1 HAVING sum(plays) > 0 ORDER BY 2 DESC, 3 "
                          "LIMIT %s OFFSET %s", [index.stop - index.start, index.start])
        return [{"key_hash": key, "plays": plays, "key_a": key_a, "rows_total": total}
                for key, plays, key_a, total in rows]

    def count(self) -> int:
        return self._rows(f"SELECT count(*) FROM (SELECT 1 FROM ({self._cells}) cells GROUP BY key_hash "
                          "HAVING sum(plays) > 0) played", [])[0][0]


class ReportRows(PagedRows):
    """A roll-up report's rows, read a page at a time. `ranking` (a QuerySet or UnionRanking) sums only
    plays (and the order's keys) per row with ORDER BY ... LIMIT in SQL and the number of rows from the
    same statement (rows_total: count(*) OVER ()); then every metric is summed for that page's keys only
    (by-content over a month: the month's url-week cells are read for plays, the nine sums for the page's
    urls). Without `cells` the ranking's rows carry every sum (a url prefix on by-day / by-origin: one pass over
    the cells)."""

    def __init__(self, ranking: QuerySet | UnionRanking, cells: QuerySet | None, column: str, finish) -> None:
        super().__init__()
        self._ranking = ranking
        self._cells = cells
        self._column = column
        self._finish = finish

    def _fetch(self, start: int, stop: int) -> list[dict]:
        ranked = list(self._ranking[start:stop]) if stop > start else []
        if ranked:
            self._total = ranked[0]["rows_total"]
        elif self._total is None:
            self._total = 0 if start == 0 else self._ranking.count()
        if self._cells is None:  # the ranking's rows carry every sum
            return ranked
        keys = [row[self._column] for row in ranked]
        sums = {row[self._column]: row for row in self._cells.filter(**{f"{self._column}__in": keys})} if keys else {}
        return [sums[key] for key in keys]

    def _finished(self, rows: list[dict]) -> list[dict]:
        return self._finish([dict(row) for row in rows])  # copies: a prefetched row may be served again


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
