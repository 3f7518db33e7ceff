"""deploy/gunicorn.conf.py really serves the ASGI app through uvicorn_worker.UvicornWorker."""

import urllib.error
import urllib.request

import pytest


def fetch(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.django_db(transaction=True)
def test_gunicorn_with_the_uvicorn_worker_serves_the_app(web_server):
    # web_server waited for uvicorn's "Application startup complete" (ASGI lifespan in the worker).
    status, body = fetch(web_server.url + "/api/v1/schema/")
    assert status == 200 and b"openapi" in body
    assert fetch(web_server.url + "/api/v1/origins/")[0] == 401
    assert fetch(web_server.url + "/internal/v1/snapshot", {"Authorization": "Bearer nope"})[0] == 401
    status, body = fetch(web_server.url + "/login/")
    assert status == 200 and b'name="username"' in body
    assert fetch(web_server.url + "/static/ui/dashboard.js")[0] == 200


@pytest.fixture
def strict_web_server(transactional_db, tmp_path):
    """The production web stack with a low invalid-token limit and its own cache prefix in Redis."""
    import os
    import uuid

    from django.db import connection

    from tests.appliance.ui.web_server import WebServer

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    server = WebServer(database=connection.settings_dict, workdir=tmp_path, redis_url=os.environ["REDIS_URL"])
    server.env.update(APPLIANCE_TOKEN_MAX_FAILURES="2", APPLIANCE_CACHE_PREFIX=f"test-{uuid.uuid4().hex}")
    yield server.start()
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_behind_nginx_failures_count_per_real_client_address(strict_web_server):
    # nginx (a trusted loopback peer) passes X-Forwarded-For; the uvicorn worker makes it REMOTE_ADDR,
    # so one client's bad tokens do not lock out another client behind the same proxy.
    def bad_token_from(address: str) -> int:
        return fetch(strict_web_server.url + "/api/v1/origins/",
                     {"Authorization": "Token not-a-token", "X-Forwarded-For": address})[0]

    assert [bad_token_from("203.0.113.1") for _ in range(3)] == [401, 401, 429]
    assert bad_token_from("203.0.113.2") == 401
