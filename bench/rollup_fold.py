"""What the roll-up grains cost the fold: play logs folded per second with the base grains (migrations
0003-0013) and with every grain (0014 adds the node and origin x day grains), interleaved in one run.
`--analyze`: instead, every grain with the fold as it was before migration 0015 (claimed rows not
analyzed) against the fold of the code (analyzed).

    DATABASE_URL=.../appliance_reports1m .venv/bin/python -m bench.rollup_fold --rows 20000 --rounds 3
    DATABASE_URL=.../appliance_ingest .venv/bin/python -m bench.rollup_fold --rows 8000 --analyze

Runs on a database kept by `bench.ingest --keep` (`<DATABASE_URL's database>_bench`, migrated, with play
logs). Each measurement is one transaction, rolled back: the triggers of one grain set are installed,
`--rows` LogPlay rows are copied (marked pending by the insert trigger) and folded by
`playback_rollup_fold`; nothing it wrote stays.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


class Rollback(Exception):
    pass


def fold_seconds(grains: tuple[str, ...], rows: int, *, analyze: bool = True, new_players: bool = False) -> float:
    """Seconds of playback_rollup_fold over `rows` copied LogPlay rows, with the triggers of `grains`;
    analyze=False: the fold without its ANALYZE of the claimed rows; new_players: each copy a new
    c_playerid (as in bench.ingest), else the copied rows' players play again."""
    from django.conf import settings
    from django.db import connection, transaction

    from appliance.playback.models import PlayLog
    from appliance.playback.rollup_sql import FOLD_ROWS, install_sql

    columns = ", ".join(f.column for f in PlayLog._meta.concrete_fields if not f.primary_key)
    elapsed = 0.0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in install_sql(settings.TIME_ZONE, prev_days=True, deferred=True, grains=grains):
                if not analyze:
                    statement = statement.replace(f"ANALYZE {FOLD_ROWS};", "")
                cursor.execute(statement)
            copied = columns.replace("c_playerid", "gen_random_uuid()::text") if new_players else columns
            cursor.execute(f"INSERT INTO playback_playlog ({columns}) SELECT {copied} FROM playback_playlog "
                           "WHERE kind = 'logplay' ORDER BY id DESC LIMIT %s", [rows])
            started = time.perf_counter()
            cursor.execute("SELECT playback_rollup_fold(%s)", [rows])
            elapsed = time.perf_counter() - started
            raise Rollback
    except Rollback:
        pass
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rollup_fold", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000, help="play logs folded per measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved pairs (base grains, every grain)")
    p.add_argument("--analyze", action="store_true",
                   help="compare the fold without and with its ANALYZE of the claimed rows (every grain)")
    args = p.parse_args(argv)
    from bench.ingest import setup_django

    setup_django(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance"))
    from appliance.playback.rollup_sql import BASE_GRAINS, GRAINS

    every = tuple(GRAINS)
    sides = ({"before": (every, False), "analyzed": (every, True)} if args.analyze
             else {"base": (BASE_GRAINS, True), "every": (every, True)})
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(args.rounds):
        for side, (grains, analyze) in sides.items():
            rates[side].append(args.rows / fold_seconds(grains, args.rows, analyze=analyze, new_players=args.analyze))
    for side, (grains, _) in sides.items():
        print(f"  {side:8} ({len(grains):2d} grains): {statistics.median(rates[side]):7.0f} play logs/s folded "
              f"(median of {args.rounds}: {', '.join(f'{r:.0f}' for r in rates[side])})")
    first, second = sides
    ratio = statistics.median(rates[second]) / statistics.median(rates[first])
    print(f"  {second} / {first}: {ratio:.2f}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
