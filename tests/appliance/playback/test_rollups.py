"""Report roll-ups (PostgreSQL triggers, the fold) give exactly the raw aggregate, whatever the write path."""
import datetime as dt
import importlib
import itertools
import random
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from appliance.control.services import report_batch_ingest
from appliance.playback.filters import PlayLogFilterSet
from appliance.nodes.models import ProxyNode
from appliance.playback.models import PlayLog, ReportCell, ReportReturning, RollupPending
from appliance.playback.reports import REPORT_GROUPS, playlog_report
from appliance.playback.rollup_reports import UnionRanking, rollup_report
from appliance.playback.rollups import rollups_fold, rollups_fold_pending
from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory, ProxyNodeFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("roll-ups are PostgreSQL triggers; SQLite reports read the raw table")


def midnight(days: int) -> dt.datetime:
    return dt.datetime.combine((BASE_TIME + dt.timedelta(days=days)).date(), dt.time(0), tzinfo=dt.UTC)


# filters the grains of migrations 0003-0013 answer (or leave to the raw table)
BASE_FILTERS = [
    {}, {"since": midnight(1)}, {"until": midnight(3)}, {"since": midnight(1), "until": midnight(3)},
    {"origin": "first"}, {"since": midnight(2), "until": midnight(4)},
    {"since": midnight(4)}, {"until": midnight(1)},
    {"url": "rtsp://p/c1"}, {"url": "rtsp://p/c"}, {"url": "rtsp://p/c1", "since": midnight(1), "until": midnight(3)},
    {"url": "rtsp://p/c2", "until": midnight(2)}, {"url": "rtsp://p/", "origin": "first"}, {"url": "/c3"},
    {"url": "rtsp://p/c3", "since": midnight(2)},
]
# node grains and origin x day grains (migration 0014)
FILTERS = BASE_FILTERS + [
    {"origin": "first", "since": midnight(2)}, {"origin": "first", "since": midnight(1), "until": midnight(4)},
    {"origin": "first", "until": midnight(3)}, {"node": "first"}, {"node": "second"},
    {"node": "first", "origin": "first"}, {"node": "first", "since": midnight(1)}, {"node": "first", "url": "rtsp://p/c1"},
]


def returning_rows() -> tuple[list, list]:
    """ReportReturning as kept, and as counted afresh from the player rows (rollup_sql.returning_build_sql)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT grain, origin_id, key_hash, day, prev_day, n FROM playback_reportreturning "
                       "ORDER BY 1, 2, 3, 4, 5")
        kept = cursor.fetchall()
        cursor.execute("SELECT grain, origin_id, key_hash, day, prev_day, count(*) FROM playback_reportplayer "
                       "WHERE grain IN ('do', 'cd', 'sd', 'oc', 'os') AND prev_day IS NOT NULL "
                       "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5")
        return kept, cursor.fetchall()


def assert_rollups_match_raw(origins, filter_specs=FILTERS, at_least=40, url_software=True):
    """url_software=False: roll-ups of a migration before 0020 (no url x software grain), whose by-player-software
    with a url prefix alone is not checked."""
    kept, counted = returning_rows()
    assert kept == counted
    checked = 0
    nodes = list(ProxyNode.objects.order_by("pk")[:2])
    for group, spec in itertools.product(REPORT_GROUPS, filter_specs):
        if not url_software and group == "by-player-software" and set(spec) == {"url"}:
            continue
        named = {"origin": origins[0], "node": {"first": nodes[0], "second": nodes[-1]}.get(spec.get("node"))}
        filters = {k: named.get(k, v) for k, v in spec.items()}
        playlogs = PlayLog.objects.all()
        if "since" in filters:
            playlogs = playlogs.filter(logged_at__gte=filters["since"])
        if "until" in filters:
            playlogs = playlogs.filter(logged_at__lt=filters["until"])
        if "origin" in filters:
            playlogs = playlogs.filter(origin=filters["origin"])
        if "node" in filters:
            playlogs = playlogs.filter(node=filters["node"])
        if "url" in filters:
            playlogs = PlayLogFilterSet().filter_url(playlogs, "url", filters["url"])
        raw = list(playlog_report(group=group, playlogs=playlogs))
        rolled = rollup_report(group=group, filters=filters)
        if rolled is None:
            continue  # not expressible on the roll-ups: the raw table answers
        assert rolled == raw, (group, spec)
        checked += 1
    assert checked >= at_least


@pytest.fixture
def origins():
    return [OriginFactory(name="gst"), OriginFactory(name="wms")]


def build(origins, count=120, seed=7, days=5):
    rng = random.Random(seed)
    nodes = [ProxyNodeFactory(), ProxyNodeFactory()]
    for _ in range(count):
        content = rng.randrange(6)
        PlayLogFactory(
            node=rng.choice(nodes), origin=rng.choice([*origins, None]), url=f"rtsp://p/c{content}",
            cs_uri_stem=rng.choice(["", f"/c{content}"]),
            logged_at=BASE_TIME + dt.timedelta(hours=rng.randrange(days * 24)),
            kind=rng.choice(["logplay"] * 5 + ["logconnect"]), c_playerid=rng.choice(["", "A", "B", "C", "D"]),
            c_hostexe=rng.choice(["wmplayer.exe", "vlc"]), c_playerversion=rng.choice(["12.0", "3.0"]),
            x_duration=rng.choice([None, rng.randrange(1, 4000)]), avgbandwidth=rng.choice([None, 10**6, 333]),
            c_pkts_received=rng.choice([None, rng.randrange(10**6)]), c_pkts_lost_client=rng.choice([None, 3]),
            c_buffercount=rng.choice([None, 2]), c_totalbuffertime=rng.choice([None, 5]))


def test_factory_rows_roll_up_exactly(origins):
    build(origins)
    logplays = PlayLog.objects.filter(kind="logplay").count()
    assert RollupPending.objects.count() == logplays and not ReportCell.objects.exists()  # inserts only mark
    assert rollups_fold(limit=50) == 50  # oldest first, a bounded batch per transaction
    assert ReportCell.objects.exists() and RollupPending.objects.count() == logplays - 50
    assert rollups_fold_pending(limit=50) == logplays - 50
    assert not RollupPending.objects.exists() and rollups_fold(limit=50) == 0
    assert_rollups_match_raw(origins)


def test_delete_and_update_of_pending_rows_before_the_fold(origins):
    """Rows deleted or moved while pending are folded as they are at fold time, never twice or negative."""
    build(origins, count=60)
    rollups_fold(limit=20)  # some rows folded, the others pending
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("-pk").values("pk")[:10]).delete()  # pending ones
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:10]).delete()  # folded ones
    PlayLog.objects.filter(origin=origins[0]).update(url="rtsp://p/moved")  # folded and pending alike
    origins[1].delete()  # SET_NULL over both kinds
    build(origins[:1], count=30, seed=3)
    assert_rollups_match_raw(origins[:1])
    assert not RollupPending.objects.exists()


def test_delete_and_origin_set_null_keep_rollups_exact(origins):
    build(origins)
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:30]).delete()
    assert_rollups_match_raw(origins)
    origins[1].delete()  # SET_NULL: an UPDATE moves the rows to "no origin"
    assert_rollups_match_raw(origins)
    PlayLog.objects.all().delete()
    assert not ReportCell.objects.exists()


def playlog_event(seq: int, player: str, day: int, duration: int) -> dict:
    fields = {"c-playerid": player, "x-duration": str(duration), "c-pkts-received": "10",
              "date": (BASE_TIME + dt.timedelta(days=day)).date().isoformat(), "time": "10:00:00"}
    return {"id": str(uuid.uuid4()), "seq": seq, "at": BASE_TIME + dt.timedelta(days=day), "kind": "playlog",
            "data": {"session_id": f"s{seq}", "url": "rtsp://p/x", "kind": "logplay", "log_type": "streaming",
                     "player_addr": "192.0.2.1:5000", "user_agent": "WMPlayer", "raw": "<XML/>",
                     "fields": fields, "parse_error": None}}


def test_duplicate_and_out_of_order_ingestion(origins):
    node = ProxyNodeFactory()
    info = {"name": node.name, "version": "0.1.0", "listen": "127.0.0.1:8554", "load": {}}
    newer = [playlog_event(seq, f"P{seq % 3}", 3, 100 * seq) for seq in range(10, 20)]
    older = [playlog_event(seq, f"P{seq % 4}", 1, 7) for seq in range(1, 10)]
    now = timezone.now()
    report_batch_ingest(node=node, node_info=info, events=newer, now=now)
    report_batch_ingest(node=node, node_info=info, events=older, now=now)  # lower seqs, earlier days, later
    report_batch_ingest(node=node, node_info=info, events=newer[:5] + older[-2:], now=now)  # redelivered
    assert PlayLog.objects.count() == 19
    rows = rollup_report(group="by-content", filters={})
    assert rows[0]["plays"] == 19 and rows[0]["unique_players"] == 4
    assert rows[0]["hours_watched"] == pytest.approx((sum(100 * s for s in range(10, 20)) + 9 * 7) / 3600)
    days = {row["day"]: row for row in rollup_report(group="by-day", filters={})}
    assert [days[d]["unique_players"] for d in sorted(days)] == [4, 3]
    assert_rollups_match_raw(origins)


def assert_old_rollups_match_raw(origins, filter_specs=BASE_FILTERS):
    """assert_rollups_match_raw for the triggers of a migration before 0020, which keep no url overlaps: they are
    written afresh first, as 0020 finds and writes them (and without the url x software grain of 0021)."""
    from appliance.playback.rollup_sql import backfill_overlaps_sql

    rollups_fold_pending(limit=1000)  # by the migration's fold, as a report would
    with connection.cursor() as cursor:
        for statement in backfill_overlaps_sql():
            cursor.execute(statement)
    assert_rollups_match_raw(origins, filter_specs, url_software=False)


def test_migration_backfills_existing_rows(origins):
    build(origins, count=60)
    derived = importlib.import_module("appliance.playback.migrations.0022_report_all_time_players_derived")
    with connection.schema_editor() as editor:  # the walk starts from 0021's triggers: 0022 backwards
        derived.underive_players(None, editor)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE playback_reportcell, playback_reportplayer")
    assert rollup_report(group="by-day", filters={}) == []
    migration = importlib.import_module("appliance.playback.migrations.0003_report_rollups")
    prev_days = importlib.import_module("appliance.playback.migrations.0004_report_player_prev_day")
    with connection.schema_editor() as editor:
        migration.install_rollups(None, editor)  # rebuilds the sums and players, not prev_day
        prev_days.install_prev_days(None, editor)
    assert_old_rollups_match_raw(origins)
    with connection.cursor() as cursor:  # cells as 0005 found them: the column's default
        cursor.execute("UPDATE playback_reportcell SET first_players = 0")
    first_players = importlib.import_module("appliance.playback.migrations.0005_report_cell_first_players")
    with connection.schema_editor() as editor:
        first_players.install_first_players(None, editor)
    assert_old_rollups_match_raw(origins)
    build(origins, count=40, seed=11)  # and the triggers 0004 installed keep prev_day
    assert_old_rollups_match_raw(origins)
    deferred = importlib.import_module("appliance.playback.migrations.0011_report_rollups_deferred")
    with connection.schema_editor() as editor:
        deferred.install_deferred(None, editor)
    build(origins, count=30, seed=12)
    assert RollupPending.objects.exists()
    with connection.schema_editor() as editor:  # backwards: pending rows folded, then kept in the writer's
        deferred.install_immediate(None, editor)
    assert not RollupPending.objects.exists()
    build(origins, count=30, seed=13)
    assert not RollupPending.objects.exists()
    assert_old_rollups_match_raw(origins)
    grains = importlib.import_module("appliance.playback.migrations.0014_report_node_and_origin_day_grains")
    build(origins, count=30, seed=14)
    returning = importlib.import_module("appliance.playback.migrations.0015_report_returning_and_week_grain")
    with connection.schema_editor() as editor:  # new grains in bulk, then kept by the deferred triggers
        grains.add_grains(None, editor)
    build(origins, count=20, seed=20)
    with connection.schema_editor() as editor:  # 0014's triggers knew no ReportReturning: 0015 builds it
        returning.add_week_grain_and_returning(None, editor)
    assert not RollupPending.objects.exists()
    assert_old_rollups_match_raw(origins, FILTERS)
    build(origins, count=30, seed=15)
    assert RollupPending.objects.exists()
    assert_old_rollups_match_raw(origins, FILTERS)  # folded once into every grain
    with connection.schema_editor() as editor:  # backwards: the base grains only, pending rows folded first
        grains.drop_grains(None, editor)
    assert not ReportCell.objects.filter(grain__in=grains.NEW_GRAINS).exists()
    assert not ReportReturning.objects.filter(grain__in=grains.NEW_GRAINS).exists()
    build(origins, count=30, seed=16)
    assert_old_rollups_match_raw(origins)
    with connection.schema_editor() as editor:  # 0015 backwards: the table goes, the triggers skip its upkeep
        editor.delete_model(ReportReturning)
    build(origins, count=30, seed=17)
    rollups_fold_pending(limit=1000)
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:10]).delete()
    build(origins, count=20, seed=19)  # pending when 0015 runs: folded first
    with connection.schema_editor() as editor:  # and forwards again, over the base grains
        editor.create_model(ReportReturning)  # its unique index at the block's end, as AddConstraint does
    with connection.schema_editor() as editor:
        returning.add_week_grain_and_returning(None, editor)
    assert_old_rollups_match_raw(origins)
    with connection.schema_editor() as editor:
        grains.add_grains(None, editor)
    build(origins, count=30, seed=18)
    assert_old_rollups_match_raw(origins, FILTERS)
    overlaps = importlib.import_module("appliance.playback.migrations.0020_report_player_url_overlap")
    with connection.schema_editor() as editor:  # 0020: every overlap written (pending rows folded first), then kept
        overlaps.add_overlaps(None, editor)
    build(origins, count=30, seed=21)
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:10]).delete()
    assert_rollups_match_raw(origins, url_software=False)
    software = importlib.import_module("appliance.playback.migrations.0021_report_url_software_grain")
    with connection.schema_editor() as editor:  # 0021: the url x software grain in bulk, pending rows folded first
        software.add_url_software_grain(None, editor)
    assert not RollupPending.objects.exists()
    assert_rollups_match_raw(origins)
    build(origins, count=30, seed=21)  # and kept by the fold
    assert_rollups_match_raw(origins)
    with connection.schema_editor() as editor:  # backwards: the cs rows go, the triggers keep 0015's grains
        software.drop_url_software_grain(None, editor)
    assert not ReportCell.objects.filter(grain="cs").exists()
    build(origins, count=20, seed=22)
    rollups_fold_pending(limit=1000)
    assert not ReportCell.objects.filter(grain="cs").exists()
    assert_rollups_match_raw(origins, url_software=False)


# ranges over whole weeks (the url x week cells, migration 0015) with and without edge days
WEEK_FILTERS = [{"since": midnight(first), "until": midnight(end)}
                for first, end in ((0, 23), (1, 22), (3, 17), (2, 9), (5, 12), (6, 13), (0, 7))] + [
    {"url": "rtsp://p/c", "since": midnight(1), "until": midnight(22)},
    {"url": "rtsp://p/c2", "since": midnight(0), "until": midnight(17)}]


def test_week_cells_rank_long_ranges_exactly(origins):
    build(origins, count=300, days=23)
    assert_rollups_match_raw(origins, WEEK_FILTERS, at_least=len(WEEK_FILTERS) * 3)
    with connection.cursor() as cursor:  # each url's week cells sum its day cells
        cursor.execute("SELECT key_hash, date_trunc('week', day)::date, sum(plays) FROM playback_reportcell "
                       "WHERE grain = 'cd' GROUP BY 1, 2 EXCEPT SELECT key_hash, day, plays FROM playback_reportcell "
                       "WHERE grain = 'cw'")
        assert cursor.fetchall() == []
    assert ReportCell.objects.filter(grain="cw").exists()
    with CaptureQueriesContext(connection) as queries:  # the ranking reads the week cells
        list(rollup_report(group="by-content", filters=WEEK_FILTERS[0]))
    assert any("'cw'" in query["sql"] for query in queries.captured_queries)
    with CaptureQueriesContext(connection) as queries:  # not with a url
        list(rollup_report(group="by-content", filters=WEEK_FILTERS[-1]))
    assert not any("'cw'" in query["sql"] for query in queries.captured_queries)
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:40]).delete()
    PlayLog.objects.filter(origin=origins[0]).update(url="rtsp://p/moved")
    assert_rollups_match_raw(origins, WEEK_FILTERS, at_least=len(WEEK_FILTERS) * 3)


def test_week_ranking_is_one_union_of_ranges_paged_like_the_raw_report(origins, settings):
    """by-content over whole weeks ranks in one UNION ALL of (grain, day) ranges, never an OR (index-only on
    reportcell_content_days, migration 0017), read in pages (a prefetch of 3 rows) equal to the raw rows."""
    settings.APPLIANCE_REPORT_PREFETCH_ROWS = 3
    build(origins, count=200, days=23)
    tuesday = next(day for day in range(1, 8) if midnight(day).weekday() == 1)  # its week minus Monday
    PlayLogFactory(origin=origins[0], url="rtsp://p/monday-only", kind="logplay", c_playerid="A",
                   logged_at=midnight(tuesday - 1) + dt.timedelta(hours=5))
    taken_off = {"since": midnight(tuesday), "until": midnight(tuesday + 13)}
    assert "rtsp://p/monday-only" not in [row["url"] for row in rollup_report(group="by-content", filters=taken_off)]
    weekly = 0
    # every weekday as the first day, edges of 0-6 days: whole weeks plus days, or weeks minus days
    for spec in WEEK_FILTERS[:-2] + [{"since": midnight(first), "until": midnight(first + length)}
                                     for first in range(7) for length in (13, 16)]:
        raw = list(playlog_report(group="by-content", playlogs=PlayLog.objects.filter(
            logged_at__gte=spec["since"], logged_at__lt=spec["until"])))
        with CaptureQueriesContext(connection) as queries:
            rows = rollup_report(group="by-content", filters=spec)
            paged = [row for start in range(0, len(rows), 2) for row in rows[start:start + 2]]
        assert paged == raw and len(raw) > 3, spec
        first, end = spec["since"].date(), spec["until"].date()
        if first + dt.timedelta(days=-first.weekday() % 7 + 7) > end:
            continue  # no whole week inside: the day cells rank it (ORM ranking)
        ranking = [q["sql"] for q in queries.captured_queries if "count(*) OVER ()" in q["sql"]]
        assert ranking and all("'cw'" in sql and " OR " not in sql for sql in ranking), spec
        weekly += 1
    assert weekly >= 15
    weeks = ReportCell.objects.filter(grain="cw")  # the row count when a page starts past the end
    assert UnionRanking([(weeks, 1)]).count() == weeks.values("key_hash").distinct().count() > 3
    url_month = {"url": "rtsp://p/c", "since": midnight(1), "until": midnight(22)}
    with CaptureQueriesContext(connection) as queries:  # the page's sums: its own urls, not also every match
        rows = list(rollup_report(group="by-content", filters=url_month))
    page_sums = [q["sql"] for q in queries.captured_queries if "first_players" in q["sql"]]
    assert page_sums and all(sql.count('"key_hash" IN (') == 1 for sql in page_sums)
    assert rows == list(playlog_report(group="by-content", playlogs=PlayLogFilterSet().filter_url(
        PlayLog.objects.filter(logged_at__gte=url_month["since"], logged_at__lt=url_month["until"]), "url", "rtsp://p/c")))


def assert_index_migration_reverses(index: str, before: str, migration: str) -> None:
    """`migration` (which adds `index`) backwards to `before` and forwards again."""
    from django.db.migrations.executor import MigrationExecutor

    def has_index() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s", [index])
            return cursor.fetchone()[0] == 1

    assert has_index()
    for target, present in ((before, False), (migration, True)):
        executor = MigrationExecutor(connection)
        executor.migrate([("playback", target)])
        assert has_index() is present


def test_content_days_index_migration_reverses():
    """Migration 0017 (the covering index of the url x day and url x week cells) backwards and forwards."""
    assert_index_migration_reverses("reportcell_content_days", "0016_rollup_fold_analyze",
                                    "0017_report_content_days_covering")


def test_range_players_count_returning_players_once(origins):
    """A player back after a gap that spans the range start counts through prev_day, not first_players."""
    node = ProxyNodeFactory()
    for player, days in {"A": [0, 3, 4], "B": [2, 3], "C": [3], "D": [0]}.items():
        for day in days:
            PlayLogFactory(node=node, origin=origins[0], url="rtsp://p/x", kind="logplay", c_playerid=player,
                           logged_at=midnight(day) + dt.timedelta(hours=5))
    rows = rollup_report(group="by-content", filters={"since": midnight(3), "until": midnight(5)})
    assert [r["unique_players"] for r in rows] == [3]  # A (back from day 0), B (from day 2), C (new)
    assert_rollups_match_raw(origins)


def test_filters_the_rollups_cannot_express_fall_back(origins):
    build(origins, count=20)
    assert rollup_report(group="by-content", filters={"player": "A"}) is None
    PlayLogFactory(url="rtsp://q/other", cs_uri_stem="rtsp://p/c1", kind="logplay")  # matched by stem only
    assert rollup_report(group="by-content", filters={"url": "rtsp://p/c1"}) is None
    assert rollup_report(group="by-content", filters={"url": "rtsp://p/c2"}) is not None
    # no url-keyed grain: the raw aggregate over the url-prefix rows only, same numbers as the full filter
    raw = PlayLogFilterSet().filter_url(PlayLog.objects.filter(origin=origins[0]), "url", "rtsp://p/c2")
    assert rollup_report(group="by-day", filters={"url": "rtsp://p/c2", "origin": origins[0]}) == list(
        playlog_report(group="by-day", playlogs=raw))
    assert rollup_report(group="by-content", filters={"since": midnight(1) + dt.timedelta(hours=3)}) is None
    node = ProxyNode.objects.order_by("pk").first()
    assert rollup_report(group="by-content", filters={"since": midnight(1), "node": node}) is None
    assert rollup_report(group="by-day", filters={"url": "rtsp://p/c2", "node": node}) is None
    assert rollup_report(group="by-content", filters={"since": midnight(1), "origin": origins[0]}) is not None
    with timezone.override("Europe/Berlin"):  # roll-up days are UTC days
        assert rollup_report(group="by-day", filters={}) is None


def test_api_uses_rollups_with_raw_numbers(viewer_client, origins):
    build(origins, count=80)
    for group in REPORT_GROUPS:
        body = viewer_client.get(f"/api/v1/reports/{group}/", {"since": midnight(1).isoformat()}).json()
        raw = list(playlog_report(group=group, playlogs=PlayLog.objects.filter(logged_at__gte=midnight(1))))
        assert [r["plays"] for r in body["results"]] == [r["plays"] for r in raw]
        assert [r["unique_players"] for r in body["results"]] == [r["unique_players"] for r in raw]


def rollup_rows(grain: str | None = None) -> tuple[list, list]:
    """Every cell, player and ReportReturning row (the cells and players of `grain` only, if given)."""
    where, params = ("WHERE grain = %s", [grain]) if grain else ("", [])
    with connection.cursor() as cursor:
        cursor.execute("SELECT grain, day, origin_id, key_hash, key_a, key_b, plays, players, first_players, "
                       "duration_sum, bw_sum, bw_n, received_sum, lost_sum, buffer_count, buffer_seconds "
                       f"FROM playback_reportcell {where} ORDER BY grain, day, origin_id, key_hash", params)
        cells = cursor.fetchall()
        cursor.execute("SELECT grain, day, origin_id, key_hash, player, n, prev_day, prev_url_overlap "
                       f"FROM playback_reportplayer {where} ORDER BY grain, day, origin_id, key_hash, player", params)
        players = cursor.fetchall()
        return cells, players, returning_rows()[0]


def test_bulk_rebuild_writes_the_rows_the_triggers_keep(origins):
    from appliance.playback.rollup_sql import bulk_rebuild_sql

    build(origins, count=150, seed=3)
    build(origins, count=40, seed=5)  # a second statement set: prev_day and first_players across inserts
    rollups_fold_pending(limit=1000)
    cells, players, returning = rollup_rows()
    assert any(row[6] is not None for row in players) and any(row[8] for row in cells) and returning
    assert any(row[7] is not None for row in players)
    with connection.cursor() as cursor:
        for statement in bulk_rebuild_sql(timezone.get_current_timezone_name()):
            cursor.execute(statement)
    assert rollup_rows() == (cells, players, returning)
    assert_rollups_match_raw(origins)
    build(origins, count=30, seed=7)  # pending, not folded: the rebuild counts them, a later fold must not
    assert RollupPending.objects.exists()
    with connection.cursor() as cursor:
        for statement in bulk_rebuild_sql(timezone.get_current_timezone_name()):
            cursor.execute(statement)
    assert not RollupPending.objects.exists() and rollups_fold_pending(limit=1000) == 0
    assert_rollups_match_raw(origins)


@pytest.mark.parametrize("params", [{}, {"since": "first"}, {"url": "rtsp://p/c"}, {"origin": "first"}])
def test_rollup_report_pages_are_read_in_sql_with_the_raw_rows(viewer_client, origins, settings, params):
    """Pages of a roll-up report (LIMIT in SQL, a prefetch of 3 rows, pages of 2) add up to the raw report."""
    settings.APPLIANCE_REPORT_PREFETCH_ROWS = 3
    build(origins, count=150)
    query = {k: (midnight(1).isoformat() if k == "since" else origins[0].pk if k == "origin" else v)
             for k, v in params.items()}
    for group in REPORT_GROUPS:
        filterset = PlayLogFilterSet(query, queryset=PlayLog.objects.all())
        assert filterset.is_valid()
        assert rollup_report(group=group, filters=filterset.form.cleaned_data) is not None or "url" in params
        raw = list(playlog_report(group=group, playlogs=filterset.qs))
        pages, page = [], 1
        while True:
            body = viewer_client.get(f"/api/v1/reports/{group}/", {**query, "page_size": 2, "page": page}).json()
            assert body["count"] == len(raw), (group, params)
            pages += body["results"]
            if body["next"] is None:
                break
            page += 1
        assert [(r["plays"], r["unique_players"]) for r in pages] == [(r["plays"], r["unique_players"]) for r in raw]
        assert len(raw) > 3 or group in ("by-origin", "by-player-software")
@pytest.mark.django_db(transaction=True)
def test_an_update_waits_for_a_fold_in_progress_and_moves_the_folded_rows():
    """A fold not yet committed holds the fold lock: an UPDATE of its rows (here origin SET_NULL) waits, then
    moves what the fold added. Without the lock it would see the rows still pending and skip them."""
    import threading

    from django.db import connections, transaction

    from tests.appliance.tasks.harness import wait_until

    origins = [OriginFactory(name="gst"), OriginFactory(name="wms")]
    build(origins, count=60)
    folding, release = threading.Event(), threading.Event()

    def fold():
        try:
            with transaction.atomic():
                rollups_fold(limit=1000)
                folding.set()
                release.wait(60)  # the test releases it once the UPDATE is seen waiting
        finally:
            connections.close_all()

    def delete_origin():
        try:
            origins[1].delete()
        finally:
            connections.close_all()

    folder = threading.Thread(target=fold)
    folder.start()
    assert folding.wait(60)
    updater = threading.Thread(target=delete_origin)
    updater.start()
    with connection.cursor() as cursor:
        def update_waits():
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            return cursor.fetchone()[0] == 1
        wait_until(update_waits, timeout=60, what="the UPDATE's trigger waiting for the fold lock")
    release.set()
    folder.join(60)
    updater.join(60)
    assert not RollupPending.objects.exists()
    assert_rollups_match_raw(origins[:1])
