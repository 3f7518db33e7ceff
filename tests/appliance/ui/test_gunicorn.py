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
