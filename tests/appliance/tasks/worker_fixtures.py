"""The real Celery worker (Redis broker, PostgreSQL test database) for every test that needs one.

Registered once, as a plugin of the root conftest: a module that imported the fixture would get a
session worker of its own, and two workers on one test database both deliver its events (the
worker-kill fault test then killed the one that was not sending)."""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings

from tests.appliance.tasks.harness import CeleryWorker, database_url_of, redis_url_with_db
from tests.peers.proxyd_proc import free_tcp_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# A Redis database of its own for the worker tests; the queue name is unique per run as well.
CELERY_TEST_REDIS_DB = int(os.environ.get("APPLIANCE_TEST_CELERY_REDIS_DB", "11"))
PROXY_GUID = "5C2F6A44-0B1E-4C55-9D0B-6E2C4A1D7F10"

# Short intervals so beat drives the tasks within a test's patience; backoff of about a second.
WORKER_SETTINGS = {
    "APPLIANCE_UPLINK_INTERVAL": "2",
    # The tests queue content.revalidate_due themselves (run_task); beat's tick is only the retry.
    "APPLIANCE_REVALIDATE_INTERVAL": "5",
    "APPLIANCE_REVALIDATE_RETRY_AFTER": "1",
    "APPLIANCE_HOUSEKEEPING_INTERVAL": "3600",
    "APPLIANCE_UPLINK_BACKOFF_BASE": "1",
    "APPLIANCE_UPLINK_BACKOFF_CAP": "1",
    "APPLIANCE_UPLINK_LEASE": "30",
    "APPLIANCE_ORIGIN_TIMEOUT": "3",
    "APPLIANCE_PROXY_GUID": PROXY_GUID,
    "APPLIANCE_HISTORY_ROLLUP_INTERVAL": "10",
    "APPLIANCE_ROLLUP_FOLD_INTERVAL": "2",
    "APPLIANCE_ROLLUP_FOLD_BATCH": "100",  # a few transactions per run in test_rollup_worker.py
    "APPLIANCE_ORIGIN_PROBE_INTERVAL": "0",  # no OPTIONS at the other tests' scripted responders
    # The worker outlives these tests: its lost-node check would end other tests' sessions on nodes that
    # never reported (tests/appliance/nodes and tests/e2e/test_multinode_e2e.py exercise it).
    "APPLIANCE_NODE_CHECK_INTERVAL": "3600",
}


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """One worker (+ embedded beat) for the session, pointed at pytest-django's PostgreSQL test database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the Celery worker tests need PostgreSQL (set DATABASE_URL=postgres://...)")
    redis = pytest.importorskip("redis")
    broker = redis_url_with_db(REDIS_URL, CELERY_TEST_REDIS_DB)
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {broker}: {exc}")
    workdir = tmp_path_factory.mktemp("celery")
    queue_name = f"test-tasks-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        **WORKER_SETTINGS,
        "DJANGO_SETTINGS_MODULE": "appliance.settings",
        "DATABASE_URL": database_url_of(connection.settings_dict),
        "APPLIANCE_DB_CONN_MAX_AGE": "0",  # no idle connections left to block the flush between tests
        "REDIS_URL": broker,
        "APPLIANCE_CELERY_QUEUE": queue_name,
        "APPLIANCE_VAR_DIR": str(workdir / "var"),
        # Same key as the test process, which wrote the encrypted origin passwords.
        "APPLIANCE_ORIGIN_CREDENTIALS_KEYS": ",".join(settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS),
        "APPLIANCE_WORKER_METRICS_LISTEN": f"127.0.0.1:{free_tcp_port()}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    worker = CeleryWorker(env=env, workdir=workdir).start()
    yield worker
    worker.stop()
    client = redis.Redis.from_url(broker)
    client.delete(queue_name, f"_kombu.binding.{queue_name}")
