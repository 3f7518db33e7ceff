"""Gunicorn settings for the internal API tier: the nodes' /internal/v1/ over WSGI with gthread workers.

Read by `gunicorn -c deploy/gunicorn-internal.conf.py appliance.wsgi_internal:application` (opt-in:
appliance-internal.service, nginx's commented /internal/ block) beside the ASGI web process
(deploy/gunicorn.conf.py), whose timeouts, worker recycling, forwarded-IPs, logging and metrics set-up
this tier shares. Its own knobs:
APPLIANCE_INTERNAL_BIND, APPLIANCE_INTERNAL_WORKERS (processes) and APPLIANCE_INTERNAL_THREADS (threads
per process, each with its own DB connection or a slot of APPLIANCE_DB_POOL_MAX).
"""

import multiprocessing
import os
import runpy
from pathlib import Path

web = runpy.run_path(str(Path(__file__).with_name("gunicorn.conf.py")))
env_int = web["env_int"]
timeout, graceful_timeout, keepalive = web["timeout"], web["graceful_timeout"], web["keepalive"]
max_requests, max_requests_jitter = web["max_requests"], web["max_requests_jitter"]
forwarded_allow_ips, accesslog, errorlog, loglevel = (web["forwarded_allow_ips"], web["accesslog"],
                                                      web["errorlog"], web["loglevel"])
on_starting, child_exit = web["on_starting"], web["child_exit"]

bind = os.environ.get("APPLIANCE_INTERNAL_BIND", "127.0.0.1:8001")
worker_class = "gthread"
workers = env_int("APPLIANCE_INTERNAL_WORKERS", min(4, multiprocessing.cpu_count() * 2))
threads = env_int("APPLIANCE_INTERNAL_THREADS", 4)
