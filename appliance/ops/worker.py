"""Celery worker metrics: task outcomes and run time counted in the pool processes (task_postrun),
served by a small HTTP listener in the worker's main process at APPLIANCE_WORKER_METRICS_LISTEN
(off when empty). The pool children share counters through prometheus-client's multiprocess mode:
its directory is chosen when appliance.celery is imported by `celery ... worker` (prepare_worker),
before Django's start-up checks import the URLconf and with it prometheus_client.
The appliance's state gauges are the web app's /metrics; the worker serves only its own counters."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from celery import signals
from django.conf import settings

from appliance.ops import multiproc

log = logging.getLogger(__name__)

_started: dict[str, float] = {}  # task id -> monotonic start, in the pool process running it
_metrics_dir = None


def prepare_worker(argv: list[str], environ=os.environ) -> None:
    """In a `celery worker` process with APPLIANCE_WORKER_METRICS_LISTEN set: a fresh multiprocess
    directory under APPLIANCE_VAR_DIR (beat and the web app never get here)."""
    global _metrics_dir
    if "worker" in argv[1:] and environ.get("APPLIANCE_WORKER_METRICS_LISTEN"):
        var_dir = Path(environ.get("APPLIANCE_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
        _metrics_dir = multiproc.use_directory(var_dir / "metrics" / f"worker-{os.getpid()}")


@signals.worker_ready.connect
def _listen(**_kwargs) -> None:
    listen = settings.APPLIANCE_WORKER_METRICS_LISTEN
    if not listen:
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    host, _, port = listen.rpartition(":")
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    log.info("worker metrics on http://%s/metrics", listen)


@signals.worker_shutdown.connect
def _forget_directory(**_kwargs) -> None:
    if _metrics_dir is not None:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


@signals.task_prerun.connect
def _task_started(task_id=None, **_kwargs) -> None:
    _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **_kwargs) -> None:
    from appliance.ops.metrics import TASK_SECONDS, TASKS

    started = _started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    TASKS.labels(name, (state or "unknown").lower()).inc()
    if started is not None:
        TASK_SECONDS.labels(name).observe(time.monotonic() - started)
