"""Per-request CPU of the nodes' two calls in one process, sequential, no contention: where a 304 snapshot
poll and a 100-event report POST spend their time under the ASGI handler and the WSGI handler (every
middleware, or the internal tier's: appliance/settings_internal.py), and the live update's two ways.

    .venv/bin/python -m bench.internal_split [--polls 300] [--posts 120] [--rounds 2]

Creates `<DATABASE_URL's database>_split_bench` (beside bench.ingest's) and drops it.
Process CPU time (time.process_time: every thread of this process; PostgreSQL's own time not included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse


def cpu_ms_per_call(call, payloads: list) -> float:
    started = time.process_time()
    for payload in payloads:
        call(payload)
    return (time.process_time() - started) * 1000 / len(payloads)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.internal_split", description=__doc__.split("\n\n")[0])
    p.add_argument("--polls", type=int, default=300, help="timed snapshot polls per variant and round")
    p.add_argument("--posts", type=int, default=120, help="timed report POSTs per variant and round")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)

    from bench.ingest import create_database, drop_database, setup_django

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/appliance")
    parts = urllib.parse.urlsplit(url)
    base = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_split"))
    create_database(base)
    setup_django(base)
    try:
        return measure(args)
    finally:
        drop_database(base)


def measure(args) -> int:
    from django.core.management import call_command
    from django.test import AsyncClient, Client, override_settings
    from django.utils import timezone

    from appliance.control.snapshot import snapshot_build
    from appliance.nodes.models import ProxyNode
    from appliance.origins.models import Origin
    from appliance.playback.live import send_on_background_loop
    from appliance.settings_internal import MIDDLEWARE as INTERNAL_MIDDLEWARE
    from bench.ingest import ORIGINS, EventSource, node_info

    call_command("migrate", verbosity=0, interactive=False)
    for i in range(ORIGINS):
        Origin.objects.create(name=f"origin-{i}", base_url=f"rtsp://origin{i}.example:554/vod",
                              route_prefix=f"/o{i}")
    token = ProxyNode.new_token()
    node = ProxyNode(name="bench")
    node.set_token(token)
    node.save()
    etag = snapshot_build(node=node, now=timezone.now())["etag"]
    auth = {"Authorization": f"Bearer {token}"}
    poll_headers = {**auth, "If-None-Match": f'"{etag}"'}
    source = EventSource([o.base_url for o in Origin.objects.all()], 10)

    def bodies() -> list[str]:
        return [json.dumps({"schema_version": 1, "node": node_info(), "events": source.batch(100)[:100]})
                for _ in range(args.posts)]

    def wsgi_poll(client):
        return lambda _: check(client.get("/internal/v1/snapshot", headers=poll_headers), 304)

    def wsgi_post(client):
        return lambda body: check(client.post("/internal/v1/reports", body, content_type="application/json",
                                              headers=auth), 200)

    results: dict[str, list[float]] = {}

    def record(name: str, call, payloads: list) -> None:
        for payload in payloads[:10]:  # warm-up
            call(payload)
        results.setdefault(name, []).append(cpu_ms_per_call(call, payloads))

    polls = [None] * args.polls
    for _ in range(args.rounds):
        record("poll: snapshot_build alone", lambda _: snapshot_build(node=node, now=timezone.now()), polls)
        record("poll: WSGI, every middleware", wsgi_poll(Client()), polls)
        with override_settings(MIDDLEWARE=INTERNAL_MIDDLEWARE):
            record("poll: WSGI, internal tier's middleware", wsgi_poll(Client()), polls)
        send_on_background_loop(False)
        record("POST: WSGI, every middleware, async_to_sync", wsgi_post(Client()), bodies())
        send_on_background_loop()
        record("POST: WSGI, every middleware, lasting loop", wsgi_post(Client()), bodies())
        with override_settings(MIDDLEWARE=INTERNAL_MIDDLEWARE):
            record("POST: WSGI, internal tier's middleware, lasting loop", wsgi_post(Client()), bodies())
        send_on_background_loop(False)  # under ASGI async_to_sync goes back to the server's loop
        loop = asyncio.new_event_loop()
        client = AsyncClient()

        async def apoll(_):
            check(await client.get("/internal/v1/snapshot", headers=poll_headers), 304)

        async def apost(body):
            check(await client.post("/internal/v1/reports", body, content_type="application/json",
                                    headers=auth), 200)

        record("poll: ASGI, every middleware", lambda x: loop.run_until_complete(apoll(x)), polls)
        record("POST: ASGI, every middleware", lambda x: loop.run_until_complete(apost(x)), bodies())
        loop.close()
    for name, values in sorted(results.items()):
        print(f"  {name:55s} " + "  ".join(f"{v:6.2f}" for v in values) + " ms CPU per request")
    return 0


def check(response, expected: int) -> None:
    if response.status_code != expected:
        raise SystemExit(f"HTTP {response.status_code}, expected {expected}: {response.content[:300]!r}")


if __name__ == "__main__":
    sys.exit(main())
