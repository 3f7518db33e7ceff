"""by-player-software with a url prefix from the url x software grain (cs, migration 0021): equal to the raw aggregate
after inserts, updates of a play log's software or url, and deletes; the migration's bulk build writes the rows the
fold keeps."""
import datetime as dt
import importlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from appliance.playback.models import PlayLog, ReportCell, ReportPlayer, RollupPending
from appliance.playback.rollup_reports import rollup_report
from appliance.playback.rollups import rollups_fold_pending
from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory, ProxyNodeFactory
from tests.appliance.playback.test_rollups import assert_index_migration_reverses, build, rollup_rows
from tests.appliance.playback.test_url_prefix_rollups import raw_report

pytestmark = [pytest.mark.django_db]

# a hot prefix, a single url, the whole host, and prefixes matching nothing
PREFIXES = ["rtsp://p/c", "rtsp://p/c1", "rtsp://p/", "rtsp://p/zz", "rtsp://p/c_"]
# software a split of key_b at its chr(31) would misname, and names the collation orders apart from bytes
TRICKY_SOFTWARE = [("wm\x1fplayer.exe", "12.0"), ("vlc", "3.0\x1f1"), ("VLC", "3.0"), ("\u00e9vlc", "3.0"),
                   ("", ""), ("vlc", "")]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("roll-ups are PostgreSQL triggers; SQLite reports read the raw table")


@pytest.fixture
def origins():
    return [OriginFactory(name="gst"), OriginFactory(name="wms")]


def tricky_plays(count: int = 2) -> None:
    """Each tricky software `count` times on two urls of the prefix (ties in plays), players shared across urls."""
    node = ProxyNodeFactory()
    for hostexe, version in TRICKY_SOFTWARE:
        for i in range(count):
            for url in ("rtsp://p/c1", "rtsp://p/c2"):
                PlayLogFactory(node=node, url=url, cs_uri_stem="", c_hostexe=hostexe, c_playerversion=version,
                               c_playerid=["A", "a", "e\u0301", ""][i % 4], logged_at=BASE_TIME + dt.timedelta(hours=i))


def assert_equal_to_raw(settings, prefixes=PREFIXES) -> None:
    settings.APPLIANCE_REPORT_PREFETCH_ROWS = 2  # pages past the first read
    for prefix in prefixes:
        raw = raw_report("by-player-software", {"url": prefix})
        rows = rollup_report(group="by-player-software", filters={"url": prefix})
        assert rows is not None and len(rows) == len(raw), prefix
        paged = [row for start in range(0, len(rows), 2) for row in rows[start:start + 2]]
        assert paged == raw, prefix


def test_url_software_report_equals_the_raw_report(settings, origins):
    build(origins, count=200, days=6)
    tricky_plays()
    assert_equal_to_raw(settings)
    assert len(raw_report("by-player-software", {"url": "rtsp://p/c"})) >= 8
    build(origins, count=60, seed=9)  # pending: the report folds them first
    assert RollupPending.objects.exists()
    assert_equal_to_raw(settings)


def test_url_software_report_after_updates_and_deletes(settings, origins):
    build(origins, count=150, days=4)
    tricky_plays()
    rollups_fold_pending(limit=10_000)
    some = PlayLog.objects.filter(kind="logplay", url="rtsp://p/c1").order_by("pk")
    PlayLog.objects.filter(pk__in=some.values("pk")[:5]).update(c_hostexe="new\x1fexe", c_playerversion="9")
    assert_equal_to_raw(settings)
    PlayLog.objects.filter(pk__in=some.values("pk")[:7]).update(url="rtsp://p/c9")  # into another url of the prefix
    PlayLog.objects.filter(pk__in=PlayLog.objects.filter(url="rtsp://p/c2").values("pk")[:4]).update(
        url="rtsp://q/out", c_playerversion="3.0")  # out of every prefix
    assert_equal_to_raw(settings, [*PREFIXES, "rtsp://p/c9", "rtsp://q/"])
    PlayLog.objects.filter(pk__in=PlayLog.objects.filter(kind="logplay").order_by("-pk").values("pk")[:30]).delete()
    PlayLog.objects.filter(c_hostexe="VLC").delete()  # a software gone from every url: its cells go
    assert_equal_to_raw(settings)
    assert not ReportCell.objects.filter(grain="cs", key_b__startswith="VLC\x1f").exists()


def test_url_software_report_reads_the_cs_cells_once_and_players_for_the_page(settings, origins):
    """One pass over the prefix's cs cells ranks with every sum (no play-log aggregate); one statement counting the
    cs player rows repeating a player of the prefix, for the page served (no DISTINCT)."""
    settings.APPLIANCE_REPORT_PREFETCH_ROWS = 500
    build(origins, count=150)
    tricky_plays()
    rollups_fold_pending(limit=10_000)
    raw = raw_report("by-player-software", {"url": "rtsp://p/c"})
    rows = rollup_report(group="by-player-software", filters={"url": "rtsp://p/c"})
    with CaptureQueriesContext(connection) as queries:
        page = rows[2:5]
    statements = [q["sql"] for q in queries.captured_queries]
    assert page == raw[2:5]
    assert not any("playback_playlog" in sql for sql in statements if "SUM(" in sql.upper())
    cell_sums = [sql for sql in statements if "SUM(" in sql and "'cs'" in sql]
    assert len(cell_sums) == 1 and "GROUP BY 1 ORDER BY" in cell_sums[0]  # the names' subqueries run per software
    player_counts = [sql for sql in statements if "playback_reportplayer" in sql]
    assert len(player_counts) == 1 and "prev_url_overlap" in player_counts[0] and "DISTINCT" not in player_counts[0]
    assert rows[2:5] == page and list(rows) == raw


def test_url_software_falls_back_with_a_range_or_origin(origins):
    build(origins, count=60)
    for filters in ({"url": "rtsp://p/c", "since": dt.datetime.combine(BASE_TIME.date(), dt.time(0), tzinfo=dt.UTC)},
                    {"url": "rtsp://p/c", "origin": origins[0]}):
        with CaptureQueriesContext(connection) as queries:
            rows = rollup_report(group="by-player-software", filters=filters)
        assert rows is not None and not any("'cs'" in q["sql"] for q in queries.captured_queries)


def test_migration_bulk_build_writes_the_rows_the_fold_keeps(settings, origins):
    build(origins, count=150, seed=3)
    tricky_plays()
    build(origins, count=40, seed=5)
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:10]).delete()
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("-pk").values("pk")[:5]).update(c_playerversion="7")
    rollups_fold_pending(limit=10_000)
    folded = rollup_rows("cs")
    assert len(folded[0]) > 10 and len(folded[1]) > 10
    assert any(cell[7] > 1 for cell in folded[0])  # players counted per cell
    migration = importlib.import_module("appliance.playback.migrations.0021_report_url_software_grain")
    with connection.schema_editor() as editor:  # cs rows deleted, then built in bulk
        migration.add_url_software_grain(None, editor)
    assert rollup_rows("cs") == folded
    build(origins, count=30, seed=10)  # pending when the migration runs: folded first, counted once
    assert RollupPending.objects.exists()
    with connection.schema_editor() as editor:
        migration.add_url_software_grain(None, editor)
    assert not RollupPending.objects.exists()
    assert_equal_to_raw(settings)
    build(origins, count=30, seed=11)  # and kept by the fold the migration installs
    assert_equal_to_raw(settings)
    with connection.schema_editor() as editor:  # backwards: the cs rows go, and the fold no longer writes them
        migration.drop_url_software_grain(None, editor)
    assert not ReportCell.objects.filter(grain="cs").exists() and not ReportPlayer.objects.filter(grain="cs").exists()
    build(origins, count=10, seed=12)
    rollups_fold_pending(limit=10_000)
    assert not ReportCell.objects.filter(grain="cs").exists()


def test_url_software_index_migration_reverses():
    """Migration 0021 backwards (the index and the grain's rows go) and forwards."""
    assert_index_migration_reverses("reportcell_url_software", "0020_report_player_url_overlap",
                                    "0021_report_url_software_grain")
