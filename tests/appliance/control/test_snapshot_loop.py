"""Operator actions reach the node through the snapshot and leave it once the node reports them done."""
import pytest

from tests.appliance.factories import CachedContentFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db


def test_purge_round_trip(node, node_client, operator_client, make_event, post_batch):
    item = CachedContentFactory(node=node, url="rtsp://127.0.0.1:8600/clip")
    before = node_client.get("/internal/v1/snapshot")["ETag"]
    purge_id = operator_client.post(f"/api/v1/content/{item.id}/purge/").json()["id"]
    pending = node_client.get("/internal/v1/snapshot", HTTP_IF_NONE_MATCH=before)
    assert pending.status_code == 200
    assert [p["id"] for p in pending.json()["purges"]] == [purge_id]
    post_batch([make_event("cache.changed", url=item.url, state="purged", size_bytes=0)])
    after = node_client.get("/internal/v1/snapshot", HTTP_IF_NONE_MATCH=pending["ETag"])
    assert after.status_code == 200 and after.json()["purges"] == []
    item.refresh_from_db()
    assert item.state == "purged"
    assert operator_client.get(f"/api/v1/content/{item.id}/").json()["state"] == "purged"


def test_prestuff_round_trip_is_per_node(node, node_client, operator_client, make_event, post_batch):
    ProxyNodeFactory(name="other")
    request_id = operator_client.post("/api/v1/content/prestuff/", {"url": "rtsp://o/new", "node": "node-1"},
                                      format="json").json()["id"]
    assert node_client.get("/internal/v1/snapshot").json()["prestuff"] == [{"id": request_id,
                                                                             "url": "rtsp://o/new"}]
    post_batch([make_event("cache.changed", url="rtsp://o/new", state="filling")])
    assert node_client.get("/internal/v1/snapshot").json()["prestuff"] != []
    post_batch([make_event("cache.changed", url="rtsp://o/new", state="complete")])
    assert node_client.get("/internal/v1/snapshot").json()["prestuff"] == []


def test_terminate_round_trip(node, node_client, operator_client, make_event, post_batch):
    post_batch([make_event("session.started", session_id="node-1:abc", url="rtsp://p/a")])
    session_id = operator_client.get("/api/v1/sessions/", {"live": "true"}).json()["results"][0]["id"]
    operator_client.post(f"/api/v1/sessions/{session_id}/terminate/")
    assert node_client.get("/internal/v1/snapshot").json()["terminate_sessions"] == ["node-1:abc"]
    post_batch([make_event("session.ended", session_id="node-1:abc", end_reason="terminated")])
    assert node_client.get("/internal/v1/snapshot").json()["terminate_sessions"] == []
    ended = operator_client.get(f"/api/v1/sessions/{session_id}/").json()
    assert (ended["live"], ended["end_reason"]) == (False, "terminated")
