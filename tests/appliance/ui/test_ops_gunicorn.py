"""/metrics and /readyz of the production web stack (gunicorn + uvicorn workers, multiprocess counters)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.appliance.ops.test_web_ops import samples

pytestmark = pytest.mark.django_db(transaction=True)


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode()


def test_gunicorn_serves_metrics_summed_over_workers_and_readiness(web_server):
    status, text = fetch(web_server.url + "/metrics")
    assert status == 200
    first = samples(text)
    assert first["appliance_state_up", ()] == 1
    for _ in range(3):
        fetch(web_server.url + "/healthz")
    ok = ("appliance_http_requests_total", (("method", "GET"), ("status", "200")))
    assert samples(fetch(web_server.url + "/metrics")[1])[ok] == first.get(ok, 0) + 4
    status, body = fetch(web_server.url + "/readyz")
    assert status == 200 and json.loads(body)["ready"]
