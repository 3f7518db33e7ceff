"""Play-log aggregates, computed in SQL. Only LogPlay rows count as plays (LogConnect carries no play data)."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Avg, Count, F, FloatField, Q, QuerySet, Sum, Value, Window
from django.db.models.functions import Cast, Coalesce, Collate, NullIf, TruncDate

from appliance.playback.models import PlayLog
from appliance.playback.paged_rows import PagedRows

REPORT_GROUPS: dict[str, tuple[str, ...]] = {
    "by-content": ("url",),
    "by-day": ("day",),
    "by-player-software": ("c_hostexe", "c_playerversion"),
    "by-origin": ("origin_id", "origin__name"),
}


def _float(expression):
    return Cast(expression, FloatField())


def _player_id():
    """c_playerid for COUNT(DISTINCT): in the "C" collation on PostgreSQL, whose sort (memcmp, abbreviated keys)
    is about a third cheaper than the database's; the count is the same (a database's default collation is
    deterministic: equal means byte-equal in either)."""
    return Collate(F("c_playerid"), "C") if connection.vendor == "postgresql" else F("c_playerid")


def _metrics() -> dict:
    received = Coalesce(F("c_pkts_received"), Value(0))
    lost = Coalesce(F("c_pkts_lost_client"), Value(0))
    return {
        "plays": Count("*"),  # not Count("id"): id is not in the covering indexes
        "unique_players": Count(_player_id(), distinct=True, filter=~Q(c_playerid="")),
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


def playlog_report_rows(*, group: str, playlogs: QuerySet[PlayLog]) -> Sequence[dict]:
    """playlog_report's rows; by-content's (a row per url: thousands) read a page at a time on PostgreSQL."""
    if group == "by-content" and connection.vendor == "postgresql":
        return PagedContentReport(playlogs)
    return list(playlog_report(group=group, playlogs=playlogs))


class PagedContentReport(PagedRows):
    """The raw by-content report a page at a time: the urls ranked by plays alone (count(*) per url, hashed, with
    the number of urls from the same statement; the first APPLIANCE_REPORT_PREFETCH_ROWS read ahead), then
    playlog_report over the urls of the page served only (PagedRows._finished). Every url's metrics and distinct
    players (a sort of every row by url), and their conversion to Python, would cost three times as much for a
    page of 50 (24 h at 10M rows: 100,000 rows, 18,000 urls)."""

    def __init__(self, playlogs: QuerySet[PlayLog]) -> None:
        super().__init__()
        self._playlogs = playlogs
        # url, plays and rows_total (the number of urls), most plays first
        self.ranking = (playlogs.filter(kind="logplay").order_by().values("url")
                        .annotate(plays=Count("*"), rows_total=Window(Count("*"))).order_by("-plays", "url"))

    def _fetch(self, start: int, stop: int) -> list[dict]:
        ranked = list(self.ranking[start:stop])
        if self._total is None:
            self._total = ranked[0]["rows_total"] if ranked else 0
        return ranked

    def _finished(self, rows: list[dict]) -> list[dict]:
        urls = [row["url"] for row in rows]
        page = playlog_report(group="by-content", playlogs=self._playlogs.filter(url__in=urls)) if urls else []
        by_url = {row["url"]: row for row in page}
        return [by_url[url] for url in urls if url in by_url]  # a url's rows deleted since the ranking: left out
