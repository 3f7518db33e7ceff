"""Run proxyd (`python -m proxyd`) as a subprocess against its CLI contract.

    python -m proxyd --listen HOST:PORT --route /PREFIX=rtsp://ORIGIN[/BASE] [--route ...]
                     [--cache-dir DIR] [--allow-origin HOST:PORT ...]

Used by the pytest `proxyd_process` fixture and by the benchmarks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0  # a 2-core machine shared by many test runs took over 15 s to start proxyd
STOP_TIMEOUT_S = 10.0
LOG_TAIL_BYTES = 4000
CONNECT_RETRY_S = 0.05
READY_LINE = b"proxyd ready rtsp://"  # printed once every listener is up (proxyd.app.server.serve)


class ProxydError(RuntimeError):
    pass


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"


class ProxydProcess:
    def __init__(self, *, routes: Mapping[str, str], log_path: Path, host: str = "127.0.0.1",
                 port: int | None = None, cache_dir: Path | None = None,
                 allow_origins: Sequence[str] = (), extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, python: str = sys.executable,
                 repo: Path = REPO_ROOT):
        self.host = host
        self.port = port if port is not None else free_tcp_port(host)
        self.routes = dict(routes)
        self.log_path = log_path
        self.cache_dir = cache_dir
        self.allow_origins = list(allow_origins)
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.python = python
        self.repo = repo  # the checkout whose proxyd runs (a benchmark may run an older one beside this)
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.killed = False

    def argv(self) -> list[str]:
        argv = [self.python, "-m", "proxyd", "--listen", self.authority]
        for prefix, origin in self.routes.items():
            argv += ["--route", f"/{prefix.strip('/')}={origin}"]
        if self.cache_dir is not None:
            argv += ["--cache-dir", os.fspath(self.cache_dir)]
        for origin in self.allow_origins:
            argv += ["--allow-origin", origin]
        return argv + self.extra_args

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ProxydError("proxyd not started")
        return self.proc.pid

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _printed_ready(self, log_start: int) -> bool:
        with open(self.log_path, "rb") as log:
            log.seek(log_start)
            return READY_LINE in log.read()

    def url(self, path: str = "") -> str:
        return f"rtsp://{self.authority}/{path.lstrip('/')}"

    def start(self, timeout: float = READY_TIMEOUT_S) -> ProxydProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            log_start = log.tell()  # a restarted proxyd appends to the same log
            self.proc = subprocess.Popen(self.argv(), cwd=self.repo, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(timeout, log_start)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float, log_start: int) -> None:
        """Until proxyd printed its ready line and its RTSP port accepts. The RTSP listener starts
        before the metrics listener, so a connectable RTSP port alone does not mean /metrics is up."""
        deadline = time.monotonic() + timeout
        while True:
            if self._printed_ready(log_start):
                try:
                    with socket.create_connection((self.host, self.port), timeout=1.0):
                        return
                except OSError:
                    pass
            # Waiting on the child doubles as the retry delay and notices an early exit.
            try:
                rc = self.proc.wait(timeout=CONNECT_RETRY_S)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is not None:
                raise ProxydError(f"proxyd exited with {rc} before listening on {self.host}:{self.port}; "
                                  f"command: {' '.join(self.argv())}\n--- log ---\n{log_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise ProxydError(f"proxyd not ready (ready line, {self.host}:{self.port} accepting) after "
                                  f"{timeout}s\n--- log ---\n{log_tail(self.log_path)}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` (sets .killed). Returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                proc.kill()
                proc.wait(timeout=timeout)
        self.returncode = proc.returncode
        return self.returncode

    def __enter__(self) -> ProxydProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
