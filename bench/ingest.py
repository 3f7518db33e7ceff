"""Control-plane benchmark: report ingestion rates and report query times over many play logs.

    .venv/bin/python -m bench.ingest                     # 1,000 nodes over HTTP, 10M play logs
    .venv/bin/python -m bench.ingest --playlogs 1000000 --nodes 200 --keep
    .venv/bin/python -m bench.ingest --reports-only       # migrate a kept database, time the reports again

Creates a dedicated PostgreSQL database (`<DATABASE_URL's database>_bench`), migrates it, measures,
and drops it (unless --keep). Ingestion goes through the real /internal/v1/reports code: the service
(`report_batch_ingest`), the HTTP view one batch at a time (Django test client), and N simulated
nodes posting concurrently to the production web stack (gunicorn + uvicorn, bench/ingest_load.py),
printed as a ratio to a baseline measured in the same run (the same nodes' snapshot polls answered
304). Play logs are generated inside PostgreSQL, then indexes and roll-ups are built in bulk;
reports are timed through the REST API views. Goals: >= 20,000 events/s from the nodes over HTTP,
>= 5,000 events/s on the single-node paths, every report < 200 ms. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time
import urllib.parse
import uuid

GOAL_EVENTS_PER_S = 5000  # single-node paths (service, sequential HTTP): regression guards
GOAL_NODES_EVENTS_PER_S = 20_000  # many concurrent nodes over HTTP (issue 14: 1,000 nodes x 20 events/s)
GOAL_REPORT_MS = 200.0  # bench/report_scale.py GOAL_MS
ORIGINS = 5
URLS = 2000
START = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)


def bench_db_name(base: str) -> str:
    """`<DATABASE_URL's database>_bench`: runs against different databases do not drop each other's."""
    name = urllib.parse.urlsplit(base).path.strip("/") or "appliance"
    return name if name.endswith("_bench") else f"{name}_bench"


def bench_database_url(base: str) -> str:
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path="/" + bench_db_name(base)))


def admin_connect(base: str):
    import psycopg

    parts = urllib.parse.urlsplit(base)
    return psycopg.connect(urllib.parse.urlunsplit(parts._replace(path="/postgres")), autocommit=True)


def create_database(base: str) -> None:
    with admin_connect(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_db_name(base)}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{bench_db_name(base)}"')


def drop_database(base: str) -> None:
    from django.db import connections

    connections.close_all()
    with admin_connect(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_db_name(base)}" WITH (FORCE)')


# --- ingestion ---------------------------------------------------------------------------------

class EventSource:
    """Report events in proxyd's shape: per session started, N counters, a LogPlay, ended.

    proxyd reports counters every --counters-interval (10 s), so a 100 s session sends 10."""

    def __init__(self, origin_bases: list[str], counters_per_session: int) -> None:
        self.counters_per_session = counters_per_session
        self.seq = 0
        self.sessions = 0
        self.origin_bases = origin_bases

    def _event(self, kind: str, data: dict) -> dict:
        self.seq += 1
        at = START + dt.timedelta(seconds=self.seq)
        return {"id": str(uuid.uuid4()), "seq": self.seq, "at": at.isoformat().replace("+00:00", "Z"),
                "kind": kind, "data": data}

    def session_events(self) -> list[dict]:
        self.sessions += 1
        sid = f"s{self.sessions:08d}"
        base = self.origin_bases[self.sessions % len(self.origin_bases)]
        counters = {"session_id": sid, "bytes_out": 1_000_000, "packets_out": 900, "bytes_in": 1_000_000,
                    "packets_in": 900, "packets_lost": 1, "jitter_ms": 2.5}
        fields = {"c-ip": "10.0.0.1", "c-playerid": f"{{{uuid.uuid4()}}}", "x-duration": "60",
                  "avgbandwidth": "500000", "c-pkts-received": "900", "c-pkts-lost-client": "1",
                  "c-hostexe": "wmplayer.exe", "c-playerversion": "12.0.1", "date": "2026-08-01",
                  "time": "12:00:00"}
        return [
            self._event("session.started", {
                "session_id": sid, "url": f"rtsp://proxy/vod/c{self.sessions % URLS}",
                "origin_url": f"{base}/c{self.sessions % URLS}", "player_addr": "10.0.0.1:5000",
                "user_agent": "WMPlayer/12.0", "transports": ["udp"], "served_from": "origin"}),
            *(self._event("session.counters", counters) for _ in range(self.counters_per_session)),
            self._event("playlog", {"session_id": sid, "url": f"rtsp://proxy/vod/c{self.sessions % URLS}",
                                    "kind": "logplay", "log_type": "streaming", "player_addr": "10.0.0.1:5000",
                                    "user_agent": "WMPlayer/12.0", "raw": "<XML/>", "fields": fields,
                                    "parse_error": None}),
            self._event("session.ended", {**counters, "end_reason": "teardown"}),
        ]

    def batch(self, size: int) -> list[dict]:
        events: list[dict] = []
        while len(events) < size:
            events += self.session_events()
        return events


def node_info() -> dict:
    return {"name": "bench", "version": "0.1.0", "listen": "127.0.0.1:8554",
            "load": {"sessions": 1, "bandwidth_bps": 1000}}


def measure_service(node, source: EventSource, total: int, batch_size: int) -> float:
    from appliance.control.services import report_batch_ingest

    batches = [source.batch(batch_size) for _ in range(max(1, total // batch_size))]
    count = sum(len(b) for b in batches)
    started = time.perf_counter()
    for events in batches:
        for e in events:  # the view passes parsed datetimes
            e["at"] = dt.datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
        report_batch_ingest(node=node, node_info=node_info(), events=events, now=dt.datetime.now(dt.UTC))
    return count / (time.perf_counter() - started)


def measure_http(token: str, source: EventSource, total: int, batch_size: int) -> float:
    from django.test import Client

    client = Client()
    bodies = [json.dumps({"schema_version": 1, "node": node_info(), "events": source.batch(batch_size)})
              for _ in range(max(1, total // batch_size))]
    count = sum(len(json.loads(b)["events"]) for b in bodies)
    started = time.perf_counter()
    for body in bodies:
        resp = client.post("/internal/v1/reports", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
        if resp.status_code != 200:
            raise SystemExit(f"ingest HTTP {resp.status_code}: {resp.content[:300]!r}")
    return count / (time.perf_counter() - started)


def measure_nodes(args, base: str, origin_bases: list[str]) -> tuple[float, float]:
    """N simulated nodes over real HTTP (gunicorn); returns (events/s, ratio to the 304-poll baseline)."""
    import tempfile
    from pathlib import Path

    from appliance.nodes.models import ProxyNode
    from bench.ingest_load import WebServer, poll_request, report_request, run_load, spread

    tokens = [ProxyNode.new_token() for _ in range(args.nodes)]
    nodes = [ProxyNode(name=f"sim-{i:05d}") for i in range(args.nodes)]
    for node, token in zip(nodes, tokens, strict=True):
        node.set_token(token)
    ProxyNode.objects.bulk_create(nodes, batch_size=1000)
    rounds = max(1, args.node_events // (args.nodes * args.node_batch))
    per_node = []
    for token in tokens:
        source = EventSource(origin_bases, args.counters_per_session)
        per_node.append([(report_request(token, json.dumps(
            {"schema_version": 1, "node": node_info(), "events": source.batch(args.node_batch)[:args.node_batch]}
        ).encode()), args.node_batch) for _ in range(rounds)])
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    server = WebServer(database_url=bench_database_url(base), workers=args.web_workers, pool=args.db_pool,
                       log_path=workdir / "gunicorn.log").start()
    try:
        from appliance.control.snapshot import snapshot_build
        from django.utils import timezone

        etags = [snapshot_build(node=n, now=timezone.now())["etag"] for n in nodes]
        polls = [[(poll_request(t, e), 0)] * rounds for t, e in zip(tokens, etags, strict=True)]
        # warm-up: every node's first poll (each node polls for as long as it runs; the baseline is the
        # steady state, not a node's first poll after it started)
        run_load(server.port, spread([p[:1] for p in polls], args.connections), expect=304)
        baseline = run_load(server.port, spread(polls, args.connections), expect=304)
        with RollupFolder(args.fold_interval) as folder:  # beat's playback.fold_rollups, in the same run
            load = run_load(server.port, spread(per_node, args.connections))
    finally:
        server.stop()
    if load.accepted != load.events:
        raise SystemExit(f"exactly-once broken: {load.events} events sent, {load.accepted} accepted")
    ratio = load.requests_per_s / baseline.requests_per_s
    print(f"  nodes    {args.nodes} nodes at {args.node_rate} events/s, batch delay {args.batch_delay} s: "
          f"{rounds} batches of {args.node_batch} each over {args.connections} connections, "
          f"{args.web_workers} gunicorn workers:")
    print(f"           baseline: snapshot polls answered 304   {baseline.requests_per_s:7.0f} requests/s")
    print(f"           POST /internal/v1/reports              {load.requests_per_s:7.0f} requests/s = "
          f"{load.events_per_s:.0f} events/s ({ratio:.2f} x the baseline's requests/s), "
          f"{load.accepted} accepted = every event once")
    print(f"           roll-up fold every {args.fold_interval} s during the load: {folder.folded} play logs"
          f" in {folder.runs} runs ({folder.seconds:.1f} s in the fold); left for the next run: "
          f"{folder.left}")
    return load.events_per_s, ratio


class RollupFolder:
    """Folds pending play logs into the report roll-ups every `interval` seconds in a thread of its own
    (its own DB connection), as beat's playback.fold_rollups does beside the web workers."""

    def __init__(self, interval: float) -> None:
        import threading

        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.folded = self.runs = self.left = 0
        self.seconds = 0.0

    def __enter__(self) -> RollupFolder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        from django.conf import settings
        from django.db import connection

        from appliance.playback.models import RollupPending
        from appliance.playback.rollups import rollups_fold_pending

        try:
            while not self.stop.wait(self.interval):
                started = time.perf_counter()
                self.folded += rollups_fold_pending(limit=settings.APPLIANCE_ROLLUP_FOLD_BATCH)
                self.seconds += time.perf_counter() - started
                self.runs += 1
            self.left = RollupPending.objects.count()
        finally:
            connection.close()


# --- play logs and reports: bench/report_scale.py ----------------------------------------------

def setup_django(base: str) -> None:
    os.environ["DATABASE_URL"] = bench_database_url(base)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
    os.environ.setdefault("APPLIANCE_SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    import django

    django.setup()


def reports_only(runs: int) -> int:
    setup_django(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance"))
    from django.core.management import call_command
    from django.db import connection

    from bench.report_scale import TABLES, time_all

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
    _, slow = time_all(runs)
    return 1 if slow else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000, help="events per ingestion path")
    p.add_argument("--batch", type=int, default=500, help="events per report batch (proxyd's default)")
    p.add_argument("--counters-per-session", type=int, default=10,
                   help="session.counters events per session (10: a 100 s play at proxyd's 10 s interval)")
    p.add_argument("--nodes", type=int, default=1000, help="simulated nodes posting concurrently over HTTP")
    p.add_argument("--node-rate", type=int, default=20, help="report events per second of one node")
    p.add_argument("--batch-delay", type=int, default=5,
                   help="the snapshot's reporting.batch_delay (APPLIANCE_REPORT_BATCH_DELAY): a node's batch "
                        "holds rate x delay events (proxyd alone: 1 s)")
    p.add_argument("--node-events", type=int, default=60_000, help="events over all simulated nodes")
    p.add_argument("--connections", type=int, default=64, help="concurrent HTTP connections of the nodes")
    p.add_argument("--web-workers", type=int, default=min(4, (os.cpu_count() or 1) * 2),
                   help="gunicorn workers (deploy/gunicorn.conf.py's default)")
    p.add_argument("--db-pool", type=int, default=8, help="APPLIANCE_DB_POOL_MAX of the web workers")
    p.add_argument("--fold-interval", type=float, default=5.0,
                   help="seconds between roll-up folds during the nodes' load "
                        "(APPLIANCE_ROLLUP_FOLD_INTERVAL)")
    p.add_argument("--playlogs", type=int, default=10_000_000, help="0: skip the report timings")
    p.add_argument("--runs", type=int, default=3, help="timed runs per report query (median shown)")
    p.add_argument("--keep", action="store_true", help="keep the <DATABASE_URL database>_bench database")
    p.add_argument("--reports-only", action="store_true",
                   help="reuse a kept bench database: apply new migrations, vacuum, time the reports (implies --keep)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up (web server, database)
    args.node_batch = args.node_rate * args.batch_delay
    if args.reports_only:
        return reports_only(args.runs)

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance")
    if not base.startswith("postgres"):
        raise SystemExit("bench.ingest needs a PostgreSQL DATABASE_URL")
    create_database(base)
    setup_django(base)
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0, interactive=False)
        from appliance.nodes.models import ProxyNode
        from appliance.origins.models import Origin

        origins = [Origin.objects.create(name=f"origin-{i}", base_url=f"rtsp://origin{i}.example:554/vod",
                                         route_prefix=f"/o{i}") for i in range(ORIGINS)]
        token = ProxyNode.new_token()
        node = ProxyNode(name="bench")
        node.set_token(token)
        node.save()
        source = EventSource([o.base_url for o in origins], args.counters_per_session)
        print(f"ingestion ({args.events} events per path, batches of {args.batch}, {len(origins)} origins, "
              f"per session: started, {args.counters_per_session} counters, playlog, ended):")
        service_rate = measure_service(node, source, args.events, args.batch)
        print(f"  service  report_batch_ingest   {service_rate:9.0f} events/s")
        http_rate = measure_http(token, source, args.events, args.batch)
        print(f"  http     POST /internal/v1/reports {http_rate:5.0f} events/s")
        nodes_rate, _ = measure_nodes(args, base, [o.base_url for o in origins])
        print(f"  load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other processes included)")
        reports: list = []
        slow: list = []
        if not args.playlogs:
            return summary(service_rate, http_rate, nodes_rate, reports, slow)

        from bench.report_scale import generate_playlogs, time_all

        connection.cursor().execute("TRUNCATE playback_playlog")  # the trigger empties the roll-ups too
        seconds = generate_playlogs(args.playlogs)
        print(f"\n{args.playlogs} play logs generated, roll-ups and indexes built in {seconds:.1f}s "
              f"(load average {os.getloadavg()[0]:.1f})")
        reports, slow = time_all(args.runs)
    finally:
        if not args.keep:
            drop_database(base)
    return summary(service_rate, http_rate, nodes_rate, reports, slow)


def summary(service_rate: float, http_rate: float, nodes_rate: float, reports: list, slow: list) -> int:
    ok = (min(service_rate, http_rate) >= GOAL_EVENTS_PER_S and nodes_rate >= GOAL_NODES_EVENTS_PER_S
          and not slow)
    print(f"\ngoal >= {GOAL_NODES_EVENTS_PER_S} events/s from many nodes over HTTP: {nodes_rate:.0f}; "
          f"goal >= {GOAL_EVENTS_PER_S} events/s: service {service_rate:.0f}, http {http_rate:.0f}; "
          f"goal < {GOAL_REPORT_MS:.0f} ms per report: {len(reports) - len(slow)}/{len(reports)} met"
          f" -> {'MET' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
