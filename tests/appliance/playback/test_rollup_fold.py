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
