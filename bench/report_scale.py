"""Play logs at scale for bench.ingest: generate N rows fast, build the roll-ups in bulk, time every report
and play-log query (REST API and dashboard pages).

Rows are built inside PostgreSQL (one INSERT ... SELECT over generate_series: no row crosses the client,
faster than COPY from Python) with the indexes and triggers of the play-log and roll-up tables off; then
`rollup_sql.bulk_rebuild_sql` writes the roll-ups in one pass per grain and the indexes are rebuilt.
Spread: NODES nodes, ORIGINS origins (2 % of rows without one), URLS urls and PLAYERS players with a
skewed popularity (a few hot clips and heavy players, a long tail), DAYS days, 16 player builds.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

GOAL_MS = 200.0
NODES = 20
ORIGINS = 20
URLS = 20_000
PLAYERS = 200_000
SOFTWARE = [("wmplayer.exe", f"12.0.{v}") for v in range(8)] + [("vlc", f"3.0.{v}") for v in range(8)]
DAYS = 90  # ending today (UTC midnight), so the dashboard's presets (today, 7 and 30 days) find rows
START = dt.datetime.combine(dt.date.today() - dt.timedelta(days=DAYS - 1), dt.time(0), tzinfo=dt.UTC)
TABLES = ("playback_playlog", "playback_reportcell", "playback_reportplayer", "playback_reportreturning")


def scale_fixtures() -> tuple[list[int], list[int]]:
    """The nodes and origins the generated rows point at (created once, reused by --reports-only)."""
    from appliance.nodes.models import ProxyNode
    from appliance.origins.models import Origin

    nodes = []
    for i in range(NODES):
        node = ProxyNode.objects.filter(name=f"edge-{i:02d}").first()
        if node is None:
            node = ProxyNode(name=f"edge-{i:02d}")
            node.set_token(ProxyNode.new_token())
            node.save()
        nodes.append(node.pk)
    origins = [Origin.objects.get_or_create(name=f"vod-{i:02d}", defaults={
        "base_url": f"rtsp://vod{i:02d}.example:554/vod", "route_prefix": f"/v{i:02d}"})[0].pk for i in range(ORIGINS)]
    return nodes, origins


def _row_values(node_ids: list[int], origin_ids: list[int]) -> dict[str, str]:
    """column -> SQL over `i` (row number) and `r` (this row's random draws)."""
    software = ", ".join(f"'{exe}/{version}'" for exe, version in SOFTWARE)
    nodes, origins = ", ".join(map(str, node_ids)), ", ".join(map(str, origin_ids))
    ip = "'10.' || (r.player / 65536) || '.' || mod(r.player / 256, 256) || '.' || mod(r.player, 256)"
    return {
        "node_id": f"(ARRAY[{nodes}])[1 + mod(i / 10, {len(node_ids)})]",  # not in step with `kind`
        # a clip belongs to one origin; 2 % of rows have none (origin deleted, or unrouted)
        "origin_id": f"CASE WHEN mod(i, 50) = 7 THEN NULL ELSE (ARRAY[{origins}])[1 + mod(r.content, {len(origin_ids)})] END",
        "received_at": "r.at", "logged_at": "r.at",
        "kind": "CASE WHEN mod(i, 10) = 0 THEN 'logconnect' ELSE 'logplay' END", "log_type": "'streaming'",
        "url": "'rtsp://proxy/vod/c' || r.content", "player_addr": f"{ip} || ':' || (5000 + mod(i, 1000))",
        "user_agent": "'WMPlayer/12.0'", "raw": "''", "parse_error": "''",
        "c_playerid": "CASE WHEN mod(i, 20) = 3 THEN '' ELSE '{' || md5('player' || r.player) || '}' END",
        "x_duration": "1 + (random() * 3599)::int", "avgbandwidth": "100000 + (random() * 3900000)::int",
        "c_pkts_received": "1000 + (random() * 99000)::int", "c_pkts_lost_client": "(random() * 49)::int",
        "c_buffercount": "(random() * 4)::int", "c_totalbuffertime": "(random() * 19)::int",
        "c_hostexe": f"split_part((ARRAY[{software}])[1 + r.sw], '/', 1)",
        "c_playerversion": f"split_part((ARRAY[{software}])[1 + r.sw], '/', 2)",
        "cs_uri_stem": "'/vod/c' || r.content", "c_ip": f"({ip})::inet",
    }


def _parallel(statement_lists: list[list[str]], workers: int) -> None:
    """Each list's statements in order on one connection, `workers` lists at a time (one thread each: Django
    gives every thread its own connection)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run(statements: list[str]) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")  # no triggers
                cursor.execute("SET maintenance_work_mem = '256MB'")
                cursor.execute("SET work_mem = '128MB'")
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run, statements) for statements in statement_lists]:
            future.result()


def secondary_indexes() -> list[tuple[str, str]]:
    """(name, definition) of the three tables' indexes that are not constraints."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND "
                       "indexname NOT IN (SELECT conname FROM pg_constraint)", [list(TABLES)])
        return cursor.fetchall()


def build_rollups_and_indexes(definitions: list[str], workers: int) -> None:
    """Roll-ups of every grain (`workers` at a time), then the dropped indexes, then VACUUM ANALYZE."""
    from django.conf import settings
    from django.db import connection

    from appliance.playback.rollup_sql import GRAINS, bulk_grain_sql

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE playback_reportcell, playback_reportplayer, playback_reportreturning")
    _parallel([bulk_grain_sql(grain, settings.TIME_ZONE) for grain in GRAINS], workers)
    _parallel([[definition] for definition in definitions], workers)
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")  # visibility map: index-only scans


def add_week_grain_and_returning(workers: int = 3) -> float:
    """Migration 0015 the bulk way on a kept database at 0014 (no writer running): the week cells and the
    returning counts on `workers` connections with triggers off, then the triggers, 0015 recorded; seconds."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from appliance.playback.models import ReportReturning
    from appliance.playback.rollup_sql import (GRAINS_0015, RANGE_GRAINS, bulk_grain_sql, install_first_players_sql,
                                               install_sql, returning_build_sql)

    started = time.perf_counter()
    with connection.schema_editor() as editor:
        editor.create_model(ReportReturning)
    _parallel([bulk_grain_sql("cw", settings.TIME_ZONE), *([*returning_build_sql((grain,))] for grain in RANGE_GRAINS)],
              workers)
    with connection.cursor() as cursor:
        for statement in install_sql(settings.TIME_ZONE, prev_days=True, deferred=True, grains=GRAINS_0015) + \
                install_first_players_sql():
            cursor.execute(statement)
    call_command("migrate", "playback", "0015", fake=True, verbosity=0)
    with connection.cursor() as cursor:
        for table in ("playback_reportcell", "playback_reportreturning"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def generate_playlogs(count: int, seed: int = 1, workers: int = 3) -> float:
    """`count` LogPlay/LogConnect rows (one in ten LogConnect) after whatever the table holds; returns seconds."""
    from django.db import connection

    from appliance.playback.models import PlayLog

    started = time.perf_counter()
    node_ids, origin_ids = scale_fixtures()
    values = _row_values(node_ids, origin_ids)
    required = {f.column for f in PlayLog._meta.concrete_fields if not f.null and not f.primary_key}
    for column in sorted(required - set(values)):
        values[column] = "''"  # the remaining NOT NULL columns are text
    # power-law draws: c0 is the hottest clip, player 0 the heaviest viewer
    draws = (f"SELECT floor({URLS} * power(random(), 3))::int AS content, "
             f"floor({PLAYERS} * power(random(), 2))::int AS player, "
             f"(random() * {len(SOFTWARE) - 1})::int AS sw, TIMESTAMPTZ '{START.isoformat()}' + "
             f"(random() * {DAYS * 86400}) * INTERVAL '1 second' AS at WHERE i > 0")  # correlated: new draws per row
    indexes = secondary_indexes()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no triggers: no per-row FK checks, no roll-ups
        try:
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute("SELECT setseed(%s)", [1 / (seed + 1)])
            cursor.execute(f"INSERT INTO playback_playlog ({', '.join(values)}) SELECT {', '.join(values.values())} "
                           f"FROM generate_series(1, %s) AS i, LATERAL ({draws}) r", [count])
        finally:
            cursor.execute("SET session_replication_role = origin")
    print(f"  {count} rows inserted in {time.perf_counter() - started:.0f} s")
    build_rollups_and_indexes([definition for _, definition in indexes], workers)
    return time.perf_counter() - started


def queries(origin_id: int, node_id: int) -> list[str]:
    """Every report (4 groups x the filters an operator uses) and the play-log list and export, through the
    REST API and the dashboard pages."""
    def at(days: float) -> str:
        return (START + dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")

    since, until = at(31), at(61)  # a month of whole days
    hot, tail = "rtsp://proxy/vod/c17", "rtsp://proxy/vod/c19999"
    filters = ["", f"?since={since}&until={until}", f"?origin={origin_id}", f"?url={hot}", f"?url={tail}",
               "?url=rtsp://proxy/vod/c12", "?player=10.0.7.8", f"?node={node_id}",
               f"?origin={origin_id}&since={since}&until={until}", f"?url={hot}&since={since}&until={until}",
               f"?since={at(31.25)}&until={at(32.25)}"]  # not at midnight: the raw table answers
    paths = [f"/api/v1/reports/{name}/" for name in ("by-content", "by-day", "by-player-software", "by-origin")]
    result = [p + f for p in paths for f in filters]
    result += ["/api/v1/playlogs/" + f for f in filters]
    result += [f"/api/v1/playlogs/?since={since}&until={until}&ordering=logged_at",
               "/api/v1/playlogs/?ordering=-x_duration", "/api/v1/playlogs/?ordering=avgbandwidth",
               f"/api/v1/playlogs/?origin={origin_id}&ordering=-received_at", "/api/v1/playlogs/?kind=logconnect",
               "/api/v1/playlogs/?page=100", "/api/v1/playlogs/?page_size=1000",
               f"/api/v1/playlogs/?format=csv&since={since}&until={at(31 + 1 / 24)}"]
    result += ["/playlogs/", f"/playlogs/?url={hot}", f"/playlogs/?origin={origin_id}", "/playlogs/?page=200",
               "/reports/", "/reports/?preset=today", "/reports/?preset=30d&group=by-day",
               "/reports/?group=by-player-software&preset=7d", f"/reports/?group=by-origin&preset=30d&url={hot}",
               f"/reports/?group=by-content&since={since}&until={until}"]
    return result


def _rows(resp, body: bytes) -> int:
    """Rows answered: results of a JSON page, data lines of CSV, table rows of a page."""
    if resp.get("Content-Type", "").startswith("text/csv"):
        return max(0, body.count(b"\n") - 1)
    if resp.get("Content-Type", "").startswith("application/json"):
        import json

        data = json.loads(body)
        return len(data["results"]) if isinstance(data, dict) and "results" in data else len(data)
    return body.count(b"<tr") - body.count(b"<thead")  # the page's table rows (header rows left out)


def time_queries(user, paths: list[str], runs: int) -> list[tuple[str, int, float, float]]:
    """(path, rows, median ms, max ms) of `runs` timed requests each, after one untimed warm-up."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    results = []
    for path in paths:
        rows, times = time_path(client, path, runs)
        results.append((path, rows, statistics.median(times), max(times)))
    return results


def time_path(client, path: str, runs: int) -> tuple[int, list[float]]:
    """Rows answered and the ms of `runs` requests of `path` after one untimed warm-up."""
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        resp = client.get(path)
        body = b"".join(resp.streaming_content) if resp.streaming else resp.content
        times.append((time.perf_counter() - started) * 1000)
        if resp.status_code != 200:
            raise SystemExit(f"{path}: HTTP {resp.status_code} {body[:300]!r}")
    return _rows(resp, body), times[1:]


def print_table(results: list[tuple[str, int, float, float]]) -> list[str]:
    """The table (query, rows, median, max, goal met); returns the queries over the goal (by median)."""
    print(f"  {'median ms':>9} {'max ms':>8} {'rows':>6} goal  query")
    for path, rows, median, worst in results:
        print(f"  {median:9.1f} {worst:8.1f} {rows:6d} {'y' if median < GOAL_MS else 'n':>4}  {path}")
    return [path for path, _, median, _ in results if median >= GOAL_MS]


def report_user():
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="bench").first()
    return user or get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")


def time_all(runs: int) -> tuple[list, list[str]]:
    from django.db import connection

    node_ids, origin_ids = scale_fixtures()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM playback_playlog")
        total = cursor.fetchone()[0]
    print(f"{total} play logs; median and max of {runs} runs after a warm-up, through the views (Django test "
          f"client, logged in):")
    results = time_queries(report_user(), queries(origin_ids[0], node_ids[0]), runs)
    slow = print_table(results)
    print(f"goal < {GOAL_MS:.0f} ms: {len(results) - len(slow)}/{len(results)} met")
    return results, slow
