"""Real processes for task tests: a Celery worker (with embedded beat) and a GStreamer RTSP origin."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
GST_ORIGIN = REPO / "tests" / "peers" / "gst_origin.py"


class OutputWatcher:
    """Collects a child's output lines in a thread so tests can wait for a line without sleeping."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for raw in iter(stream.readline, ""):
            self._queue.put(raw.rstrip("\n"))
        self._queue.put(None)

    def drain(self) -> list[str]:
        """Move every line received so far into `lines` and return them all."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.lines
            if line is not None:
                self.lines.append(line)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching output line; got:\n" + "\n".join(self.lines[-40:]))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("process exited; output:\n" + "\n".join(self.lines[-40:]))
            self.lines.append(line)
            if predicate(line):
                return line


def redis_url_with_db(url: str, db: int) -> str:
    base = url.split("?", 1)[0].rstrip("/")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


def database_url_of(settings_dict: dict) -> str:
    """DATABASE_URL for a child process using the same database as Django's connection settings."""
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class CeleryWorker:
    """`celery -A appliance worker -B` against the test database, a Redis broker and a private queue."""

    def __init__(self, *, env: dict[str, str], workdir: Path):
        self.env = env
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.output: OutputWatcher | None = None

    def start(self, timeout: float = 60.0) -> CeleryWorker:
        cmd = [str(VENV_BIN / "celery"), "-A", "appliance", "worker", "--beat",
               "--schedule", str(self.workdir / "beat-schedule"), "--queues", self.env["APPLIANCE_CELERY_QUEUE"],
               "--concurrency", "2", "--loglevel", "INFO", "--without-mingle", "--without-gossip",
               "--hostname", f"test-{os.getpid()}@%h"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output = OutputWatcher(self.proc.stdout)
        self.output.wait_for(lambda line: " ready." in line, timeout)
        return self

    def run_task(self, name: str) -> None:
        """Queue the task `name` for this worker now: a test not about beat need not wait for its tick."""
        from celery import Celery

        app = Celery(broker=self.env["REDIS_URL"])
        try:
            app.send_task(name, queue=self.env["APPLIANCE_CELERY_QUEUE"])
        finally:
            app.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=30)


class GstOrigin:
    """tests/peers/gst_origin.py run by Debian's python3 (it needs `gi`); restartable on the same port."""

    def __init__(self, vod: dict[str, Path], headers: list[str] = ()):
        self.vod = vod
        self.headers = list(headers)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.events: OutputWatcher | None = None

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def start(self, timeout: float = 30.0) -> GstOrigin:
        cmd = ["/usr/bin/python3", str(GST_ORIGIN), "--port", str(self.port)]
        for mount, path in self.vod.items():
            cmd += ["--vod", f"{mount}={path}"]
        for header in self.headers:
            cmd += ["--header", header]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        self.events = OutputWatcher(self.proc.stdout)
        ready = json.loads(self.events.wait_for(lambda line: '"ready"' in line, timeout))
        self.port = ready["port"]
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


def wait_until(condition: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = ""):
    """Poll `condition` (e.g. a DB query) until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        threading.Event().wait(interval)  # poll interval of a condition check, not synchronisation by time
