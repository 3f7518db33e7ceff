"""Player access per origin: API and dashboard form (one validation), accounts stored only as H(A1),
audited by username, and carried in the snapshot only to the nodes that serve the origin."""

import hashlib

import pytest
from django.urls import reverse

from appliance.core.audit import SYSTEM
from appliance.core.models import AuditLog
from appliance.origins.models import Origin, PlayerCredential
from appliance.origins.player_credentials import PlayerAccount
from appliance.origins.services import origin_create
from tests.appliance.factories import OriginFactory, ProxyNodeFactory
from tests.appliance.origins.test_node_assignment import VALID

pytestmark = pytest.mark.django_db

URL = "/api/v1/origins/"
PLAYERS = [{"username": "alice", "password": "wonder land"}, {"username": "bob", "password": "b0b!"}]
PROTECTED = {**VALID, "player_access": "digest", "player_realm": "Members", "player_credentials": PLAYERS}


def ha1(hash_name: str, user: str, realm: str, password: str) -> str:
    return hashlib.new(hash_name, f"{user}:{realm}:{password}".encode()).hexdigest()


def snapshot_origins(node) -> list[dict]:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {node.token}")
    return client.get("/internal/v1/snapshot").json()["origins"]


def test_api_stores_only_hashes_shows_usernames_and_audits_no_password(operator_client):
    created = operator_client.post(URL, PROTECTED, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["player_access"], body["player_realm"], body["player_usernames"]) == ("digest", "Members",
                                                                                      ["alice", "bob"])
    assert "player_credentials" not in body and "wonder land" not in created.content.decode()
    alice = PlayerCredential.objects.get(username="alice")
    assert alice.realm == "Members" and "wonder" not in alice.ha1_md5 + alice.ha1_sha256
    assert alice.ha1_md5 == ha1("md5", "alice", "Members", "wonder land")
    assert alice.ha1_sha256 == ha1("sha256", "alice", "Members", "wonder land")
    audit = AuditLog.objects.get(action="origin.create")
    assert audit.changes["player_credentials"] == ["alice", "bob"] and "wonder" not in str(audit.changes)

    pk = body["id"]
    kept = operator_client.patch(f"{URL}{pk}/", {"player_access": "basic"}, format="json")
    assert kept.status_code == 200 and kept.json()["player_usernames"] == ["alice", "bob"]
    realm_only = operator_client.patch(f"{URL}{pk}/", {"player_realm": "Other"}, format="json")
    assert realm_only.status_code == 400 and "player_realm" in realm_only.json()["error"]["fields"]
    with_passwords = operator_client.patch(f"{URL}{pk}/", {"player_realm": "Other", "player_credentials": [
        {"username": "carol", "password": "c"}]}, format="json")
    assert with_passwords.status_code == 200 and with_passwords.json()["player_usernames"] == ["carol"]
    assert PlayerCredential.objects.get().ha1_md5 == ha1("md5", "carol", "Other", "c")


@pytest.mark.parametrize("change", [
    {"player_credentials": []},
    {"player_credentials": [{"username": "a:b", "password": "x"}]},
    {"player_credentials": [{"username": "a", "password": ""}]},
    {"player_credentials": [{"username": "a", "password": "x"}, {"username": "a", "password": "y"}]},
    {"player_realm": 'say "hi"'},
    {"player_access": "kerberos"},
])
def test_invalid_player_access_gets_400_with_a_field_error(operator_client, change):
    response = operator_client.post(URL, {**PROTECTED, **change}, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) & {"player_credentials", "player_realm", "player_access"}
    assert not Origin.objects.exists()


def test_dashboard_form_sets_players_and_shows_the_same_errors(client, operator):
    client.force_login(operator)
    form = {**VALID, "allowed": "on", "cache_policy": "obey", "cache_ttl": 0, "stale_if_error": 0,
            "transport": "auto", "split": "auto", "player_access": "digest", "player_realm": "Members",
            "player_credentials": "alice:wonder land\r\n\r\nbob:b0b!:with colon\r\n"}
    assert client.post(reverse("ui:origin-create"), form).status_code == 302
    origin = Origin.objects.get(name="gst")
    bob = origin.player_credentials.get(username="bob")
    assert bob.ha1_sha256 == ha1("sha256", "bob", "Members", "b0b!:with colon")
    page = client.get(reverse("ui:origin-edit", args=[origin.pk])).content.decode()
    assert "wonder land" not in page and bob.ha1_md5 not in page
    assert "<td>digest: 2</td>" in client.get(reverse("ui:origin-list")).content.decode()
    kept = client.post(reverse("ui:origin-edit", args=[origin.pk]), {**form, "player_credentials": ""})
    assert kept.status_code == 302 and origin.player_credentials.count() == 2
    bad = client.post(reverse("ui:origin-edit", args=[origin.pk]),
                      {**form, "player_credentials": "a:b:c\nx:"})
    assert bad.status_code == 200 and "Every player needs a password." in bad.content.decode()
    none = client.post(reverse("ui:origin-create"), {**form, "name": "g2", "route_prefix": "/g2",
                                                     "player_credentials": ""})
    assert none.status_code == 200 and "Digest access needs at least one player." in none.content.decode()


def test_snapshot_carries_player_hashes_only_to_the_serving_nodes_and_only_when_protected():
    edge_a, edge_b = ProxyNodeFactory(name="edge-a"), ProxyNodeFactory(name="edge-b")
    OriginFactory(name="open-everywhere")
    origin_create(actor=SYSTEM, name="members", base_url="rtsp://127.0.0.1:8600/m",
                  route_prefix="/m", player_access="digest", player_realm="Members",
                  player_credentials=[PlayerAccount("alice", "wonder land")], nodes=[edge_a])
    a = {o["name"]: o for o in snapshot_origins(edge_a)}
    assert a["members"]["player_access"] == "digest" and a["members"]["player_realm"] == "Members"
    assert a["members"]["player_users"] == [{"username": "alice",
                                             "md5": ha1("md5", "alice", "Members", "wonder land"),
                                             "sha256": ha1("sha256", "alice", "Members", "wonder land")}]
    assert "player_access" not in a["open-everywhere"]
    b = snapshot_origins(edge_b)
    assert [o["name"] for o in b] == ["open-everywhere"]
    assert "alice" not in str(b)
