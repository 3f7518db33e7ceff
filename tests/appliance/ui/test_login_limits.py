"""Failed password logins (dashboard form, /admin/login/) are limited per client address and per username."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from appliance.core import auth_limits

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


@pytest.fixture
def limits(settings):
    settings.APPLIANCE_LOGIN_MAX_FAILURES = 3
    settings.APPLIANCE_LOGIN_MAX_FAILURES_PER_USER = 5
    settings.APPLIANCE_LOGIN_FAILURE_WINDOW = 600
    return settings


def login(username: str, password: str, address: str = "192.0.2.1", url: str = LOGIN):
    client = Client(REMOTE_ADDR=address)
    return client, client.post(url, {"username": username, "password": password})


def logged_in(client: Client) -> bool:
    return django_settings.SESSION_COOKIE_NAME in client.cookies and "_auth_user_id" in client.session


def test_dashboard_login_answers_429_after_too_many_failures_even_to_the_right_password(limits, viewer,
                                                                                       caplog):
    with caplog.at_level(logging.WARNING, logger="appliance.core.auth_backends"):
        for _ in range(3):
            _, response = login("vera", "wrong")
            assert response.status_code == 200 and b"correct username and password" in response.content
        client, refused = login("vera", "pw-vera")
    assert refused.status_code == 429 and not logged_in(client)
    assert 0 < int(refused["Retry-After"]) <= 600
    assert b"Too many failed logins" in refused.content and b'name="password"' in refused.content
    ours = [r.getMessage() for r in caplog.records if r.name == "appliance.core.auth_backends"]
    assert len(ours) == 1 and "192.0.2.1" in ours[0]
    client, response = login("vera", "pw-vera", address="192.0.2.2")  # another address still gets in
    assert response.status_code == 302 and logged_in(client)


def test_failures_per_username_are_counted_across_addresses(limits, viewer, operator):
    for n in range(5):
        assert login("vera", "wrong", address=f"198.51.100.{n}")[1].status_code == 200
    assert login("vera", "pw-vera", address="198.51.100.99")[1].status_code == 429
    assert login("otto", "pw-otto", address="198.51.100.99")[1].status_code == 302


def test_a_successful_login_clears_its_username_count(limits, viewer):
    limits.APPLIANCE_LOGIN_MAX_FAILURES = 100
    limits.APPLIANCE_LOGIN_MAX_FAILURES_PER_USER = 3
    for _ in range(2):
        login("vera", "wrong")
    assert login("vera", "pw-vera")[1].status_code == 302
    for _ in range(2):
        login("vera", "wrong")
    assert login("vera", "pw-vera")[1].status_code == 302


def test_admin_login_shares_the_limit(limits, viewer):
    admin_login = reverse("admin:login")
    for _ in range(2):
        login("vera", "wrong", url=admin_login)
    login("vera", "wrong")  # the dashboard form counts toward the same limit
    client, refused = login("vera", "pw-vera", url=admin_login)
    assert refused.status_code == 429 and refused["Retry-After"] and not logged_in(client)


def test_the_limit_ends_with_its_window(limits, viewer, monkeypatch):
    now = [1_000_000_000.0]
    monkeypatch.setattr(auth_limits, "wall_clock", lambda: now[0])
    for _ in range(3):
        login("vera", "wrong")
    assert login("vera", "pw-vera")[1].status_code == 429
    now[0] += 600
    assert login("vera", "pw-vera")[1].status_code == 302


def test_a_backend_call_without_the_view_is_refused_too(limits, viewer):
    # Any other door to authenticate() (e.g. a future form) hits the same limit in the backend.
    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.50")
    for _ in range(3):
        assert authenticate(request, username="vera", password="wrong") is None
    assert authenticate(request, username="vera", password="pw-vera") is None
    assert authenticate(RequestFactory().post("/", REMOTE_ADDR="192.0.2.51"), username="vera",
                        password="pw-vera") == viewer
