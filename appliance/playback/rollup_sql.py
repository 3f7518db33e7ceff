"""PostgreSQL triggers and a bulk fold keeping the report roll-ups (ReportCell, ReportPlayer) exact.

Statement-level triggers with transition tables see every write path (bulk INSERT, COPY, the ORM's
SET_NULL UPDATE, cascade DELETEs). Deferred mode (migration 0011 on): an INSERT only marks its LogPlay
rows pending (playback_rollup_pending: one cheap statement, no shared row touched), and the SQL function
playback_rollup_fold adds pending rows to the roll-ups in bulk later (beat's playback.fold_rollups;
reports fold the tail first, so they stay exact). Ingest then neither runs ~30 roll-up statements per
batch nor waits on the hot cells that every node's batches update. An UPDATE or DELETE moves only rows
already folded; folds, UPDATEs and DELETEs take one advisory lock, so each row is folded exactly once,
in its latest version. Immediate mode (migrations 0003/0004, before 0011) adds rows in the writer's
transaction. TRUNCATE empties the roll-ups.

A grain is a set of group keys: day (in the zone baked into the functions), origin, node (hashed into
key_hash, stored in node_id) and key_a/key_b (url, or c_hostexe + c_playerversion, or url + both joined by
chr(31)). Unused keys hold sentinels (day 1970-01-01, origin 0, '') so the unique keys need no NULL handling;
origin 0 also stands for "no origin". ReportPlayer counts the plays of each (cell, player) so that a cell's
`players` is exact under inserts and deletes alike.
Only LogPlay rows with a c_playerid count as players, as in the raw aggregate.

Distinct players over a day range: in the RANGE_GRAINS each ReportPlayer row also holds prev_day, the
player's previous play day in the same (origin, key). A player plays in [a, b) exactly when one of its
rows there has prev_day NULL or < a (its first day in the range), so the range count is a plain
count(*) over an index-only scan, no DISTINCT over text. prev_day is recomputed (window lag) for the
(origin, key, player) pairs each statement touches. The rows with prev_day < a are counted per (cell,
prev_day) in ReportReturning (migration 0015), kept by the triggers on ReportPlayer: a range reads a few
rows per cell, not one per returning player.

Distinct players over a url prefix (migration 0020): in the OVERLAP_GRAINS each ReportPlayer row also holds
prev_url_overlap, how many leading characters its url shares with the url before it (in "C" order) among the
player's rows of the same partition (day, origin and key_b: the cell's keys but the url); NULL for the first.
The urls starting with a prefix of length L lie together in that order, so a player's rows under the prefix
are one run whose first row has an overlap < L (or NULL) and every other row one >= L: the prefix's distinct
players are its cells' `players` summed minus its rows with an overlap >= L (a range scan of those few rows,
no DISTINCT). The overlap is recomputed (window lag over the url) for the partitions each statement touches.

All-time players from the day grains (migration 0022): an all-time grain whose day grain has the same origin and key
(DERIVED_PLAYERS: o from do, c from cd, s from sd, so from os) keeps no player rows. Each (origin, key, player) has
exactly one day-grain row with prev_day NULL, so the all-time cell's players are the day cells' first_players summed:
the ReportPlayer triggers add each first_players change to the all-time cell too. A fold writes about a quarter fewer
player rows (their upserts were 13 % of the fold's time).
"""
from __future__ import annotations

NO_DAY = "1970-01-01"
# grain -> (has day, has origin, has node, key_a expression, key_b expression) over a play-log row set
GRAINS: dict[str, tuple[bool, bool, bool, str, str]] = {
    "d": (True, False, False, "''", "''"),
    "do": (True, True, False, "''", "''"),
    "o": (False, True, False, "''", "''"),
    "c": (False, False, False, "url", "''"),
    "co": (False, True, False, "url", "''"),
    "cd": (True, False, False, "url", "''"),
    "s": (False, False, False, "c_hostexe", "c_playerversion"),
    "so": (False, True, False, "c_hostexe", "c_playerversion"),
    "sd": (True, False, False, "c_hostexe", "c_playerversion"),
    # migration 0014: the node filter (n), and origin with a day range on by-content / by-player-software
    # (oc, os: content / software per origin and day)
    "dn": (True, False, True, "''", "''"),
    "on": (False, True, True, "''", "''"),
    "cn": (False, False, True, "url", "''"),
    "sn": (False, False, True, "c_hostexe", "c_playerversion"),
    "oc": (True, True, False, "url", "''"),
    "os": (True, True, False, "c_hostexe", "c_playerversion"),
    # migration 0015: url x week (day = the week's Monday), cells only, no player rows: by-content ranks a long
    # range's urls over its whole weeks plus its edge days (rollup_reports), then reads the page's day cells
    "cw": (True, False, False, "url", "''"),
    # migration 0021: url x software, all time (player rows, no prev_day): by-player-software with a url prefix
    # sums the prefix's cells per key_b. key_b joins hostexe and version with chr(31) as key_hash does, so a
    # software's key_b hashes to its key_hash in grain s (rollup_reports reads the names there: either part
    # may itself hold a chr(31))
    "cs": (False, False, False, "url", "c_hostexe || chr(31) || c_playerversion"),
}
BASE_GRAINS = ("d", "do", "o", "c", "co", "cd", "s", "so", "sd")  # the grains of migrations 0003-0013
NODE_GRAINS = ("dn", "on", "cn", "sn")
GRAINS_0014 = (*BASE_GRAINS, *NODE_GRAINS, "oc", "os")  # the grains kept after migration 0014
GRAINS_0015 = (*GRAINS_0014, "cw")
GRAINS_0021 = (*GRAINS_0015, "cs")
WEEK_GRAINS = ("cw",)  # cells only: their `players` stay 0
RANGE_GRAINS = ("do", "cd", "sd", "oc", "os")  # grains read with a day range and a distinct-player count
OVERLAP_GRAINS = ("cd", "co", "cs")  # url-keyed grains whose player rows keep prev_url_overlap (0020, cs: 0021)
# all-time grain -> the day grain whose first days count its players (migration 0022: no player rows of its own)
DERIVED_PLAYERS = {"o": "do", "c": "cd", "s": "sd", "so": "os"}
SHARED_PREFIX = "playback_shared_prefix_length"  # SQL function: leading characters two texts share
CELL = "playback_reportcell"
PLAYER = "playback_reportplayer"
RETURNING = "playback_reportreturning"  # migration 0015; SQL writing it runs only once the table exists
RETURNING_KEYS = "grain, origin_id, key_hash, day, prev_day"
KEYS = "grain, day, origin_id, key_hash"
PENDING = "playback_rollup_pending"
FOLD_ROWS = "playback_rollup_fold_rows"  # the fold's claimed rows (a temporary table)
FOLD_LOCK = 0x726F6C6C  # pg_advisory_xact_lock key of folds, UPDATEs and DELETEs of play logs ("roll")
SUMS = ("duration_sum", "bw_sum", "bw_n", "received_sum", "lost_sum", "buffer_count", "buffer_seconds")


def _key_exprs(grain: str, tz: str) -> dict[str, str]:
    has_day, has_origin, has_node, key_a, key_b = GRAINS[grain]
    # a node grain's node is part of its key through the hash (the unique keys stay as they were), and
    # stored in node_id for the node filter; the other grains leave node_id at its default 0
    hashed = f"{key_a} || chr(31) || {key_b}" + (" || chr(31) || node_id" if has_node else "")
    return {
        "grain": f"'{grain}'",
        "day": (f"date_trunc('week', logged_at AT TIME ZONE '{tz}')::date" if grain in WEEK_GRAINS
                else f"(logged_at AT TIME ZONE '{tz}')::date" if has_day else f"DATE '{NO_DAY}'"),
        "origin_id": "COALESCE(origin_id, 0)" if has_origin else "0",
        "key_hash": f"md5({hashed})::uuid",
        "key_a": key_a,
        "key_b": key_b,
    }


def _node_column(grain: str, prefix: str = "") -> str:
    """`, node_id` in the cell column lists of a node grain (written before migration 0014 added it)."""
    return f", {prefix}node_id" if GRAINS[grain][2] else ""


def _cells_source(grain: str, tz: str, rows: str) -> str:
    k = _key_exprs(grain, tz)
    return (f"SELECT {k['grain']} AS grain, {k['day']} AS day, {k['origin_id']} AS origin_id, "
            f"{k['key_hash']} AS key_hash, min({k['key_a']}) AS key_a, min({k['key_b']}) AS key_b"
            f"{', min(node_id) AS node_id' if GRAINS[grain][2] else ''}, count(*) AS plays, COALESCE(sum(x_duration), 0) AS duration_sum, "
            "COALESCE(sum(avgbandwidth), 0) AS bw_sum, count(avgbandwidth) AS bw_n, "
            "COALESCE(sum(COALESCE(c_pkts_received, 0)), 0) AS received_sum, "
            "COALESCE(sum(COALESCE(c_pkts_lost_client, 0)), 0) AS lost_sum, "
            "COALESCE(sum(c_buffercount), 0) AS buffer_count, COALESCE(sum(c_totalbuffertime), 0) AS buffer_seconds "
            f"FROM {rows} WHERE kind = 'logplay' GROUP BY 1, 2, 3, 4")


def _players_source(grain: str, tz: str, rows: str, with_keys: bool = False) -> str:
    """(cell keys, player, n) per player of each cell; with_keys: the cell's key_a and key_b too."""
    k = _key_exprs(grain, tz)
    keys = f", min({k['key_a']}) AS key_a, min({k['key_b']}) AS key_b" if with_keys else ""
    return (f"SELECT {k['grain']} AS grain, {k['day']} AS day, {k['origin_id']} AS origin_id, "
            f"{k['key_hash']} AS key_hash, c_playerid AS player, count(*) AS n{keys} "
            f"FROM {rows} WHERE kind = 'logplay' AND c_playerid <> '' GROUP BY 1, 2, 3, 4, 5")


def _match(alias: str, other: str, keys: str = KEYS) -> str:
    return " AND ".join(f"{alias}.{k} = {other}.{k}" for k in keys.split(", "))


def prev_day_sql(grain: str, tz: str, rows: str) -> list[str]:
    """Recompute prev_day for the (origin, key, player) pairs of `rows` in one grain (after add/remove)."""
    if grain not in RANGE_GRAINS:
        return []
    k = _key_exprs(grain, tz)
    pairs = (f"SELECT DISTINCT {k['origin_id']} AS origin_id, {k['key_hash']} AS key_hash, c_playerid AS player "
             f"FROM {rows} WHERE kind = 'logplay' AND c_playerid <> ''")
    return [f"UPDATE {PLAYER} p SET prev_day = w.prev FROM (SELECT q.id, lag(q.day) OVER "
            "(PARTITION BY q.origin_id, q.key_hash, q.player ORDER BY q.day) AS prev "
            f"FROM {PLAYER} q JOIN ({pairs}) a ON q.grain = '{grain}' AND q.origin_id = a.origin_id "
            "AND q.key_hash = a.key_hash AND q.player = a.player) w "
            "WHERE p.id = w.id AND p.prev_day IS DISTINCT FROM w.prev"]


def shared_prefix_function_sql() -> list[str]:
    """playback_shared_prefix_length(a, b): how many leading characters a and b share (NULL if either is
    NULL); a binary search over left() (about 5 us a pair of urls, vs 25 us comparing character by character)."""
    return [f"""CREATE OR REPLACE FUNCTION {SHARED_PREFIX}(a text, b text) RETURNS integer
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE plpgsql AS $fn$
DECLARE lo integer := 0; hi integer := least(length(a), length(b)); mid integer;
BEGIN
  IF left(a, hi) = left(b, hi) COLLATE "C" THEN RETURN hi; END IF;
  hi := hi - 1;
  WHILE lo < hi LOOP
    mid := (lo + hi + 1) / 2;
    IF left(a, mid) = left(b, mid) COLLATE "C" THEN lo := mid; ELSE hi := mid - 1; END IF;
  END LOOP;
  RETURN lo;
END
$fn$"""]


def _overlap_window(url: str, partition: str) -> str:
    return f'{SHARED_PREFIX}(lag({url}) OVER (PARTITION BY {partition} ORDER BY {url} COLLATE "C"), {url})'


def prev_url_overlap_sql(grain: str, tz: str, rows: str) -> list[str]:
    """Recompute prev_url_overlap for the (day, origin, key_b, player) partitions of `rows` in one grain (after
    add/remove): the partition's rows are found by player (reportplayer_url_partition), their urls in the cells."""
    if grain not in OVERLAP_GRAINS:
        return []
    k = _key_exprs(grain, tz)
    touched = (f"SELECT DISTINCT {k['day']} AS day, {k['origin_id']} AS origin_id, {k['key_b']} AS key_b, "
               f"c_playerid AS player FROM {rows} WHERE kind = 'logplay' AND c_playerid <> ''")
    overlap = _overlap_window("c.key_a", "q.day, q.origin_id, c.key_b, q.player")
    # each partition row's cell probed by its key (LATERAL ... OFFSET 0: not pulled up into a join; joined by day
    # and origin first, the planner once merged every co cell with the touched players: 158 s for 20,000 rows)
    return [f"UPDATE {PLAYER} p SET prev_url_overlap = w.overlap FROM (SELECT q.id, {overlap} AS overlap "
            f"FROM ({touched}) t JOIN {PLAYER} q ON q.grain = '{grain}' AND q.player = t.player AND q.day = t.day "
            f"AND q.origin_id = t.origin_id CROSS JOIN LATERAL (SELECT key_a, key_b FROM {CELL} c WHERE "
            "c.grain = q.grain AND c.day = q.day AND c.origin_id = q.origin_id AND c.key_hash = q.key_hash OFFSET 0) c "
            "WHERE c.key_b = t.key_b) w WHERE p.id = w.id AND p.prev_url_overlap IS DISTINCT FROM w.overlap"]


def backfill_prev_day_sql() -> list[str]:
    """prev_day for every row of the RANGE_GRAINS (migration 0004)."""
    grains = ", ".join(f"'{g}'" for g in RANGE_GRAINS)
    return [f"UPDATE {PLAYER} p SET prev_day = w.prev FROM (SELECT id, lag(day) OVER "
            "(PARTITION BY grain, origin_id, key_hash, player ORDER BY day) AS prev "
            f"FROM {PLAYER} WHERE grain IN ({grains})) w WHERE p.id = w.id AND w.prev IS NOT NULL"]


def add_rows_sql(grain: str, tz: str, rows: str, derived: bool = False) -> list[str]:
    """Statements adding the LogPlay rows of relation `rows` to one grain (derived: migration 0022's, where the
    DERIVED_PLAYERS grains have cells only)."""
    sums = ", ".join(SUMS)
    upsert = (f"ON CONFLICT ({KEYS}) DO UPDATE SET plays = {CELL}.plays + EXCLUDED.plays, "
              + ", ".join(f"{s} = {CELL}.{s} + EXCLUDED.{s}" for s in SUMS))
    columns = f"INSERT INTO {CELL} ({KEYS}, key_a, key_b{_node_column(grain)}, plays, players, {sums}) "
    if grain in WEEK_GRAINS or (derived and grain in DERIVED_PLAYERS):
        return [f"{columns}SELECT {KEYS}, key_a, key_b{_node_column(grain)}, plays, 0, {sums} "
                f"FROM ({_cells_source(grain, tz, rows)}) src {upsert}"]
    # one statement: each cell is written once, its new players counted from the player rows the upsert inserted
    # (a second UPDATE of every touched cell: the sums are in indexes, so no update is HOT; 3-10 % of the fold's CPU)
    src_keys = ", ".join(f"src.{k}" for k in KEYS.split(", "))
    src_sums = ", ".join(f"src.{s}" for s in SUMS)
    return [
        f"WITH ins AS (INSERT INTO {PLAYER} ({KEYS}, player, n) {_players_source(grain, tz, rows)} "
        f"ON CONFLICT ({KEYS}, player) DO UPDATE SET n = {PLAYER}.n + EXCLUDED.n "
        f"RETURNING {KEYS}, (xmax = 0) AS fresh), "
        f"fresh AS (SELECT {KEYS}, count(*) AS k FROM ins WHERE fresh GROUP BY 1, 2, 3, 4) "
        f"{columns}SELECT {src_keys}, src.key_a, src.key_b{_node_column(grain, 'src.')}, src.plays, "
        f"COALESCE(fresh.k, 0), {src_sums} FROM ({_cells_source(grain, tz, rows)}) src LEFT JOIN fresh "
        f"ON {_match('src', 'fresh')} {upsert}, players = {CELL}.players + EXCLUDED.players",
    ]


def remove_rows_sql(grain: str, tz: str, rows: str, derived: bool = False) -> list[str]:
    """Statements removing the LogPlay rows of relation `rows` from one grain (rows were added before)."""
    cells = (f"UPDATE {CELL} c SET plays = c.plays - src.plays, "
             + ", ".join(f"{s} = c.{s} - src.{s}" for s in SUMS)
             + f" FROM ({_cells_source(grain, tz, rows)}) src WHERE {_match('c', 'src')}")
    emptied = (f"DELETE FROM {CELL} c USING ({_cells_source(grain, tz, rows)}) src "
               f"WHERE {_match('c', 'src')} AND c.plays <= 0")
    if grain in WEEK_GRAINS or (derived and grain in DERIVED_PLAYERS):
        return [cells, emptied]
    return [
        cells,
        f"UPDATE {PLAYER} p SET n = p.n - src.n FROM ({_players_source(grain, tz, rows)}) src "
        f"WHERE {_match('p', 'src', KEYS + ', player')}",
        f"WITH gone AS (DELETE FROM {PLAYER} p USING ({_players_source(grain, tz, rows)}) src "
        f"WHERE {_match('p', 'src', KEYS + ', player')} AND p.n <= 0 RETURNING p.grain, p.day, p.origin_id, "
        "p.key_hash), "
        f"lost AS (SELECT {KEYS}, count(*) AS k FROM gone GROUP BY 1, 2, 3, 4) "
        f"UPDATE {CELL} c SET players = c.players - lost.k FROM lost WHERE {_match('c', 'lost')}",
        emptied,
    ]


def _function(name: str, statements: list[str]) -> str:
    body = ";\n  ".join(statements)
    return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
            f"BEGIN\n  {body};\n  RETURN NULL;\nEND\n$fn$")


def _statements(tz: str, rows: str, change, prev_days: bool, grains=tuple(GRAINS),
                overlaps: bool = False, derived: bool = False) -> list[str]:
    if derived:  # the all-time cells first: the day grains' player rows then add to their players
        grains = sorted(grains, key=lambda grain: grain not in DERIVED_PLAYERS)
    return [s for g in grains for s in change(g, tz, rows, derived) + (prev_day_sql(g, tz, rows) if prev_days else [])
            + (prev_url_overlap_sql(g, tz, rows) if overlaps else [])]


def _folded(rows: str) -> str:
    """The rows of transition table `rows` already folded into the roll-ups (deferred mode)."""
    return (f"(SELECT * FROM {rows} r WHERE NOT EXISTS (SELECT 1 FROM {PENDING} q "
            f"WHERE q.playlog_id = r.id)) AS {rows}_folded")


def install_sql(tz: str, prev_days: bool = False, deferred: bool = False, grains=tuple(GRAINS),
                overlaps: bool = False, derived: bool = False) -> list[str]:
    """Functions and triggers for time zone `tz` (report days are calendar days there).

    prev_days=False only for migration 0003, which runs before the column exists (0004 adds it).
    overlaps=True from migration 0020 on (its prev_url_overlap column exists).
    derived=True from migration 0022 on (the DERIVED_PLAYERS grains' player rows are gone).
    deferred=True from migration 0011 on (its pending table exists): INSERTs are folded later.
    grains=BASE_GRAINS for the migrations before 0014 (which adds the other grains' column and rows)."""
    tz = tz.replace("'", "")
    table = "playback_playlog"
    if deferred:
        lock = f"PERFORM pg_advisory_xact_lock({FOLD_LOCK})"
        # LogConnect rows add nothing to the roll-ups: never pending, "folded" from the start
        added = [f"INSERT INTO {PENDING} (playlog_id) SELECT id FROM new_rows WHERE kind = 'logplay'"]
        removed = [lock, *_statements(tz, _folded("old_rows"), remove_rows_sql, prev_days, grains, overlaps, derived),
                   f"DELETE FROM {PENDING} q USING old_rows r WHERE q.playlog_id = r.id"]
        updated = [lock, *_statements(tz, _folded("old_rows"), remove_rows_sql, prev_days, grains, overlaps, derived),
                   *_statements(tz, _folded("new_rows"), add_rows_sql, prev_days, grains, overlaps, derived)]
        truncated = [f"DELETE FROM {CELL}", f"DELETE FROM {PLAYER}", f"DELETE FROM {PENDING}"]
        fold = [_fold_function(tz, grains, overlaps, derived)]
    else:
        added = _statements(tz, "new_rows", add_rows_sql, prev_days, grains, overlaps, derived)
        removed = _statements(tz, "old_rows", remove_rows_sql, prev_days, grains, overlaps, derived)
        updated = removed + added
        truncated = [f"DELETE FROM {CELL}", f"DELETE FROM {PLAYER}"]
        fold = []
    return [
        *uninstall_sql(),
        *(shared_prefix_function_sql() if overlaps else []),
        f"CREATE FUNCTION playback_rollup_tz() RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT '{tz}'::text $$",
        _function("playback_rollup_insert", added),
        _function("playback_rollup_delete", removed),
        _function("playback_rollup_update", updated),
        _function("playback_rollup_truncate", truncated),
        *fold,
        f"CREATE TRIGGER playback_rollup_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION playback_rollup_insert()",
        f"CREATE TRIGGER playback_rollup_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION playback_rollup_delete()",
        f"CREATE TRIGGER playback_rollup_update AFTER UPDATE ON {table} "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION playback_rollup_update()",
        f"CREATE TRIGGER playback_rollup_truncate AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION playback_rollup_truncate()",
    ]


def _fold_function(tz: str, grains, overlaps: bool = False, derived: bool = False) -> str:
    """playback_rollup_fold(n): adds at most n pending rows (the oldest) to the roll-ups in the caller's
    transaction and returns how many marks it claimed (rows deleted with triggers off leave orphan
    marks: claimed and dropped like the others)."""
    claim = (f"CREATE TEMPORARY TABLE {FOLD_ROWS} ON COMMIT DROP AS WITH claimed AS (DELETE FROM {PENDING} "
             f"WHERE playlog_id IN (SELECT playlog_id FROM {PENDING} ORDER BY playlog_id LIMIT n) "
             "RETURNING playlog_id) SELECT c.playlog_id AS claimed_id, p.* FROM claimed c "
             "LEFT JOIN playback_playlog p ON p.id = c.playlog_id")
    body = ";\n  ".join([f"PERFORM pg_advisory_xact_lock({FOLD_LOCK})", f"DROP TABLE IF EXISTS {FOLD_ROWS}",
                         claim, f"SELECT count(*) INTO claimed FROM {FOLD_ROWS}",
                         f"DELETE FROM {FOLD_ROWS} WHERE id IS NULL",
                         # real row counts for the planner: guessing 1 row, it probed the prev_day pairs
                         # through an index of every player of the url (50x slower, bench.ingest's fold)
                         f"ANALYZE {FOLD_ROWS}",
                         *_statements(tz, FOLD_ROWS, add_rows_sql, True, grains, overlaps, derived),
                         f"DROP TABLE {FOLD_ROWS}"])
    return ("CREATE OR REPLACE FUNCTION playback_rollup_fold(n integer) RETURNS integer LANGUAGE plpgsql "
            f"AS $fn$\nDECLARE claimed integer;\nBEGIN\n  {body};\n  RETURN claimed;\nEND\n$fn$")


def install_fold_sql(tz: str, grains=tuple(GRAINS), overlaps: bool = False, derived: bool = False) -> list[str]:
    """playback_rollup_fold alone, replaced in place (a change of the fold's mechanism, not of the grains:
    the triggers stay as they are)."""
    return [_fold_function(tz.replace("'", ""), grains, overlaps, derived)]


def uninstall_sql() -> list[str]:
    table = "playback_playlog"
    return [
        *(f"DROP TRIGGER IF EXISTS playback_rollup_{op} ON {table}" for op in ("insert", "delete", "update",
                                                                             "truncate")),
        *(f"DROP FUNCTION IF EXISTS playback_rollup_{op}()" for op in ("insert", "delete", "update", "truncate",
                                                                      "tz")),
        "DROP FUNCTION IF EXISTS playback_rollup_fold(integer)",
    ]


def _empty_rollups_sql() -> list[str]:
    """Every roll-up row and pending mark gone, folds kept out until commit."""
    return [f"SELECT pg_advisory_xact_lock({FOLD_LOCK})", f"TRUNCATE {CELL}, {PLAYER}",
            # 0003 rebuilds before 0011 creates the pending table
            f"DO $$ BEGIN IF to_regclass('{PENDING}') IS NOT NULL THEN DELETE FROM {PENDING}; END IF; END $$",
            _if_returning_table(f"DELETE FROM {RETURNING}")]


def rebuild_sql(tz: str, prev_days: bool = False, grains=tuple(GRAINS), overlaps: bool = False,
                derived: bool = False) -> list[str]:
    """Recompute every roll-up from playback_playlog (backfill, or after a time zone change); nothing is
    left pending. Run in one transaction where folds may run: the fold lock then keeps them out."""
    tz = tz.replace("'", "")
    return [*_empty_rollups_sql(),
            *_statements(tz, "playback_playlog", add_rows_sql, prev_days, grains, overlaps, derived)]


# ReportCell.first_players: the cell's ReportPlayer rows with prev_day NULL (a player's first day in its
# (origin, key)), kept by triggers on ReportPlayer. A range's distinct players are then sum(first_players)
# over its cells plus the few rows whose prev_day lies before the range (partial index), not a count over
# every player row of the range.
_FIRST_ROWS = "SELECT grain, day, origin_id, key_hash, {sign} AS k FROM {rows} WHERE prev_day IS NULL AND grain IN ({grains})"
_FIRST_TRIGGERS = {"insert": ["new_p"], "delete": ["old_p"], "update": ["new_p", "old_p"]}


def _if_returning_table(statements: str, block: bool = True) -> str:
    """`statements` run only where the ReportReturning table exists (migration 0015 on): the SQL of earlier
    migrations stays valid. block=False: the plpgsql IF alone, for a function body."""
    body = f"IF to_regclass('{RETURNING}') IS NOT NULL THEN {statements}; END IF"
    return f"DO $$ BEGIN {body}; END $$" if block else body


_RETURNING_ROWS = ("SELECT {keys}, {sign} AS k FROM {rows} WHERE prev_day IS NOT NULL AND grain IN ({grains})")


def _returning_delta(relations: list[str]) -> str:
    """ReportReturning upkeep from ReportPlayer's transition tables: + new rows, - old rows, emptied rows
    deleted (so the rows are the ones returning_build_sql writes)."""
    grains = ", ".join(f"'{g}'" for g in RANGE_GRAINS)
    parts = " UNION ALL ".join(_RETURNING_ROWS.format(keys=RETURNING_KEYS, sign="1" if r == "new_p" else "-1",
                                                      rows=r, grains=grains) for r in relations)
    statements = [f"INSERT INTO {RETURNING} ({RETURNING_KEYS}, n) SELECT {RETURNING_KEYS}, sum(k) FROM ({parts}) f "
                  f"GROUP BY 1, 2, 3, 4, 5 HAVING sum(k) <> 0 ON CONFLICT ({RETURNING_KEYS}) "
                  f"DO UPDATE SET n = {RETURNING}.n + EXCLUDED.n"]
    if "old_p" in relations:
        statements.append(f"DELETE FROM {RETURNING} r USING (SELECT DISTINCT {RETURNING_KEYS} FROM old_p WHERE "
                          f"prev_day IS NOT NULL AND grain IN ({grains})) o WHERE "
                          f"{_match('r', 'o', RETURNING_KEYS)} AND r.n = 0")
    return _if_returning_table("; ".join(statements), block=False)


def returning_build_sql(grains: tuple[str, ...] = RANGE_GRAINS) -> list[str]:
    """ReportReturning rows of `grains` rewritten from their ReportPlayer rows, in key order (the bulk paths
    write player rows with the triggers on or off: what the triggers wrote is replaced)."""
    listed = ", ".join(f"'{g}'" for g in grains)
    return [_if_returning_table(
        f"DELETE FROM {RETURNING} WHERE grain IN ({listed}); INSERT INTO {RETURNING} ({RETURNING_KEYS}, n) SELECT {RETURNING_KEYS}, count(*) FROM {PLAYER} "
        f"WHERE grain IN ({listed}) AND prev_day IS NOT NULL GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5")]


def _first_rows(relations: list[str], grains) -> str:
    """+1 per new, -1 per old player row of `grains` with prev_day NULL (a first day), from the transition tables."""
    listed = ", ".join(f"'{g}'" for g in grains)
    return " UNION ALL ".join(_FIRST_ROWS.format(sign="1" if r == "new_p" else "-1", rows=r, grains=listed)
                              for r in relations)


def _first_players_delta(relations: list[str]) -> str:
    parts = _first_rows(relations, RANGE_GRAINS)
    return (f"UPDATE {CELL} c SET first_players = c.first_players + d.k FROM (SELECT {KEYS}, sum(k) AS k "
            f"FROM ({parts}) f GROUP BY 1, 2, 3, 4 HAVING sum(k) <> 0) d WHERE {_match('c', 'd')}")


def _derived_players_delta(relations: list[str]) -> str:
    """The day grains' first_players changes added to their all-time cells' players (DERIVED_PLAYERS, 0022)."""
    day_grains = {day: grain for grain, day in DERIVED_PLAYERS.items()}
    parts = _first_rows(relations, day_grains)
    all_time = " ".join(f"WHEN '{day}' THEN '{grain}'" for day, grain in day_grains.items())
    # the day as a column of d, not a constant filter on the cells: with that filter a never-analyzed cell table
    # looked like one row and d was re-aggregated per cell (migration 0023); on the four keys d probes the cells
    return (f"UPDATE {CELL} c SET players = c.players + d.k FROM (SELECT CASE grain {all_time} END AS grain, "
            f"DATE '{NO_DAY}' AS day, origin_id, key_hash, sum(k) AS k FROM ({parts}) f GROUP BY 1, 3, 4 "
            f"HAVING sum(k) <> 0) d WHERE {_match('c', 'd')}")


def install_first_players_sql(derived: bool = False) -> list[str]:
    """Triggers on ReportPlayer keeping ReportCell.first_players (migration 0005), ReportReturning (0015) and,
    derived=True (0022), the DERIVED_PLAYERS grains' players."""
    statements = uninstall_first_players_sql()
    for op, relations in _FIRST_TRIGGERS.items():
        name = f"playback_first_players_{op}"
        refs = " ".join(f"{'NEW' if r == 'new_p' else 'OLD'} TABLE AS {r}" for r in relations)
        derived_players = [_derived_players_delta(relations)] if derived else []
        statements += [_function(name, [_first_players_delta(relations), *derived_players,
                                        _returning_delta(relations)]),
                       f"CREATE TRIGGER {name} AFTER {op.upper()} ON {PLAYER} REFERENCING {refs} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"]
    return statements


def uninstall_first_players_sql() -> list[str]:
    return [s for op in _FIRST_TRIGGERS for s in (f"DROP TRIGGER IF EXISTS playback_first_players_{op} ON {PLAYER}",
                                                  f"DROP FUNCTION IF EXISTS playback_first_players_{op}()")]


def backfill_first_players_sql() -> list[str]:
    """first_players for the cells that exist when the column is added (default 0)."""
    grains = ", ".join(f"'{g}'" for g in RANGE_GRAINS)
    return [f"UPDATE {CELL} c SET first_players = f.k FROM (SELECT {KEYS}, count(*) AS k FROM {PLAYER} "
            f"WHERE prev_day IS NULL AND grain IN ({grains}) GROUP BY 1, 2, 3, 4) f WHERE {_match('c', 'f')}"]


def bulk_rebuild_sql(tz: str) -> list[str]:
    """rebuild_sql + backfill_prev_day_sql + backfill_first_players_sql in one pass per grain, for millions of
    play logs: plain INSERT ... SELECT in key order (no upserts into a growing index, no player CTE), prev_day
    by a window in the same statement, players and first_players counted from the players just written.
    The same rows as the incremental path (tests/appliance/playback/test_rollups.py). Nothing is left
    pending (a pending row folded again would count twice); the fold lock keeps folds out meanwhile."""
    # the ReportPlayer triggers off meanwhile: a day grain's player rows would add to all-time cells already counted
    return [*_empty_rollups_sql(), *uninstall_first_players_sql(),
            *(s for grain in GRAINS for s in bulk_grain_sql(grain, tz)), *install_first_players_sql(derived=True)]


def bulk_grain_sql(grain: str, tz: str) -> list[str]:
    """bulk_rebuild_sql's statements for one grain of empty roll-ups (grains can be built concurrently), as the
    triggers of migration 0022 on keep them: a DERIVED_PLAYERS grain's players counted, no player rows written."""
    tz = tz.replace("'", "")
    sums = ", ".join(SUMS)
    cell_keys = ", ".join("c." + k for k in KEYS.split(", "))
    ranged = grain in RANGE_GRAINS
    prev = "lag(day) OVER (PARTITION BY origin_id, key_hash, player ORDER BY day)" if ranged else "NULL::date"
    first = "count(*) FILTER (WHERE prev_day IS NULL)" if ranged else "0"
    overlaps = grain in OVERLAP_GRAINS  # the cell's url beside each player row, for its overlap
    source = _players_source(grain, tz, "playback_playlog", with_keys=overlaps)
    overlap = f", {_overlap_window('key_a', 'day, origin_id, key_b, player')}" if overlaps else ""
    counted = (f"({_players_source(grain, tz, 'playback_playlog')}) src" if grain in DERIVED_PLAYERS
               else f"{PLAYER} WHERE grain = '{grain}'")
    players = [] if grain in WEEK_GRAINS or grain in DERIVED_PLAYERS else [
        f"INSERT INTO {PLAYER} ({KEYS}, player, n, prev_day{', prev_url_overlap' if overlaps else ''}) "
        f"SELECT {KEYS}, player, n, {prev}{overlap} FROM ({source}) src ORDER BY {KEYS}, player"]
    return [
        *players,
        *(returning_build_sql((grain,)) if ranged else []),
        f"INSERT INTO {CELL} ({KEYS}, key_a, key_b{_node_column(grain)}, plays, players, first_players, {sums}) "
        f"SELECT {cell_keys}, c.key_a, c.key_b{_node_column(grain, 'c.')}, c.plays, COALESCE(p.players, 0), COALESCE(p.first_players, 0), "
        f"{', '.join('c.' + s for s in SUMS)} FROM ({_cells_source(grain, tz, 'playback_playlog')}) c "
        f"LEFT JOIN (SELECT {KEYS}, count(*) AS players, {first} AS first_players FROM {counted} "
        f"GROUP BY 1, 2, 3, 4) p ON {_match('c', 'p')} ORDER BY {cell_keys}",
    ]


def _fold_everything_first() -> list[str]:
    """Writers wait (SHARE lock on the play logs) and every pending row is folded: a bulk build then counts
    each row exactly once, and later folds only rows inserted after the commit."""
    return ["LOCK TABLE playback_playlog IN SHARE MODE", f"SELECT pg_advisory_xact_lock({FOLD_LOCK})",
            "DO $$ BEGIN IF to_regproc('playback_rollup_fold') IS NOT NULL THEN "
            "PERFORM playback_rollup_fold(2147483647); END IF; END $$"]


def add_grains_sql(tz: str, grains: tuple[str, ...], kept: tuple[str, ...], overlaps: bool = False,
                   derived: bool = False) -> list[str]:
    """Build `grains` (new ones) beside the existing roll-ups in bulk, then triggers keeping the `kept` grains
    (deferred mode). One transaction: writers of play logs wait until it commits (migrations 0014, 0015)."""
    listed = ", ".join(f"'{g}'" for g in grains)
    return [*_fold_everything_first(), *uninstall_first_players_sql(),  # bulk_grain_sql counts first_players
            *_delete_grains_sql(listed), *(s for grain in grains for s in bulk_grain_sql(grain, tz)),
            *install_sql(tz.replace("'", ""), prev_days=True, deferred=True, grains=kept, overlaps=overlaps,
                         derived=derived),
            *install_first_players_sql(derived)]


def drop_grains_sql(tz: str, grains: tuple[str, ...], kept: tuple[str, ...], overlaps: bool = False,
                    derived: bool = False) -> list[str]:
    """add_grains_sql backwards: the triggers keep the `kept` grains only, and `grains`' rows are deleted."""
    listed = ", ".join(f"'{g}'" for g in grains)
    return [*_fold_everything_first(),
            *install_sql(tz.replace("'", ""), prev_days=True, deferred=True, grains=kept, overlaps=overlaps,
                         derived=derived),
            *_delete_grains_sql(listed)]


def _delete_grains_sql(listed: str) -> list[str]:
    return [f"DELETE FROM {CELL} WHERE grain IN ({listed})", f"DELETE FROM {PLAYER} WHERE grain IN ({listed})",
            _if_returning_table(f"DELETE FROM {RETURNING} WHERE grain IN ({listed})")]


def add_returning_sql() -> list[str]:
    """Migration 0015: ReportReturning built from the player rows (every pending row folded first, writers
    waiting), then the ReportPlayer triggers that keep it."""
    return [*_fold_everything_first(), *uninstall_first_players_sql(), *returning_build_sql(),
            *install_first_players_sql()]


def backfill_overlaps_sql() -> list[str]:
    """prev_url_overlap written afresh for every player row of the OVERLAP_GRAINS (and the function it uses)."""
    listed = ", ".join(f"'{g}'" for g in OVERLAP_GRAINS)
    overlap = _overlap_window("c.key_a", "q.grain, q.day, q.origin_id, c.key_b, q.player")
    return [*shared_prefix_function_sql(),
            f"UPDATE {PLAYER} p SET prev_url_overlap = w.overlap FROM (SELECT q.id, {overlap} AS overlap "
            f"FROM {PLAYER} q JOIN {CELL} c ON c.grain = q.grain AND c.day = q.day AND c.origin_id = q.origin_id "
            f"AND c.key_hash = q.key_hash WHERE q.grain IN ({listed})) w "
            "WHERE p.id = w.id AND p.prev_url_overlap IS DISTINCT FROM w.overlap"]


def add_overlaps_sql(tz: str, grains: tuple[str, ...]) -> list[str]:
    """Migration 0020: prev_url_overlap written for every player row of the OVERLAP_GRAINS (every pending row
    folded first, writers waiting), then the triggers and fold that keep it."""
    return [*_fold_everything_first(), *backfill_overlaps_sql(),
            *install_sql(tz.replace("'", ""), prev_days=True, deferred=True, grains=grains, overlaps=True)]


def drop_overlaps_sql(tz: str, grains: tuple[str, ...]) -> list[str]:
    """add_overlaps_sql backwards: the triggers and fold without the overlap upkeep (the column goes next)."""
    return [*_fold_everything_first(), *install_sql(tz.replace("'", ""), prev_days=True, deferred=True, grains=grains),
            f"DROP FUNCTION IF EXISTS {SHARED_PREFIX}(text, text)"]


def derive_players_sql(tz: str) -> list[str]:
    """Migration 0022: the DERIVED_PLAYERS grains' player rows deleted (every pending row folded first, writers
    waiting; their cells' players are already the count the day grains give), then the triggers and fold that
    keep those players from the day grains' first days."""
    listed = ", ".join(f"'{g}'" for g in DERIVED_PLAYERS)
    return [*_fold_everything_first(), *uninstall_first_players_sql(), f"DELETE FROM {PLAYER} WHERE grain IN ({listed})",
            *install_sql(tz.replace("'", ""), prev_days=True, deferred=True, grains=GRAINS_0021, overlaps=True,
                         derived=True),
            *install_first_players_sql(derived=True)]


def underive_players_sql(tz: str) -> list[str]:
    """derive_players_sql backwards: the DERIVED_PLAYERS grains' player rows written again from the play logs,
    then 0021's triggers and fold."""
    tz = tz.replace("'", "")
    return [*_fold_everything_first(), *uninstall_first_players_sql(),
            *(f"INSERT INTO {PLAYER} ({KEYS}, player, n) {_players_source(grain, tz, 'playback_playlog')} "
              f"ORDER BY {KEYS}, player" for grain in DERIVED_PLAYERS),
            *install_sql(tz, prev_days=True, deferred=True, grains=GRAINS_0021, overlaps=True),
            *install_first_players_sql()]
