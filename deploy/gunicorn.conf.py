"""Gunicorn settings for the appliance web process (ASGI through the uvicorn-worker package).

Read by `gunicorn -c deploy/gunicorn.conf.py appliance.asgi:application`. Only the web server's own knobs
live here; everything about the application comes from appliance.env through Django settings.
"""

import multiprocessing
import os
import shutil
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:  # fail loudly at start-up, not with a confusing worker crash
        raise SystemExit(f"gunicorn.conf.py: {name} must be an integer, got {raw!r}") from exc


# Loopback only: nginx terminates TLS and proxies to us.
bind = os.environ.get("APPLIANCE_WEB_BIND", "127.0.0.1:8000")
# uvicorn_worker.UvicornWorker, not the deprecated uvicorn.workers module: Channels needs ASGI.
worker_class = "uvicorn_worker.UvicornWorker"
workers = _env_int("APPLIANCE_WEB_WORKERS", min(4, multiprocessing.cpu_count() * 2))
timeout = _env_int("APPLIANCE_WEB_TIMEOUT", 60)
graceful_timeout = _env_int("APPLIANCE_WEB_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# Recycle workers now and then so slow leaks cannot accumulate; jitter keeps them from restarting together.
max_requests = _env_int("APPLIANCE_WEB_MAX_REQUESTS", 2000)
max_requests_jitter = _env_int("APPLIANCE_WEB_MAX_REQUESTS_JITTER", 200)
forwarded_allow_ips = os.environ.get("APPLIANCE_WEB_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("APPLIANCE_WEB_LOG_LEVEL", "info")


def on_starting(server):
    """/metrics sums every worker's counters: prometheus-client multiprocess files in one fresh directory
    per master (appliance/ops/multiproc.py), set before any worker imports prometheus_client."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    var_dir = Path(os.environ.get("APPLIANCE_VAR_DIR") or Path(server.cfg.chdir) / "var")
    metrics_dir = var_dir / "metrics" / f"web-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
