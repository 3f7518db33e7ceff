"""A url prefix on by-day / by-origin from the roll-ups: every sum from one pass over the url cells, unique
players the cells' players minus the rows repeating a player under the prefix (prev_url_overlap), equal to the
raw aggregate on every page and for every prefix."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from appliance.playback.filters import PlayLogFilterSet
from appliance.playback.models import PlayLog
from appliance.playback.reports import playlog_report
from appliance.playback.rollup_reports import rollup_report
from appliance.playback.rollups import rollups_fold_pending
from tests.appliance.factories import OriginFactory, PlayLogFactory, ProxyNodeFactory
from tests.appliance.playback.test_rollups import build, midnight

pytestmark = [pytest.mark.django_db]

PREFIX = "rtsp://p/c"
# players a DISTINCT must tell apart (case, composed and decomposed accents) and one seen on two urls a day
TRICKY_PLAYERS = ["A", "a", "\u00e9", "e\u0301", "{0b3f}", ""]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("roll-ups are PostgreSQL triggers; SQLite reports read the raw table")


def raw_report(group: str, filters: dict) -> list[dict]:
    playlogs = PlayLog.objects.all()
    if "since" in filters:
        playlogs = playlogs.filter(logged_at__gte=filters["since"])
    if "until" in filters:
        playlogs = playlogs.filter(logged_at__lt=filters["until"])
    return list(playlog_report(group=group, playlogs=PlayLogFilterSet().filter_url(playlogs, "url", filters["url"])))


def tricky_plays(origins) -> None:
    """Each tricky player on two urls of the prefix on the same days, under two origins, and a url outside it."""
    node = ProxyNodeFactory()
    for day in (0, 2, 3):
        for player in TRICKY_PLAYERS:
            for url, origin in ((f"{PREFIX}1", origins[0]), (f"{PREFIX}2", origins[1]), (f"{PREFIX}3", origins[0]),
                                ("rtsp://p/other", origins[1])):
                PlayLogFactory(node=node, origin=origin, url=url, cs_uri_stem="", kind="logplay", c_playerid=player,
                               logged_at=midnight(day) + dt.timedelta(hours=3), x_duration=60)


@pytest.mark.parametrize("spec", [{"url": PREFIX}, {"url": "rtsp://p/"},
                                  {"url": PREFIX, "since": midnight(1), "until": midnight(4)}])
def test_url_prefix_by_day_and_origin_equal_the_raw_report_on_every_page(settings, spec):
    settings.APPLIANCE_REPORT_PREFETCH_ROWS = 2  # pages past the first read: their own days / origins
    origins = [OriginFactory(name="gst"), OriginFactory(name="wms"), OriginFactory(name="rtp")]
    build(origins, count=200, days=6)
    tricky_plays(origins)
    for group in ("by-day", "by-origin"):
        if group == "by-origin" and "since" in spec:
            continue  # no url-keyed grain with a range: the raw table answers (not this path)
        raw = raw_report(group, spec)
        rows = rollup_report(group=group, filters=spec)
        assert len(raw) > 2 and len(rows) == len(raw), (group, spec)
        paged = [row for start in range(0, len(rows), 2) for row in rows[start:start + 2]]
        assert paged == raw, (group, spec)


def test_url_prefix_players_count_each_player_once_per_row():
    origins = [OriginFactory(name="gst"), OriginFactory(name="wms")]
    tricky_plays(origins)
    by_day = rollup_report(group="by-day", filters={"url": PREFIX})
    assert [row["unique_players"] for row in by_day] == [len(TRICKY_PLAYERS) - 1] * 3  # "" is no player
    by_origin = {row["origin_id"]: row["unique_players"] for row in rollup_report(group="by-origin", filters={"url": PREFIX})}
    assert by_origin == {origins[0].pk: 5, origins[1].pk: 5}
    assert list(by_day) == raw_report("by-day", {"url": PREFIX})


def test_url_prefix_reads_the_cells_once_and_one_key_list_per_statement(origins):
    """The ranking carries every sum (no second read of the cells for the page), and the player count lists
    the urls (by-day: and the served days, within their range; by-origin: no origin list)."""
    build(origins, count=150)
    for group, spec in (("by-day", {"url": PREFIX}), ("by-day", {"url": PREFIX, "since": midnight(1)}),
                        ("by-origin", {"url": PREFIX})):
        with CaptureQueriesContext(connection) as queries:
            rows = list(rollup_report(group=group, filters=spec))
        assert rows == raw_report(group, spec)
        statements = [q["sql"] for q in queries.captured_queries]
        cell_sums = [sql for sql in statements if 'FROM "playback_reportcell"' in sql and "SUM(" in sql]
        assert len(cell_sums) == 1, (group, spec)
        player_counts = [sql for sql in statements if 'FROM "playback_reportplayer"' in sql]
        lists = 2 if group == "by-day" else 1
        assert len(player_counts) == 1 and player_counts[0].count(" IN (") == lists, (group, spec)
        assert "prev_url_overlap" in player_counts[0] and "DISTINCT" not in player_counts[0]


def test_url_prefix_counts_players_for_the_served_page_only(settings, origins):
    """A page of 2 days out of the 6 or more read ahead counts the distinct players of those 2 days only, and serving the
    read-ahead rows again gives the same numbers (a served row is a copy)."""
    settings.APPLIANCE_REPORT_PREFETCH_ROWS = 500
    build(origins, count=150, days=6)
    raw = raw_report("by-day", {"url": PREFIX})
    rows = rollup_report(group="by-day", filters={"url": PREFIX})
    assert len(rows) == len(raw) >= 6
    with CaptureQueriesContext(connection) as queries:
        page = rows[2:4]
    player_counts = [q["sql"] for q in queries.captured_queries if 'FROM "playback_reportplayer"' in q["sql"]]
    assert page == raw[2:4] and len(player_counts) == 1
    days = [row["day"] for row in page]
    assert all(f"'{day.isoformat()}'::date" in player_counts[0] for day in days)
    assert not any(f"'{row['day'].isoformat()}'::date" in player_counts[0] for row in raw if row["day"] not in days)
    assert rows[2:4] == page and list(rows) == raw


@pytest.fixture
def origins():
    return [OriginFactory(name="gst"), OriginFactory(name="wms")]


def test_url_day_sums_index_migration_reverses():
    """Migration 0018 (reportcell_url_days widened to reportcell_url_day_sums) backwards and forwards."""
    from django.db.migrations.executor import MigrationExecutor

    def indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'reportcell_url_day%%'")
            return {name for (name,) in cursor.fetchall()}

    assert indexes() == {"reportcell_url_day_sums"}
    for target, present in (("0017_report_content_days_covering", {"reportcell_url_days"}),
                            ("0018_report_cell_url_day_sums", {"reportcell_url_day_sums"})):
        MigrationExecutor(connection).migrate([("playback", target)])
        assert indexes() == present


# urls sharing prefixes of every length, a two-byte character among them (overlaps count characters)
OVERLAP_URLS = ["rtsp://p/c1", "rtsp://p/c10", "rtsp://p/c11", "rtsp://p/c2", "rtsp://p/c\u00e9", "rtsp://p/c\u00e9t",
                "rtsp://p/d", "rtsp://q/c1"]


def every_prefix() -> list[str]:
    return sorted({url[:cut] for url in OVERLAP_URLS for cut in range(len("rtsp://"), len(url) + 1)} | {"rtsp://p/c1x"})


def assert_every_prefix_matches_raw() -> int:
    checked = 0
    for prefix, group in ((prefix, group) for prefix in every_prefix() for group in ("by-day", "by-origin")):
        rows = rollup_report(group=group, filters={"url": prefix})
        assert rows is not None and list(rows) == raw_report(group, {"url": prefix}), (group, prefix)
        checked += bool(rows)
    return checked


def test_every_prefix_counts_players_once_through_inserts_deletes_and_updates(origins):
    """Players on several urls a day (and an origin), in and out of each prefix: the counts equal the raw report for
    every prefix of every url, as rows are added, a player's middle url is deleted (its successor's overlap moves),
    and rows change url or player."""
    node = ProxyNodeFactory()
    plays = {}
    for day, player, urls in ((0, "A", OVERLAP_URLS), (0, "B", OVERLAP_URLS[1:4]), (1, "A", OVERLAP_URLS[::2]),
                              (1, "C", OVERLAP_URLS[3:6]), (1, "B", OVERLAP_URLS[4:])):
        for url in urls:
            plays[(day, player, url)] = PlayLogFactory(
                node=node, origin=origins[len(url) % 2], url=url, cs_uri_stem="", kind="logplay", c_playerid=player,
                logged_at=midnight(day) + dt.timedelta(hours=2), x_duration=30)
    assert assert_every_prefix_matches_raw() >= 30
    plays[(0, "A", "rtsp://p/c11")].delete()  # c10 and c2 now neighbours in A's day 0
    plays[(0, "B", "rtsp://p/c10")].delete()  # B's first url under rtsp://p/c1 goes
    assert_every_prefix_matches_raw()
    PlayLog.objects.filter(pk=plays[(1, "A", "rtsp://p/c\u00e9")].pk).update(url="rtsp://p/c12")
    PlayLog.objects.filter(pk=plays[(1, "C", "rtsp://p/c2")].pk).update(c_playerid="A")
    PlayLog.objects.filter(pk=plays[(1, "B", "rtsp://p/d")].pk).update(origin=origins[1 - len("rtsp://p/d") % 2])
    assert_every_prefix_matches_raw()


def test_overlaps_kept_equal_overlaps_written_afresh(origins):
    """The triggers' and fold's prev_url_overlap equal a recomputation over every url grain row (the migration's)."""
    from appliance.playback.rollup_sql import backfill_overlaps_sql

    build(origins, count=200, days=4)
    rollups_fold_pending(limit=1000)
    build(origins, count=50, days=4, seed=8)  # folded with the deletes and updates below
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:20]).delete()
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("-pk").values("pk")[:60]).update(url="rtsp://p/c03")
    rollups_fold_pending(limit=1000)

    def overlaps():
        with connection.cursor() as cursor:
            cursor.execute("SELECT grain, day, origin_id, key_hash, player, prev_url_overlap FROM playback_reportplayer "
                           "WHERE grain IN ('cd', 'co') ORDER BY 1, 2, 3, 4, 5")
            return cursor.fetchall()

    kept = overlaps()
    assert sum(row[5] is not None for row in kept) > 20
    with connection.cursor() as cursor:
        cursor.execute("UPDATE playback_reportplayer SET prev_url_overlap = NULL")
        for statement in backfill_overlaps_sql():
            cursor.execute(statement)
    assert overlaps() == kept


def test_player_url_overlap_migration_reverses():
    """Migration 0020 backwards (the DISTINCT index back, the column gone) and forwards (overlaps written)."""
    from django.db.migrations.executor import MigrationExecutor

    def indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'reportplayer_url%%'")
            return {name for (name,) in cursor.fetchall()}

    assert indexes() == {"reportplayer_url_repeats", "reportplayer_url_partition"}
    for target, present in (("0019_report_url_prefix_range_covering", {"reportplayer_url_players"}),
                            ("0020_report_player_url_overlap", {"reportplayer_url_repeats", "reportplayer_url_partition"})):
        MigrationExecutor(connection).migrate([("playback", target)])
        assert indexes() == present
