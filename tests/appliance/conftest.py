"""Shared fixtures for control-plane tests: API clients per role, proxyd node clients, report events."""
from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pytest
from rest_framework.test import APIClient

from tests.appliance.factories import BASE_TIME, ProxyNodeFactory, UserFactory


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


def _client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def viewer(db):
    return UserFactory(roles=["viewer"])


@pytest.fixture
def operator(db):
    return UserFactory(roles=["operator"])


@pytest.fixture
def viewer_client(viewer) -> APIClient:
    return _client_for(viewer)


@pytest.fixture
def operator_client(operator) -> APIClient:
    return _client_for(operator)


@pytest.fixture
def norole_client(db) -> APIClient:
    return _client_for(UserFactory())


@pytest.fixture
def superuser_client(db) -> APIClient:
    return _client_for(UserFactory(is_superuser=True, is_staff=True))


@pytest.fixture
def node(db):
    return ProxyNodeFactory(name="node-1")


@pytest.fixture
def node_client(node) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {node.token}")
    return client


class EventMaker:
    """Builds report events with fresh ids and increasing seq, as proxyd's Reporter does."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)

    def __call__(self, kind: str, /, *, at: dt.datetime | None = None, seq: int | None = None, **data) -> dict:
        seq = next(self._seq) if seq is None else seq
        at = at or BASE_TIME + dt.timedelta(seconds=seq)
        return {"id": str(uuid.uuid4()), "seq": seq, "at": at.isoformat().replace("+00:00", "Z"),
                "kind": kind, "data": data}


@pytest.fixture
def make_event() -> EventMaker:
    return EventMaker()


@pytest.fixture
def post_batch(node_client):
    def post(events: list[dict], *, client=None, **node_info):
        body = {"schema_version": 1,
                "node": {"name": "node-1", "version": "0.1.0", "listen": "127.0.0.1:8554",
                         "load": {"sessions": 1, "bandwidth_bps": 1000}, **node_info},
                "events": events}
        return (client or node_client).post("/internal/v1/reports", body, format="json")
    return post


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def assert_list_queries_constant(db):
    """Asserts that listing N+20 rows costs the same number of queries as N rows (no N+1)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def check(client, url: str, make_rows, params: dict | None = None) -> None:
        make_rows(3)
        client.get(url, params)  # warm per-user caches (roles) so both measurements compare alike
        with CaptureQueriesContext(connection) as few:
            assert client.get(url, params).status_code == 200
        make_rows(20)
        with CaptureQueriesContext(connection) as many:
            assert client.get(url, params).status_code == 200
        assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    return check
