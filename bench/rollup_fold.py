"""What the roll-up grains cost the fold: play logs folded per second with the base grains (migrations
0003-0013), the grains of 0014 (node and origin x day grains), those of 0015 (the url x week cells and the
ReportReturning upkeep) and every grain (0021's url x software too) with 0017's covering index, interleaved
in one run. `--analyze`: instead, every grain with the fold as it was before migration 0016 (claimed rows
not analyzed) against the fold of the code (analyzed). `--url-day-sums`: instead, every grain with
reportcell_url_days (0017) against every grain with migration 0018's reportcell_url_day_sums (the same keys,
the eight sums included). `--overlaps`: instead, 0015's grains as before migration 0020 (no prev_url_overlap
upkeep, its two indexes replaced by reportplayer_url_players) against 0021's fold (every grain). `--derived`:
instead, 0021's fold (player rows for the all-time grains o, c, s, so) against 0022's (their players from the day
grains), each play log a new player as in bench.ingest.

    DATABASE_URL=.../appliance_reports1m .venv/bin/python -m bench.rollup_fold --rows 20000 --rounds 3
    DATABASE_URL=.../appliance_ingest .venv/bin/python -m bench.rollup_fold --rows 8000 --analyze
    DATABASE_URL=.../appliance_reports10m .venv/bin/python -m bench.rollup_fold --rows 5000 --url-day-sums
    DATABASE_URL=.../appliance_reports10m .venv/bin/python -m bench.rollup_fold --rows 20000 --overlaps --analyze
    DATABASE_URL=.../appliance_ingestq .venv/bin/python -m bench.rollup_fold --rows 20000 --derived

Runs on a database kept by `bench.ingest --keep` (`<DATABASE_URL's database>_bench`, migrated, with play
logs). Each measurement is one transaction, rolled back: the triggers of one grain set are installed,
`--rows` LogPlay rows are copied (marked pending by the insert trigger) and folded by
`playback_rollup_fold`; nothing it wrote stays. A fold before 0022 runs with 0022's database as it is: the all-time
grains' player rows are not written back first (with new players each is an insert either way).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


class Rollback(Exception):
    pass


# migration 0018 on a database at 0017 (rolled back with the measurement)
URL_DAY_SUMS_SQL = [
    "CREATE INDEX IF NOT EXISTS reportcell_url_day_sums ON playback_reportcell (key_hash, day) INCLUDE (plays, "
    "duration_sum, bw_sum, bw_n, received_sum, lost_sum, buffer_count, buffer_seconds) WHERE grain = 'cd'",
    "DROP INDEX IF EXISTS reportcell_url_days"]
# the player-row indexes before migration 0020 (rolled back with the measurement)
BEFORE_OVERLAPS_SQL = [
    "DROP INDEX IF EXISTS reportplayer_url_repeats", "DROP INDEX IF EXISTS reportplayer_url_partition",
    "CREATE INDEX IF NOT EXISTS reportplayer_url_players ON playback_reportplayer (key_hash, grain, origin_id, day) "
    "INCLUDE (player) WHERE grain IN ('cd', 'co')"]


def fold_seconds(grains: tuple[str, ...], rows: int, *, returning: bool = True, analyze: bool = True,
                 covering_index: bool = True, new_players: bool = False, url_day_sums: bool = False,
                 overlaps: bool = True, derived: bool = False) -> float:
    """Seconds of playback_rollup_fold over `rows` copied LogPlay rows, with the triggers of `grains`;
    returning=False: without ReportReturning, whose upkeep then skips itself; analyze=False: the fold
    without its ANALYZE of the claimed rows; covering_index=False: without migration 0017's covering index
    of the url x day and week cells, which every cell update of theirs adds to; new_players: each copy a
    new c_playerid (as in bench.ingest), else the copied rows' players play again; url_day_sums: with
    migration 0018's index in place of reportcell_url_days; overlaps=False: as before migration 0020;
    derived: as from migration 0022 on."""
    from django.conf import settings
    from django.db import connection, transaction

    from appliance.playback.models import PlayLog
    from appliance.playback.rollup_sql import FOLD_ROWS, install_first_players_sql, install_sql

    columns = ", ".join(f.column for f in PlayLog._meta.concrete_fields if not f.primary_key)
    elapsed = 0.0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if not returning:
                cursor.execute("DROP TABLE IF EXISTS playback_reportreturning")  # rolled back below
            if not covering_index:
                cursor.execute("DROP INDEX IF EXISTS reportcell_content_days")  # rolled back below
            for statement in URL_DAY_SUMS_SQL if url_day_sums else []:
                cursor.execute(statement)  # rolled back below
            for statement in [] if overlaps else BEFORE_OVERLAPS_SQL:
                cursor.execute(statement)  # rolled back below
            for statement in install_sql(settings.TIME_ZONE, prev_days=True, deferred=True, grains=grains,
                                         overlaps=overlaps, derived=derived) + install_first_players_sql(derived):
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
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (base, 0014 and every grain)")
    p.add_argument("--analyze", action="store_true",
                   help="compare the fold without and with its ANALYZE of the claimed rows (every grain)")
    p.add_argument("--overlaps", action="store_true",
                   help="compare the fold before migration 0020 (no prev_url_overlap upkeep) with the code's")
    p.add_argument("--derived", action="store_true",
                   help="compare 0021's fold with 0022's (the all-time grains' players from the day grains)")
    p.add_argument("--url-day-sums", action="store_true",
                   help="compare reportcell_url_days (0017) with 0018's reportcell_url_day_sums (every grain)")
    args = p.parse_args(argv)
    if args.url_day_sums:
        return _compare_url_day_sums(args.rows, args.rounds)
    from bench.ingest import setup_django

    setup_django(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance"))
    from appliance.playback.rollup_sql import BASE_GRAINS, GRAINS, GRAINS_0014, GRAINS_0015

    every_grain = tuple(GRAINS)
    # side: (grains, ReportReturning kept, fold analyzes its claimed rows, 0017's covering index)
    if args.overlaps:
        return _compare_overlaps(args.rows, args.rounds, new_players=args.analyze)
    if args.derived:
        return _compare(args.rows, args.rounds, {"0021": (every_grain, {"new_players": True}),
                                                 "0022": (every_grain, {"new_players": True, "derived": True})})
    if args.analyze:
        sides = {"before": (every_grain, True, False, True), "analyzed": (every_grain, True, True, True)}
    else:
        sides = {"base": (BASE_GRAINS, False, True, False), "0014": (GRAINS_0014, False, True, False),
                 "0015": (GRAINS_0015, True, True, False), "every": (every_grain, True, True, True)}
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(args.rounds):
        for side, (grains, returning, analyze, covering_index) in sides.items():
            rates[side].append(args.rows / fold_seconds(grains, args.rows, returning=returning, analyze=analyze,
                                                        covering_index=covering_index, new_players=args.analyze))
    for side, (grains, _, _, _) in sides.items():
        print(f"  {side:8} grains ({len(grains):2d}): {statistics.median(rates[side]):7.0f} play logs/s folded "
              f"(median of {args.rounds}: {', '.join(f'{r:.0f}' for r in rates[side])})")
    if args.analyze:
        ratio = statistics.median(rates["analyzed"]) / statistics.median(rates["before"])
        print(f"  analyzed / before: {ratio:.2f}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        return 0
    every = statistics.median(rates["every"])
    print(f"  every / base: {every / statistics.median(rates['base']):.2f}, every / 0014: "
          f"{every / statistics.median(rates['0014']):.2f}, every / 0015 (the 0017 index, 0020's grain): "
          f"{every / statistics.median(rates['0015']):.2f}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    return 0


def _compare_url_day_sums(rows: int, rounds: int) -> int:
    from bench.ingest import setup_django

    setup_django(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance"))
    from appliance.playback.rollup_sql import GRAINS

    return _compare(rows, rounds, {"0017": (tuple(GRAINS), {"url_day_sums": False}),
                                   "0018": (tuple(GRAINS), {"url_day_sums": True})})


def _compare_overlaps(rows: int, rounds: int, new_players: bool) -> int:
    """0019's fold (0015's grains, no url overlaps) against the code's (0020's overlaps, 0021's url x software)."""
    from appliance.playback.rollup_sql import GRAINS, GRAINS_0015

    return _compare(rows, rounds, {"0019": (GRAINS_0015, {"overlaps": False, "new_players": new_players}),
                                   "0021": (tuple(GRAINS), {"overlaps": True, "new_players": new_players})})


def _compare(rows: int, rounds: int, sides: dict[str, tuple[tuple[str, ...], dict]]) -> int:
    """Two fold configurations (name -> grains, fold_seconds options), interleaved; the second over the first."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, (grains, options) in sides.items():
            rates[name].append(rows / fold_seconds(grains, rows, **options))
    for name, rated in rates.items():
        print(f"  {name}: {statistics.median(rated):7.0f} play logs/s folded "
              f"(median of {rounds}: {', '.join(f'{r:.0f}' for r in rated)})")
    before, after = sides
    print(f"  {after} / {before}: {statistics.median(rates[after]) / statistics.median(rates[before]):.2f}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
