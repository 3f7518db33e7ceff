"""The quick start's SQLite database: batches add to one row per bucket (the raw upsert writes datetimes
as the ORM does) and the roll-up sets the gauges without PostgreSQL's SQL. Run in a subprocess: the
test database is PostgreSQL."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = r"""
import datetime as dt, json, os, uuid
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.utils import timezone
from appliance.control.services import report_batch_ingest
from appliance.history.models import TrafficBucket
from appliance.history.services import history_rollup
from appliance.nodes.models import ProxyNode

node = ProxyNode.objects.create(name="quick", token_hash="1" * 64)
now = timezone.now()
seq = iter(range(1, 100))
def batch(spool, *events):
    events = [{"id": uuid.uuid4(), "seq": next(seq), "at": now, "kind": kind, "data": data}
              for kind, data in events]
    report_batch_ingest(node=node, node_info={"reporter": {"spool_bytes": spool}}, now=now, events=events)
counters = dict(session_id="a", bytes_in=0, packets_out=1, packets_in=0, packets_lost=0, jitter_ms=0)
batch(100, ("session.started", dict(session_id="a", url="u", origin_url="o", player_addr="10.0.0.1:5",
                                    user_agent="x", transports=[], served_from="cache")),
      ("session.counters", dict(counters, bytes_out=5000)))
batch(50, ("session.counters", dict(counters, bytes_out=7000)))
history_rollup(now=now, lookback_minutes=3)
history_rollup(now=now, lookback_minutes=3)
print(json.dumps(sorted(TrafficBucket.objects.values_list(
    "grain", "bytes_out", "cache_bytes_out", "requests", "sessions", "players", "spool_bytes"))))
"""


def test_history_on_the_quick_start_sqlite_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="appliance.settings",
        APPLIANCE_VAR_DIR=str(tmp_path / "var"),
        APPLIANCE_SECRET_KEY="sqlite-history-test-" + "k" * 40,
        PYTHONDONTWRITEBYTECODE="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert rows == [[grain, 7000, 7000, 1, 1, 1, 100] for grain in ("day", "hour", "minute")]
