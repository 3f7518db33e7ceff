import pytest

from appliance.core.models import AuditLog
from appliance.origins.credentials import decrypt_password
from appliance.origins.models import Origin
from tests.appliance.factories import OriginFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/origins/"
VALID = {"name": "gst", "base_url": "rtsp://127.0.0.1:8600/", "route_prefix": "/vod/",
         "username": "svc", "password": "s3cret", "cache_policy": "force_ttl", "cache_ttl": 120}


def test_anonymous_gets_401(anon_client):
    response = anon_client.get(URL)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_user_without_role_gets_403(norole_client):
    assert norole_client.get(URL).status_code == 403


def test_viewer_reads_but_cannot_write(viewer_client):
    OriginFactory()
    assert viewer_client.get(URL).json()["count"] == 1
    response = viewer_client.post(URL, VALID, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Origin.objects.filter(name="gst").exists()


def test_operator_creates_origin_credentials_are_write_only_and_audited(operator, operator_client):
    response = operator_client.post(URL, VALID, format="json", REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 201, response.content
    body = response.json()
    assert "password" not in body and body["has_credentials"] is True
    assert body["route_prefix"] == "/vod"
    stored = Origin.objects.get(pk=body["id"]).password_encrypted
    assert "s3cret" not in stored and decrypt_password(stored) == "s3cret"
    detail = operator_client.get(f"{URL}{body['id']}/").json()
    assert "password" not in detail
    audit = AuditLog.objects.get(action="origin.create")
    assert (audit.actor, audit.remote_addr, audit.object_id) == (operator, "198.51.100.4", str(body["id"]))
    assert audit.changes["password"] == "(changed)"
    assert "s3cret" not in str(audit.changes)


@pytest.mark.parametrize("field,value", [
    ("base_url", "http://example.com/"), ("base_url", "rtsp://"), ("route_prefix", "vod"),
    ("base_url", "rtsp://[::1:8554/x"), ("base_url", "rtsp://[fe80::zz]:554/"),
    ("base_url", "rtsp://h:port/"),
    ("base_url", "rtsp://user:pw@h/"), ("base_url", "rtspu://h/"),
    ("cache_policy", "sometimes"), ("cache_ttl", -1), ("transport", "carrier-pigeon"), ("name", ""),
])
def test_invalid_input_gets_400_with_field_errors(operator_client, field, value):
    response = operator_client.post(URL, {**VALID, field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize("base_url", ["rtsp://[::1]:8554/vod", "rtsps://[2001:db8::5]/live",
                                      "rtsps://origin.example/"])
def test_ipv6_literals_and_rtsps_are_accepted_and_reach_the_node_snapshot(operator_client, base_url):
    from proxyd.app.snapshot_apply import snapshot_routes
    from proxyd.control.schema import OriginConfig

    response = operator_client.post(URL, {**VALID, "base_url": base_url, "tls_verify": False}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tls_verify"] is False
    origin = Origin.objects.get(pk=response.json()["id"])
    names = ("id", "name", "route_prefix", "base_url", "allowed", "cache_policy", "cache_ttl",
             "stale_if_error", "transport", "live", "split", "username", "tls_verify")
    fields = {f: getattr(origin, f) for f in names}
    (route,), _ = snapshot_routes((OriginConfig(**fields, password=""),))  # proxyd makes a route of it
    assert route.origin_url.split("://")[0] == base_url.split("://")[0] and route.tls_verify is False


def test_duplicate_name_or_prefix_gets_400(operator_client):
    OriginFactory(name="gst", route_prefix="/other")
    OriginFactory(name="other", route_prefix="/vod")
    for payload, field in (({**VALID, "route_prefix": "/x"}, "name"), ({**VALID, "name": "y"}, "route_prefix")):
        response = operator_client.post(URL, payload, format="json")
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]


def test_operator_updates_and_deletes_with_audit(operator_client):
    origin = OriginFactory(name="a", allowed=True)
    response = operator_client.patch(f"{URL}{origin.id}/", {"allowed": False}, format="json")
    assert response.status_code == 200 and response.json()["allowed"] is False
    assert AuditLog.objects.get(action="origin.update").changes == {"allowed": False}
    assert operator_client.delete(f"{URL}{origin.id}/").status_code == 204
    assert not Origin.objects.exists()
    assert AuditLog.objects.filter(action="origin.delete", object_id=str(origin.id)).exists()


def test_unknown_id_is_404(viewer_client, operator_client):
    assert viewer_client.get(f"{URL}999999/").status_code == 404
    response = operator_client.patch(f"{URL}999999/", {"allowed": False}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_filter_and_ordering(viewer_client):
    OriginFactory(name="beta", allowed=False)
    OriginFactory(name="alpha")
    OriginFactory(name="gamma")
    names = [o["name"] for o in viewer_client.get(URL, {"ordering": "-name"}).json()["results"]]
    assert names == ["gamma", "beta", "alpha"]
    assert [o["name"] for o in viewer_client.get(URL, {"allowed": "false"}).json()["results"]] == ["beta"]


def test_list_query_count_is_constant(viewer_client, assert_list_queries_constant):
    assert_list_queries_constant(viewer_client, URL, OriginFactory.create_batch)


def test_token_authentication_via_api_token_create(viewer):
    from io import StringIO

    from django.core.management import call_command
    from rest_framework.test import APIClient

    out = StringIO()
    call_command("api_token_create", viewer.username, stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    assert client.get(URL).status_code == 200
