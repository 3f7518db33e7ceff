"""End-to-end fixtures: a live Django (pytest-django live_server), a REST client with a DRF token,
a ProxyNode whose token proxyd reads from a file, and proxyd started with --control-url."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest

pytest.importorskip("django")

POLL_S = 0.2  # proxyd's snapshot poll interval in these tests (seconds)


@dataclass
class ApiClient:
    """The public REST API over real HTTP with `Authorization: Token <key>`."""

    base: str
    token: str

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | list | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def get(self, path: str):
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: dict | None = None):
        return self.call("POST", path, body)


def wait_until(fetch: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = ""):
    """Polls an external system (HTTP API) until `fetch()` is truthy; fails with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if last:
            return last
        time.sleep(interval)  # polling a remote API: there is no event to wait on
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@pytest.fixture
def api(live_server, transactional_db) -> ApiClient:
    """Token of a superuser made with `manage.py api_token_create`, as an operator's script would."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    get_user_model().objects.create_superuser("e2e-admin", "admin@example.com", "e2e-password-1")
    out = io.StringIO()
    call_command("api_token_create", "e2e-admin", stdout=out)
    return ApiClient(live_server.url, out.getvalue().strip())


@pytest.fixture
def control_node(transactional_db, tmp_path):
    from tests.appliance.factories import ProxyNodeFactory

    node = ProxyNodeFactory(name="e2e-node")
    token_file = tmp_path / "node-token"
    token_file.write_text(node.token + "\n")
    token_file.chmod(0o600)
    return node, token_file


@pytest.fixture
def controlled_proxyd(proxyd_process, control_node, tmp_path):
    """proxyd_process(...) reporting to the control plane at `url` with the node's token."""
    node, token_file = control_node

    def start(url: str, *, routes=None, extra_args=(), **kwargs):
        args = ["--control-url", url, "--control-token-file", str(token_file), "--node-name", node.name,
                "--state-dir", str(tmp_path / "proxyd-state"), "--control-poll-interval", str(POLL_S),
                "--counters-interval", "1", *extra_args]
        return proxyd_process(routes=routes or {}, extra_args=args, **kwargs)

    return start
