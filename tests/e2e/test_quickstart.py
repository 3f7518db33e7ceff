"""./quickstart end to end, as a user runs it (no pip: QUICKSTART_NO_INSTALL=1): SQLite in a temp
dir, APPLIANCE_EMBEDDED=1, Celery on the filesystem broker, gunicorn+uvicorn worker, proxyd with
--control-url. Checks the dashboard login page, /api/v1/ with a DRF token, and proxyd's node in
/api/v1/nodes/ with last_seen set; SIGTERM stops every component."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.peers.proxyd_proc import REPO_ROOT, free_tcp_port

START_DEADLINE_S = 60.0
NODE_DEADLINE_S = 30.0


def http_get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"quickstart exited ({proc.returncode}) while waiting for {what}\n"
                                 f"{log.read_text()[-4000:]}")
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.25)  # polling HTTP endpoints of separate processes
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-4000:]}")


@pytest.fixture
def quickstart(tmp_path):
    web, rtsp = f"127.0.0.1:{free_tcp_port()}", f"127.0.0.1:{free_tcp_port()}"
    metrics = f"127.0.0.1:{free_tcp_port()}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(QUICKSTART_NO_INSTALL="1", QUICKSTART_VAR=str(tmp_path / "var"), QUICKSTART_WEB=web,
               QUICKSTART_RTSP=rtsp, QUICKSTART_METRICS=metrics,
               PYTHONUNBUFFERED="1")
    log = tmp_path / "quickstart.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(REPO_ROOT / "quickstart")], cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc, f"http://{web}", env, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only quickstart's processes
                proc.wait(10)


def test_quickstart_serves_dashboard_api_and_sees_proxyd(quickstart):
    proc, base, env, log = quickstart
    status, page = wait_for(lambda: (r := http_get(base + "/admin/login/"))[0] == 200 and r,
                            START_DEADLINE_S, "the dashboard login page", proc, log)
    assert b"password" in page.lower()
    var = env["QUICKSTART_VAR"]  # the settings quickstart exports to its components
    manage_env = {**env, "APPLIANCE_VAR_DIR": var, "APPLIANCE_EMBEDDED": "1",
                  "APPLIANCE_SECRET_KEY_FILE": f"{var}/secret-key"}
    token = subprocess.run([sys.executable, "manage.py", "api_token_create", "admin"], cwd=REPO_ROOT,
                           env=manage_env, capture_output=True, text=True, check=True,
                           timeout=60).stdout.strip()
    auth = {"Authorization": f"Token {token}", "Accept": "application/json"}
    assert http_get(base + "/api/v1/nodes/")[0] == 401
    status, body = http_get(base + "/api/v1/", auth)
    assert status == 200 and "origins" in json.loads(body)

    def node_seen():
        status, body = http_get(base + "/api/v1/nodes/", auth)
        nodes = json.loads(body)["results"] if status == 200 else []
        return next((n for n in nodes if n["name"] == "local" and n["last_seen"]), None)

    wait_for(node_seen, NODE_DEADLINE_S, "proxyd's node with last_seen", proc, log)
    status, metrics = http_get(f"http://{env['QUICKSTART_METRICS']}/metrics")
    assert status == 200 and b"proxyd_" in metrics  # the operator's scrape target is on by default

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert b"quickstart: stopping" in log.read_bytes()
