"""Time some of bench.report_scale's queries on a kept report database inside ONE transaction that is rolled
back: experiment SQL (CREATE INDEX ..., SET LOCAL ..., a migration's statements) runs first, so a shared
database is left as it was (and `bench.ingest --reports-only`, which applies migrations, is not needed).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/appliance_reports10m \\
        .venv/bin/python -m bench.report_experiment [--sql FILE] [--runs 3] [--explain] SUBSTRING...

SUBSTRING selects the queries of report_scale.queries() whose path contains it ('all': every one). --explain
prints EXPLAIN (ANALYZE, BUFFERS) of each SELECT the last request ran. Statements of --sql are separated by
';' at the end of a line. Indexes built this way take a SHARE lock until the rollback: writers wait.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


class _RolledBack(Exception):
    pass


def _statements(path: str) -> list[str]:
    return [s.strip() for s in open(path).read().split(";\n") if s.strip()]


def _statements_of(client, path: str) -> list[tuple[str, object]]:
    """The SQL one more request of `path` runs (for --explain)."""
    from django.db import connection

    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        client.get(path)
    return statements


def _explain(statements: list[tuple[str, object]]) -> None:
    from django.db import connection

    for sql, params in statements:
        if not sql.lstrip().upper().startswith("SELECT") or "django_session" in sql or "auth_user" in sql:
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            print("   ---", sql[:300])
            for (line,) in cursor.fetchall():
                print("     ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sql", help="experiment statements run first, inside the transaction")
    parser.add_argument("--runs", type=int, default=3, help="timed requests per query (median shown)")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("patterns", nargs="+")
    args = parser.parse_args()

    from bench.ingest import setup_django

    setup_django(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance_reports10m"))
    from django.db import connection, transaction
    from django.test import Client

    from appliance.nodes.models import ProxyNode
    from appliance.origins.models import Origin
    from bench.report_scale import queries, report_user, time_path

    try:
        with transaction.atomic():
            if args.sql:
                with connection.cursor() as cursor:
                    for statement in _statements(args.sql):
                        started = time.perf_counter()
                        cursor.execute(statement)
                        print(f"  sql {time.perf_counter() - started:.1f} s: {statement[:100]}")
            client = Client()
            client.force_login(report_user())
            paths = [path for path in queries(Origin.objects.get(name="vod-00").pk, ProxyNode.objects.get(name="edge-00").pk)
                     if "all" in args.patterns or any(pattern in path for pattern in args.patterns)]
            print(f"load average {os.getloadavg()[0]:.1f}")
            for path in paths:
                _, times = time_path(client, path, args.runs)
                print(f"{statistics.median(times):8.1f} ms  (runs {', '.join(f'{t:.0f}' for t in times)})  {path}")
                if args.explain:
                    _explain(_statements_of(client, path))
            raise _RolledBack
    except _RolledBack:
        print("rolled back")


if __name__ == "__main__":
    main()
