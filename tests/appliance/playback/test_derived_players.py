"""All-time players from the day grains (migration 0022): the grains o, c, s and so keep no player rows, and their
cells' players stay the raw distinct count through every write path."""
import datetime as dt
import importlib
from collections import defaultdict

import pytest
from django.db import connection

from appliance.playback.models import PlayLog, ReportCell, ReportPlayer, RollupPending
from appliance.playback.rollup_sql import DERIVED_PLAYERS, GRAINS
from appliance.playback.rollups import rollups_fold, rollups_fold_pending
from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory
from tests.appliance.playback.test_rollups import assert_rollups_match_raw, build

pytestmark = [pytest.mark.django_db]
MIGRATION = importlib.import_module("appliance.playback.migrations.0022_report_all_time_players_derived")


@pytest.fixture
def origins():
    return [OriginFactory(name="gst"), OriginFactory(name="wms")]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("roll-ups are PostgreSQL triggers; SQLite reports read the raw table")


def raw_players(grain: str) -> dict:
    """(origin, key_a, key_b) -> distinct non-empty player ids of the LogPlay rows, as the grain keys them."""
    _, has_origin, _, key_a, key_b = GRAINS[grain]
    players = defaultdict(set)
    for row in PlayLog.objects.filter(kind="logplay").exclude(c_playerid=""):
        a = {"''": "", "url": row.url, "c_hostexe": row.c_hostexe}[key_a]
        b = {"''": "", "c_playerversion": row.c_playerversion}[key_b]
        players[((row.origin_id or 0) if has_origin else 0, a, b)].add(row.c_playerid)
    return {key: len(ids) for key, ids in players.items()}


def assert_all_time_players_match_raw() -> None:
    rollups_fold_pending(limit=1000)
    for grain in DERIVED_PLAYERS:
        kept = {(c.origin_id, c.key_a, c.key_b): c.players for c in ReportCell.objects.filter(grain=grain)}
        assert {key: n for key, n in kept.items() if n} == raw_players(grain), grain
        assert min(kept.values(), default=0) >= 0, grain


def test_all_time_grains_keep_no_player_rows_and_count_exactly(origins):
    build(origins, count=150)
    assert rollups_fold(limit=60) == 60  # some folded, the rest by the checks below
    assert_all_time_players_match_raw()
    assert ReportCell.objects.filter(grain__in=list(DERIVED_PLAYERS), players__gt=0).exists()
    assert not ReportPlayer.objects.filter(grain__in=list(DERIVED_PLAYERS)).exists()
    assert ReportPlayer.objects.filter(grain__in=list(DERIVED_PLAYERS.values())).exists()
    assert_rollups_match_raw(origins)


def test_earlier_days_deletes_and_moves_keep_all_time_players_exact(origins):
    build(origins, count=80, days=3)
    rollups_fold_pending(limit=1000)
    # a known player first seen later than now: its earlier day becomes its first (prev_day moves)
    for day in (4, 0, 2):
        PlayLogFactory(origin=origins[0], url="rtsp://p/c1", kind="logplay", c_playerid="A", c_hostexe="vlc",
                       c_playerversion="3.0", logged_at=BASE_TIME + dt.timedelta(days=day, hours=1))
        assert_all_time_players_match_raw()
    first_day = PlayLog.objects.filter(c_playerid="A").order_by("logged_at").first()
    first_day.delete()  # its next day is the first again
    assert_all_time_players_match_raw()
    PlayLog.objects.filter(c_playerid="B").delete()  # every row of a player
    assert_all_time_players_match_raw()
    PlayLog.objects.filter(url="rtsp://p/c2").update(url="rtsp://p/c3", c_hostexe="moved.exe")
    assert_all_time_players_match_raw()
    origins[1].delete()  # SET_NULL: the rows move to "no origin"
    assert_all_time_players_match_raw()
    build(origins[:1], count=30, seed=3)  # pending rows, deleted and moved before the fold
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("-pk").values("pk")[:5]).delete()
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("-pk").values("pk")[:5]).update(c_playerid="Z")
    assert RollupPending.objects.exists()
    assert_all_time_players_match_raw()
    assert_rollups_match_raw(origins[:1])
    PlayLog.objects.all().delete()
    assert not ReportCell.objects.exists()


def test_migration_writes_the_rows_back_and_removes_them_again(origins):
    build(origins, count=100)
    rollups_fold(limit=40)  # pending rows are folded by either direction first
    with connection.schema_editor() as editor:
        MIGRATION.underive_players(None, editor)
    assert not RollupPending.objects.exists()
    for grain in DERIVED_PLAYERS:  # one row per (cell, player), as 0021's triggers wrote them
        rows = ReportPlayer.objects.filter(grain=grain)
        assert rows.count() == sum(raw_players(grain).values()), grain
    build(origins, count=40, seed=5)  # kept by 0021's triggers meanwhile
    PlayLog.objects.filter(pk__in=PlayLog.objects.order_by("pk").values("pk")[:10]).delete()
    assert_all_time_players_match_raw()
    assert ReportPlayer.objects.filter(grain="c").count() == sum(raw_players("c").values())
    with connection.schema_editor() as editor:
        MIGRATION.derive_players(None, editor)
    assert not ReportPlayer.objects.filter(grain__in=list(DERIVED_PLAYERS)).exists()
    assert_all_time_players_match_raw()
    build(origins, count=40, seed=9)
    assert_all_time_players_match_raw()
    assert_rollups_match_raw(origins)
