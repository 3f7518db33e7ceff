"""Url-prefix reports the roll-ups have no grain for (by-player-software with a url and a range or an origin;
by-origin with a url and a range; by-day with a url and an origin; by-content with a url, a range and an origin)
aggregate the raw play logs (rollup_reports._url_prefix_raw_report): counted exactly (checked against a count in
Python, player ids that differ only in case or Unicode normalisation stay distinct) and read index-only
(playlog_report_url_range, migration 0019, also holds logged_at and origin; at 10M rows a heap page per row made
these 1.2-1.7 s)."""
import datetime as dt
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from appliance.playback.models import PlayLog
from appliance.playback.rollup_reports import rollup_report
from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory, ProxyNodeFactory

pytestmark = [pytest.mark.django_db(transaction=True)]  # VACUUM (the visibility map), migrations

# distinct under a bytewise comparison; equal under a case-insensitive or normalising one
PLAYERS = ["A", "a", "\u00e9", "e\u0301", "\u00df", "ss", "A ", ""]
SOFTWARE = [("wmplayer.exe", "12.0"), ("vlc", "3.0"), ("WMPlayer.exe", "12.0")]


def midnight(days: int) -> dt.datetime:
    return dt.datetime.combine((BASE_TIME + dt.timedelta(days=days)).date(), dt.time(0), tzinfo=dt.UTC)


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the roll-ups and their url-prefix raw path are PostgreSQL's")


@pytest.fixture
def origins(postgres):
    return [OriginFactory(name="gst"), OriginFactory(name="wms")]


def expected(group: str, rows: list[PlayLog]) -> dict:
    """group key -> (plays, distinct non-empty player ids) counted in Python."""
    plays, players = defaultdict(int), defaultdict(set)
    for row in rows:
        key = {"by-player-software": (row.c_hostexe, row.c_playerversion), "by-origin": (row.origin_id,),
               "by-day": (timezone.localtime(row.logged_at).date(),), "by-content": (row.url,)}[group]
        plays[key] += 1
        if row.c_playerid:
            players[key].add(row.c_playerid)
    return {key: (plays[key], len(players[key])) for key in plays}


def got(group: str, rows) -> dict:
    keys = {"by-player-software": ("c_hostexe", "c_playerversion"), "by-origin": ("origin_id",), "by-day": ("day",),
            "by-content": ("url",)}[group]
    return {tuple(row[k] for k in keys): (row["plays"], row["unique_players"]) for row in rows}


@pytest.mark.parametrize("group, spec", [
    ("by-player-software", {}),  # the url x software grain (migration 0021), counted as exactly
    ("by-player-software", {"since": 1, "until": 3}),
    ("by-player-software", {"origin": True, "since": 1}), ("by-origin", {"since": 1, "until": 3}),
    ("by-origin", {"since": 2}), ("by-day", {"origin": True}), ("by-content", {"origin": True, "until": 4}),
])
def test_raw_url_prefix_reports_count_players_exactly(origins, group, spec):
    node = ProxyNodeFactory()
    for i in range(240):  # every player with every url, software and origin, over 4 days
        exe, version = SOFTWARE[i // 3 % 3]
        PlayLogFactory(node=node, origin=[*origins, None][i // 5 % 3], url=f"rtsp://p/c{i % 4}/x{i // 7 % 3}",
                       logged_at=BASE_TIME + dt.timedelta(hours=i * 7 % 100),
                       kind="logconnect" if i % 9 == 0 else "logplay",
                       c_playerid=PLAYERS[i // 4 % len(PLAYERS)], c_hostexe=exe, c_playerversion=version)
    filters = {"url": "rtsp://p/c1"}
    rows = PlayLog.objects.filter(kind="logplay", url__startswith="rtsp://p/c1")
    if spec.get("origin"):
        filters["origin"] = origins[0]
        rows = rows.filter(origin=origins[0])
    for name, lookup in (("since", "gte"), ("until", "lt")):
        if name in spec:
            filters[name] = midnight(spec[name])
            rows = rows.filter(**{f"logged_at__{lookup}": filters[name]})
    report = rollup_report(group=group, filters=filters)
    assert got(group, report) == expected(group, list(rows)), (group, spec)
    assert max(row["unique_players"] for row in report) >= 4  # "A"/"a", "é" in NFC/NFD... counted apart


def playlogs_over_many_urls():
    """Rows of 50 urls over 3,000 hours, analysed, so the planner chooses as it does for millions: one url's
    rows (the prefix) are fewer than any time range's."""
    origins, node = [OriginFactory(name="gst"), OriginFactory(name="wms")], ProxyNodeFactory()
    PlayLog.objects.bulk_create(
        PlayLogFactory.build(origin=origins[h % 2], node=node, url=f"rtsp://p/c{h % 50}",
                             logged_at=BASE_TIME - dt.timedelta(hours=h), c_hostexe=f"player{h % 3}")
        for h in range(3000))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE playback_playlog")
    return origins


@pytest.mark.parametrize("group, with_origin", [("by-origin", False), ("by-player-software", False),
                                                ("by-day", True), ("by-content", True)])
def test_raw_url_prefix_reports_with_a_range_are_index_only_scans(postgres, group, with_origin):
    origins = playlogs_over_many_urls()
    filters = {"url": "rtsp://p/c7", "since": midnight(-100), "until": midnight(-10)}
    if with_origin:
        filters["origin"] = origins[1]
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        report = rollup_report(group=group, filters=filters)
    assert sum(row["plays"] for row in report) == PlayLog.objects.filter(
        url="rtsp://p/c7", logged_at__gte=filters["since"], logged_at__lt=filters["until"],
        **({"origin": origins[1]} if with_origin else {})).count() > 0
    sql, params = next((sql, params) for sql, params in statements if "COUNT(DISTINCT" in sql)
    with connection.cursor() as cursor:
        # a few thousand rows: scanning them all would cost about as little as any index
        for setting in ("enable_seqscan", "enable_bitmapscan"):
            cursor.execute(f"SET {setting} = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for setting in ("enable_seqscan", "enable_bitmapscan"):
            cursor.execute(f"RESET {setting}")
    assert "Index Only Scan using playlog_report_url_range" in plan, plan
    assert 'COLLATE "C"' in sql  # the distinct players are sorted bytewise (reports._player_id)


def test_url_prefix_index_migration_reverses(postgres):
    """Migration 0019 (logged_at and origin in the url-prefix covering index, renamed) backwards and forwards."""
    def indexes() -> dict:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'playlog_report_url_%%'")
            return dict(cursor.fetchall())

    assert "(url varchar_pattern_ops, logged_at) INCLUDE (origin_id" in indexes()["playlog_report_url_range"]
    try:
        for target, name in (("0018_report_cell_url_day_sums", "playlog_report_url_prefix"),
                             ("0019_report_url_prefix_range_covering", "playlog_report_url_range")):
            MigrationExecutor(connection).migrate([("playback", target)])
            assert list(indexes()) == [name] and ("logged_at" in indexes()[name]) is name.endswith("range")
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


REPO = Path(__file__).resolve().parents[3]
SQLITE_SCRIPT = r"""
import datetime as dt, json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("migrate", "playback", "0018", verbosity=0)  # migration 0019 backwards and forwards
call_command("migrate", verbosity=0)
from appliance.nodes.models import ProxyNode
from appliance.playback.models import PlayLog
from appliance.playback.reports import playlog_report
node = ProxyNode.objects.create(name="quick", token_hash="1" * 64)
at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
for i, player in enumerate(%r):
    PlayLog.objects.create(node=node, received_at=at, logged_at=at, kind="logplay", url="rtsp://p/c" + str(i // 4),
                           c_playerid=player, c_hostexe="vlc", c_playerversion="3.0")
print(json.dumps([[r["url"], r["plays"], r["unique_players"]] for r in playlog_report(
    group="by-content", playlogs=PlayLog.objects.all())]))
""" % (PLAYERS,)


def test_players_are_counted_bytewise_on_the_quick_start_sqlite_database(tmp_path):
    """SQLite (no collation "C": reports._player_id leaves it out; SQLite compares bytes already): the same
    distinct count; migration 0019 backwards and forwards."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="appliance.settings", APPLIANCE_VAR_DIR=str(tmp_path / "var"),
               APPLIANCE_SECRET_KEY="sqlite-reports-test-" + "k" * 40, PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-c", SQLITE_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    # c0: "A", "a", "é" in NFC and NFD (3 under NOCASE, 2 if normalised); c1: "ß", "ss", "A ", "" (no player)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [["rtsp://p/c0", 4, 4], ["rtsp://p/c1", 4, 3]]


def test_raw_url_prefix_report_sorts_in_its_own_work_mem(origins, settings):
    """APPLIANCE_REPORT_URL_PREFIX_WORK_MEM_MB is the aggregate's work_mem, for its transaction only."""
    settings.APPLIANCE_REPORT_URL_PREFIX_WORK_MEM_MB = 7
    PlayLogFactory(url="rtsp://p/c1", origin=origins[0])
    seen = []

    def work_mem(execute, sql, params, many, context):
        if "COUNT(DISTINCT" in sql:
            with connection.cursor() as cursor:
                cursor.execute("SHOW work_mem")
                seen.append(cursor.fetchone()[0])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(work_mem):
        # with an origin: no grain (a url prefix alone is the url x software grain's, migration 0021)
        filters = {"url": "rtsp://p/c", "origin": origins[0]}
        assert rollup_report(group="by-player-software", filters=filters)[0]["plays"] == 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert seen == ["7MB"] and cursor.fetchone()[0] != "7MB"
