"""Throttles: invalid API tokens per address, REST API request rates; the node API is exempt."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from appliance.env import env_rate

pytestmark = pytest.mark.django_db

URL = "/api/v1/origins/"


def token_client(key: str, address: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_too_many_invalid_tokens_from_one_address_give_429_even_for_a_valid_one(settings, viewer, caplog):
    settings.APPLIANCE_TOKEN_MAX_FAILURES = 3
    out = StringIO()
    call_command("api_token_create", viewer.username, stdout=out)
    valid = out.getvalue().strip()
    with caplog.at_level(logging.WARNING, logger="appliance.core.api_tokens"):
        for guess in ("a" * 43, "b" * 43, "c" * 43):
            assert token_client(guess, "203.0.113.7").get(URL).status_code == 401
        refused = token_client(valid, "203.0.113.7").get(URL)
        assert token_client("d" * 43, "203.0.113.7").get(URL).status_code == 429
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= settings.APPLIANCE_TOKEN_FAILURE_WINDOW
    assert refused.json()["error"]["code"] == "throttled"
    ours = [r.getMessage() for r in caplog.records if r.name == "appliance.core.api_tokens"]
    assert len(ours) == 1 and "203.0.113.7" in ours[0]  # one line when the limit is reached, not one per try
    assert token_client(valid, "203.0.113.8").get(URL).status_code == 200  # another address is unaffected


def test_valid_tokens_are_not_counted_as_failures(settings, viewer):
    settings.APPLIANCE_TOKEN_MAX_FAILURES = 2
    out = StringIO()
    call_command("api_token_create", viewer.username, stdout=out)
    client = token_client(out.getvalue().strip(), "203.0.113.9")
    assert [client.get(URL).status_code for _ in range(5)] == [200] * 5


@pytest.fixture
def low_rates(monkeypatch):
    # DRF binds the rates to the throttle class when it is imported; set them where it reads them.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/minute", "user": "3/minute"})


def test_authenticated_requests_per_user_are_rate_limited(low_rates, viewer_client):
    statuses = [viewer_client.get(URL).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_anonymous_requests_per_address_are_rate_limited_whatever_x_forwarded_for_says(low_rates):
    client = APIClient(REMOTE_ADDR="198.51.100.1")
    statuses = [client.get("/api/v1/schema/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
                for i in range(3)]
    assert statuses[2] == 429, statuses


def test_proxyd_nodes_are_never_throttled(low_rates, node_client):
    assert [node_client.get("/internal/v1/snapshot").status_code for _ in range(6)] == [200] * 6


@pytest.mark.parametrize("raw,rate", [("100/minute", "100/minute"), ("5/s", "5/s"), (" 7 / hour ", "7/hour"),
                                      ("", None)])
def test_env_rate_accepts(raw, rate):
    assert env_rate("R", "1/day", environ={"R": raw}) == rate


@pytest.mark.parametrize("raw", ["100", "100/fortnight", "x/minute", "0/minute", "-1/s"])
def test_env_rate_rejects(raw):
    with pytest.raises(ImproperlyConfigured, match="R must look like 100/minute"):
        env_rate("R", "1/day", environ={"R": raw})
