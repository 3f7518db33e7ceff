"""Cost of the traffic history at ingestion: report_batch_ingest with and without the history upsert,
interleaved in one run (the same database, the same event shapes), printed as a ratio.

    .venv/bin/python -m bench.history_ingest                 # 5 rounds of 4000 events per side
    .venv/bin/python -m bench.history_ingest --rounds 9 --events 10000

Uses its own PostgreSQL database (appliance_bench_history next to DATABASE_URL's), dropped at the end.
The baseline disables appliance.history.services.TrafficDeltas (add and flush do nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from unittest import mock

from bench import ingest

ingest.BENCH_DB = "appliance_bench_history"  # not the shared bench.ingest database


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.history_ingest", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--events", type=int, default=4000, help="events per side per round")
    p.add_argument("--batch", type=int, default=500)
    args = p.parse_args(argv)
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance")
    ingest.create_database(base)
    ingest.setup_django(base)
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0, interactive=False)
        from appliance.history.services import TrafficDeltas
        from appliance.nodes.models import ProxyNode
        from appliance.origins.models import Origin

        origins = [
            Origin.objects.create(
                name=f"origin-{i}", base_url=f"rtsp://origin{i}.example:554/vod", route_prefix=f"/o{i}"
            )
            for i in range(ingest.ORIGINS)
        ]
        node = ProxyNode(name="bench")
        node.set_token(ProxyNode.new_token())
        node.save()
        source = ingest.EventSource([o.base_url for o in origins], counters_per_session=10)
        ingest.measure_service(node, source, args.batch * 2, args.batch)  # warm-up
        with_history, without = [], []
        for _ in range(args.rounds):
            with_history.append(ingest.measure_service(node, source, args.events, args.batch))
            with (
                mock.patch.object(TrafficDeltas, "add", lambda *a, **k: None),
                mock.patch.object(TrafficDeltas, "flush", lambda *a, **k: None),
            ):
                without.append(ingest.measure_service(node, source, args.events, args.batch))
        on, off = statistics.median(with_history), statistics.median(without)
        print(f"report_batch_ingest, batches of {args.batch}, median of {args.rounds} interleaved rounds:")
        print(f"  without history {off:8.0f} events/s   (rounds: {', '.join(f'{r:.0f}' for r in without)})")
        print(
            f"  with history    {on:8.0f} events/s   (rounds: {', '.join(f'{r:.0f}' for r in with_history)})"
        )
        print(f"  ratio with/without: {on / off:.3f}")
    finally:
        ingest.drop_database(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
