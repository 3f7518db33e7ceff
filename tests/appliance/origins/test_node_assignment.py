"""Origins (and so routes) assigned to a subset of nodes: API, operator form, per-node snapshot."""

import pytest
from django.urls import reverse

from appliance.core.models import AuditLog
from appliance.origins.models import Origin
from appliance.origins.selectors import origins_for_node
from tests.appliance.factories import OriginFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/origins/"
VALID = {"name": "gst", "base_url": "rtsp://127.0.0.1:8600/", "route_prefix": "/vod"}


def snapshot_origin_names(node) -> list[str]:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {node.token}")
    return [o["name"] for o in client.get("/internal/v1/snapshot").json()["origins"]]


def test_unassigned_origins_go_to_every_node_assigned_ones_only_to_theirs():
    edge_a, edge_b, edge_c = (ProxyNodeFactory(name=n) for n in ("edge-a", "edge-b", "edge-c"))
    OriginFactory(name="everywhere")
    OriginFactory(name="a-and-b").nodes.set([edge_a, edge_b])
    OriginFactory(name="only-c").nodes.set([edge_c])
    assert snapshot_origin_names(edge_a) == ["everywhere", "a-and-b"]
    assert snapshot_origin_names(edge_b) == ["everywhere", "a-and-b"]
    assert snapshot_origin_names(edge_c) == ["everywhere", "only-c"]
    assert set(origins_for_node(edge_c).values_list("name", flat=True)) == {"everywhere", "only-c"}


def test_assigning_an_origin_changes_the_other_nodes_snapshot_etag():
    edge_a, edge_b = ProxyNodeFactory(name="edge-a"), ProxyNodeFactory(name="edge-b")
    origin = OriginFactory(name="gst")
    assert snapshot_origin_names(edge_b) == ["gst"]
    origin.nodes.set([edge_a])
    assert snapshot_origin_names(edge_b) == []
    assert snapshot_origin_names(edge_a) == ["gst"]


def test_api_assigns_by_node_name_and_audits_the_assignment(operator_client):
    ProxyNodeFactory(name="edge-a"), ProxyNodeFactory(name="edge-b")
    created = operator_client.post(URL, {**VALID, "nodes": ["edge-b", "edge-a"]}, format="json")
    assert created.status_code == 201, created.content
    assert sorted(created.json()["nodes"]) == ["edge-a", "edge-b"]
    assert AuditLog.objects.get(action="origin.create").changes["nodes"] == ["edge-a", "edge-b"]
    pk = created.json()["id"]
    kept = operator_client.patch(f"{URL}{pk}/", {"cache_ttl": 5}, format="json")
    assert sorted(kept.json()["nodes"]) == ["edge-a", "edge-b"]  # not given: unchanged
    cleared = operator_client.patch(f"{URL}{pk}/", {"nodes": []}, format="json")
    assert cleared.status_code == 200 and cleared.json()["nodes"] == []
    assert AuditLog.objects.filter(action="origin.update").latest("pk").changes == {"nodes": []}


def test_api_rejects_an_unknown_node_with_a_field_error(operator_client):
    response = operator_client.post(URL, {**VALID, "nodes": ["nowhere"]}, format="json")
    assert response.status_code == 400
    assert "nodes" in response.json()["error"]["fields"]
    assert not Origin.objects.exists()


def test_operator_form_assigns_nodes_and_the_list_shows_them(client, operator):
    edge_a = ProxyNodeFactory(name="edge-a")
    ProxyNodeFactory(name="edge-b")
    client.force_login(operator)
    form = {**VALID, "allowed": "on", "cache_policy": "obey", "cache_ttl": 0, "stale_if_error": 0,
            "transport": "auto", "split": "auto", "nodes": [edge_a.pk]}
    assert client.post(reverse("ui:origin-create"), form).status_code == 302
    origin = Origin.objects.get(name="gst")
    assert list(origin.nodes.values_list("name", flat=True)) == ["edge-a"]
    edit = client.get(reverse("ui:origin-edit", args=[origin.pk])).content.decode()
    assert f'value="{edge_a.pk}"' in edit and "checked" in edit
    listing = client.get(reverse("ui:origin-list")).content.decode()
    assert "edge-a" in listing
    bad = client.post(reverse("ui:origin-edit", args=[origin.pk]), {**form, "nodes": [999999]})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    form.pop("nodes")
    assert client.post(reverse("ui:origin-edit", args=[origin.pk]), form).status_code == 302
    assert not origin.nodes.exists()
