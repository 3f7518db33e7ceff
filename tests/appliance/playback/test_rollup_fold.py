"""The fold's mechanism (rollup_sql._fold_function) reaches existing databases through a migration."""
import pytest
from django.conf import settings
from django.db import connection

from appliance.playback.rollup_sql import install_fold_sql

pytestmark = pytest.mark.django_db


def test_the_migrated_fold_is_the_one_the_code_builds():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('playback_rollup_fold(integer)'::regprocedure)")
        installed = cursor.fetchone()[0]
    body = install_fold_sql(settings.TIME_ZONE, overlaps=True, derived=True)[0].split("$fn$")[1]
    assert body in installed
    # migration 0022: no player rows of the all-time grains (key_hash of c, o: their own md5 expressions)
    assert "'c' AS grain, DATE '1970-01-01' AS day, 0 AS origin_id, md5(url || chr(31) || '')::uuid AS key_hash, " \
        "c_playerid" not in body
    assert "SET prev_url_overlap" in body  # migration 0020: the fold keeps the url overlaps
    assert "ANALYZE playback_rollup_fold_rows" in body  # the planner sees the claimed rows' real count


def test_the_migrated_first_players_triggers_are_the_ones_the_code_builds():
    """Migration 0023: the derived players (0022) join the cells on their four keys. With the all-time day as a
    constant filter instead, a never-analyzed cell table looked like one row to the planner, which then re-ran
    the aggregate of the transition table once per cell (a first fold of 20,000 play logs: 42-56 s, not 5)."""
    from appliance.playback.rollup_sql import install_first_players_sql

    functions = [s for s in install_first_players_sql(derived=True) if "$fn$" in s]
    assert functions
    with connection.cursor() as cursor:
        for statement in functions:
            name = statement.split("FUNCTION ", 1)[1].split("(", 1)[0]
            cursor.execute("SELECT pg_get_functiondef(%s::regprocedure)", [f"{name}()"])
            assert statement.split("$fn$")[1] in cursor.fetchone()[0]
    derived = [s for s in functions if "SET players = c.players + d.k" in s]
    assert derived and all("c.day = d.day" in s and "c.day = DATE" not in s for s in derived)
