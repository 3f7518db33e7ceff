import pytest
from rest_framework.test import APIClient

from tests.appliance.factories import ProxyNodeFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [("get", "/internal/v1/snapshot"), ("post", "/internal/v1/reports")]


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_missing_token_is_401_with_bearer_challenge(method, path, anon_client):
    response = getattr(anon_client, method)(path, {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_wrong_token_is_401(method, path, node):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {node.token}x")
    assert getattr(client, method)(path, {}, format="json").status_code == 401


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer \xe9\xe9"])
def test_malformed_authorization_is_401(header, node):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/internal/v1/snapshot").status_code == 401


def test_disabled_node_is_rejected(node, node_client):
    node.enabled = False
    node.save()
    assert node_client.get("/internal/v1/snapshot").status_code == 401


def test_user_token_cannot_reach_internal_api(operator_client):
    assert operator_client.get("/internal/v1/snapshot").status_code in (401, 403)


def test_token_identifies_the_node(db):
    first, second = ProxyNodeFactory(name="alpha"), ProxyNodeFactory(name="beta")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {second.token}")
    assert client.get("/internal/v1/snapshot").json()["node"] == {"name": "beta"}
    assert first.token_hash != first.token  # only the hash is stored


def test_management_command_creates_node_and_prints_working_token(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("proxyd_node_create", "edge-7", stdout=out)
    token = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/internal/v1/snapshot").json()["node"]["name"] == "edge-7"


def test_management_command_sets_given_token_and_rotates(db):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    call_command("proxyd_node_create", "qs", "--token", "quickstart-token-123456")
    call_command("proxyd_node_create", "qs", "--token", "rotated-token-6543210")
    old, new = APIClient(), APIClient()
    old.credentials(HTTP_AUTHORIZATION="Bearer quickstart-token-123456")
    new.credentials(HTTP_AUTHORIZATION="Bearer rotated-token-6543210")
    assert old.get("/internal/v1/snapshot").status_code == 401
    assert new.get("/internal/v1/snapshot").status_code == 200
    with pytest.raises(CommandError):
        call_command("proxyd_node_create", "qs", "--token", "short")
