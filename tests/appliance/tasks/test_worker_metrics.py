"""The Celery worker's metrics listener counts task outcomes from its pool processes."""

from __future__ import annotations

import time
import urllib.request

from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

POLL_S = 0.2


def task_counts(port: int) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    counts = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "appliance_celery_tasks_total":
                counts[s.labels["task"], s.labels["outcome"]] = s.value
    return counts


def wait_for_counts(port: int, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        counts = task_counts(port)
        if predicate(counts):
            return counts
        assert time.monotonic() < deadline, f"task counts never matched: {counts}"
        time.sleep(POLL_S)  # another process's counters: polled


def test_worker_counts_successes_and_failures_of_its_pool(celery_worker_process):
    port = int(celery_worker_process.env["APPLIANCE_WORKER_METRICS_LISTEN"].rpartition(":")[2])
    queue = celery_worker_process.env["APPLIANCE_CELERY_QUEUE"]
    before = task_counts(port)
    celery_app = Celery(broker=celery_worker_process.env["REDIS_URL"])  # the worker's broker, not ours
    ok = ("uplink.prune_sent", "success")
    failed = ("content.revalidate_content", "failure")
    celery_app.send_task("uplink.prune_sent", queue=queue)
    celery_app.send_task("content.revalidate_content", args=["not-an-id"], queue=queue)
    celery_app.send_task("uplink.prune_sent", queue=queue)
    counts = wait_for_counts(port, lambda c: c.get(ok, 0) >= before.get(ok, 0) + 2
                             and c.get(failed, 0) == before.get(failed, 0) + 1)
    assert counts[failed] == before.get(failed, 0) + 1
