import datetime as dt

import pytest
from django.utils import timezone

from appliance.content.models import PurgeRequest
from tests.appliance.factories import CachedContentFactory, OriginFactory, StreamSessionFactory

pytestmark = pytest.mark.django_db


def test_snapshot_carries_origins_with_credentials_for_the_node(node_client):
    origin = OriginFactory(name="gst", base_url="rtsp://127.0.0.1:8600/", route_prefix="/vod",
                           username="u", password="p", cache_policy="force_ttl", cache_ttl=30)
    response = node_client.get("/internal/v1/snapshot")
    assert response.status_code == 200
    body = response.json()
    assert body["schema_version"] == 1
    assert body["origins"] == [{
        "id": origin.id, "name": "gst", "route_prefix": "/vod", "base_url": "rtsp://127.0.0.1:8600/",
        "allowed": True, "cache_policy": "force_ttl", "cache_ttl": 30, "stale_if_error": 0,
        "transport": "auto", "live": False, "split": "auto", "tls_verify": True, "username": "u",
        "password": "p"}]
    assert response["ETag"] == f'"{body["etag"]}"'
    for key in ("purges", "prestuff", "revalidated", "terminate_sessions"):
        assert body[key] == []
    assert body["reporting"] == body["polling"] == {}  # settings unset: each node keeps its own


def test_the_batch_delay_and_poll_interval_settings_reach_the_node(node_client, settings):
    settings.APPLIANCE_REPORT_BATCH_DELAY = 5
    settings.APPLIANCE_SNAPSHOT_POLL_INTERVAL = 30
    body = node_client.get("/internal/v1/snapshot").json()
    assert (body["reporting"], body["polling"]) == ({"batch_delay": 5}, {"interval": 30})


def test_if_none_match_gives_304_until_something_changes(node_client):
    OriginFactory()
    etag = node_client.get("/internal/v1/snapshot")["ETag"]
    unchanged = node_client.get("/internal/v1/snapshot", HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == etag
    OriginFactory()
    changed = node_client.get("/internal/v1/snapshot", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert len(changed.json()["origins"]) == 2


def test_stale_or_garbage_if_none_match_gives_full_body(node_client):
    for header in ('"nope"', "garbage", '""', "*x"):
        assert node_client.get("/internal/v1/snapshot", HTTP_IF_NONE_MATCH=header).status_code == 200


def test_etag_ignores_generation_time(node_client):
    first = node_client.get("/internal/v1/snapshot").json()
    second = node_client.get("/internal/v1/snapshot").json()
    assert first["etag"] == second["etag"]


def test_snapshot_lists_pending_purges_prestuff_revalidated_and_terminations(node, node_client):
    purge = PurgeRequest.objects.create(url="rtsp://127.0.0.1:8600/a", prefix=False)
    PurgeRequest.objects.create(url="rtsp://127.0.0.1:8600/done", state="done")
    expires = timezone.now() + dt.timedelta(hours=1)
    CachedContentFactory(node=node, url="rtsp://127.0.0.1:8600/r", last_revalidated_at=timezone.now(),
                         expires_at=expires)
    CachedContentFactory(node=node, url="rtsp://127.0.0.1:8600/old",
                         last_revalidated_at=timezone.now() - dt.timedelta(days=2))
    live = StreamSessionFactory(node=node, terminate_requested_at=timezone.now())
    StreamSessionFactory(node=node, terminate_requested_at=timezone.now(), ended_at=timezone.now())
    StreamSessionFactory(terminate_requested_at=timezone.now())  # another node's session
    body = node_client.get("/internal/v1/snapshot").json()
    assert body["purges"] == [{"id": purge.id, "url": "rtsp://127.0.0.1:8600/a", "prefix": False}]
    assert [r["url"] for r in body["revalidated"]] == ["rtsp://127.0.0.1:8600/r"]
    assert body["revalidated"][0]["state"] == "complete"
    assert body["terminate_sessions"] == [live.session_id]


def test_a_snapshot_poll_marks_the_node_seen(node, node_client):
    assert node.last_seen is None
    first = node_client.get("/internal/v1/snapshot")
    node.refresh_from_db()
    seen = node.last_seen
    assert seen is not None
    again = node_client.get("/internal/v1/snapshot", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    node.refresh_from_db()
    assert node.last_seen > seen


def test_a_node_gets_passwords_only_for_the_origins_it_serves(node_client, monkeypatch):
    from appliance.control import snapshot
    from appliance.origins.models import Origin

    served = OriginFactory(username="u", password="served-pw")
    OriginFactory(username="x", password="elsewhere-pw")
    monkeypatch.setattr(snapshot, "origins_for_node", lambda node: Origin.objects.filter(pk=served.pk))
    response = node_client.get("/internal/v1/snapshot")
    assert [o["password"] for o in response.json()["origins"]] == ["served-pw"]
    assert b"elsewhere-pw" not in response.content


def test_a_password_under_a_removed_key_gives_503_and_one_log_line(node_client, settings, caplog):
    import logging

    from cryptography.fernet import Fernet

    OriginFactory(password="under-the-old-key")
    settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    with caplog.at_level(logging.ERROR, logger="appliance.control.views"):
        response = node_client.get("/internal/v1/snapshot")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "snapshot_unavailable"
    ours = [r for r in caplog.records if r.name == "appliance.control.views"]
    assert len(ours) == 1 and ours[0].exc_info is None and "node-1" in ours[0].getMessage()
    assert b"under-the-old-key" not in response.content


def test_the_cache_cluster_lists_every_enabled_node_with_an_address(node_client, node, settings):
    from tests.appliance.factories import ProxyNodeFactory

    assert node_client.get("/internal/v1/snapshot").json()["cluster"] == {"enabled": False}
    settings.APPLIANCE_CLUSTER_CACHE = True
    settings.APPLIANCE_CLUSTER_ID = "edge"
    now = timezone.now()
    ProxyNodeFactory(name="node-2", listen="10.0.0.2:554", last_seen=now)
    ProxyNodeFactory(name="node-3", rtsp_address="rtsp3.example:554", listen="0.0.0.0:554",
                     last_seen=now - dt.timedelta(seconds=settings.APPLIANCE_NODE_OFFLINE_SECONDS + 1))
    ProxyNodeFactory(name="node-4", listen="0.0.0.0:554", last_seen=now)  # no address peers can use
    ProxyNodeFactory(name="node-5", listen="10.0.0.5:554", last_seen=now, enabled=False)
    # node-1 (polling) is seen by its own poll, but has not reported an address yet
    body = node_client.get("/internal/v1/snapshot").json()
    assert body["cluster"] == {"enabled": True, "id": "edge", "nodes": [
        {"name": "node-2", "address": "10.0.0.2:554", "online": True},
        {"name": "node-3", "address": "rtsp3.example:554", "online": False}]}
    node.rtsp_address = "10.0.0.1:554"
    node.save()
    nodes = node_client.get("/internal/v1/snapshot").json()["cluster"]["nodes"]
    assert nodes[0] == {"name": "node-1", "address": "10.0.0.1:554", "online": True}
