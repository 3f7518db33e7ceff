"""/metrics, /healthz and /readyz of the web app."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from appliance.nodes.models import ProxyNode
from appliance.playback.models import StreamSession
from appliance.uplink.models import UplinkEvent, UplinkState

REPO = Path(__file__).resolve().parents[3]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[s.name, tuple(sorted(s.labels.items()))] = s.value
    return found


@pytest.mark.django_db
def test_metrics_show_state_from_the_database_and_count_requests(client):
    now = timezone.now()
    online = ProxyNode.objects.create(name="on", token_hash="1" * 64, last_seen=now,
                                      load_bandwidth_bps=5_000_000)
    ProxyNode.objects.create(name="off", token_hash="2" * 64, last_seen=now - dt.timedelta(hours=1),
                             load_bandwidth_bps=7_000_000)
    StreamSession.objects.create(node=online, session_id="on:1", url="rtsp://p/a", served_from="cache",
                                 started_at=now)
    UplinkEvent.objects.create(url="rtsp://o/a", event_type="remote-log", state=UplinkState.PENDING)
    client.get("/healthz")
    first = samples(client.get("/metrics").content.decode())
    assert first["appliance_nodes", (("status", "online"),)] == 1
    assert first["appliance_nodes", (("status", "offline"),)] == 1
    assert first["appliance_node_bandwidth_bps", ()] == 5_000_000  # not the offline node's last report
    assert first["appliance_sessions_active", (("served_from", "cache"),)] == 1
    assert first["appliance_uplink_events", (("state", "pending"),)] == 1
    assert first["appliance_state_up", ()] == 1
    ok = ("appliance_http_requests_total", (("method", "GET"), ("status", "200")))
    client.get("/healthz")
    assert samples(client.get("/metrics").content.decode())[ok] == first[ok] + 2  # /healthz and a /metrics


@pytest.mark.django_db
def test_ops_endpoints_refuse_addresses_outside_the_allow_list(client, caplog):
    for path in ("/metrics", "/healthz", "/readyz"):
        assert client.get(path, REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
def test_ready_when_database_and_redis_answer(client):
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.content
    assert answer.json()["ready"] and set(answer.json()["checks"]) == {"database", "redis"}


READYZ = """
import django, json
django.setup()
from django.test import Client
r = Client().get("/readyz")
m = Client().get("/metrics")
print(json.dumps({"status": r.status_code, "body": r.json(), "metrics_status": m.status_code,
                  "metrics": m.content.decode()}))
"""


@pytest.mark.parametrize("broken", ["database", "redis"])
def test_not_ready_when_a_dependency_is_down(broken, tmp_path, db):
    from django.db import connection

    from tests.appliance.tasks.harness import database_url_of
    from tests.peers.proxyd_proc import free_tcp_port

    dead = free_tcp_port()  # nothing listens there
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "appliance.settings", "APPLIANCE_VAR_DIR": str(tmp_path),
           "APPLIANCE_READY_TIMEOUT": "1", "DATABASE_URL": database_url_of(connection.settings_dict)}
    if broken == "database":
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{dead}/nothing"
    else:
        env["REDIS_URL"] = f"redis://127.0.0.1:{dead}/0"
    done = subprocess.run([sys.executable, "-c", READYZ], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 503 and not result["body"]["ready"]
    checks = result["body"]["checks"]
    assert not checks[broken]["ok"]
    assert [name for name, c in checks.items() if not c["ok"]] == [broken]
    assert "Traceback" not in done.stderr
    assert result["metrics_status"] == 200
    up = samples(result["metrics"])["appliance_state_up", ()]
    assert up == (0 if broken == "database" else 1)


@pytest.mark.parametrize("name, value", [("APPLIANCE_WORKER_METRICS_LISTEN", "localhost"),
                                         ("APPLIANCE_METRICS_ALLOW_IPS", "10.0.0.0/8,not-an-ip")])
def test_bad_ops_settings_stop_the_start(name, value, tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "appliance.settings", "APPLIANCE_VAR_DIR": str(tmp_path),
           name: value}
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"ImproperlyConfigured: {name}" in done.stderr


@pytest.mark.django_db
def test_metrics_show_the_broker_queue_depth(client, settings):
    import uuid

    import redis

    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    settings.CELERY_TASK_DEFAULT_QUEUE = queue = f"test-depth-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.lpush(queue, b"{}", b"{}", b"{}")
    try:
        found = samples(client.get("/metrics").content.decode())
    finally:
        broker.delete(queue)
    assert found["appliance_celery_queue_depth", ()] == 3
