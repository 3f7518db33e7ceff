"""A 304 poll does not build the snapshot (appliance/control/poll.py), and every write or moment that
changes a node's snapshot still reaches it at its next poll."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from appliance.content.models import PrestuffRequest, PurgeRequest
from appliance.origins.models import PlayerCredential
from tests.appliance.factories import CachedContentFactory, OriginFactory, ProxyNodeFactory, StreamSessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def poll(node_client):
    """poll(): the node's next poll with the ETag of its last one, as proxyd sends it."""
    state = {"etag": None}

    def next_poll():
        headers = {"HTTP_IF_NONE_MATCH": state["etag"]} if state["etag"] else {}
        response = node_client.get("/internal/v1/snapshot", **headers)
        state["etag"] = response["ETag"]
        return response

    next_poll()
    return next_poll


def test_an_unchanged_poll_is_one_statement(poll, node):
    OriginFactory()
    poll()  # the origin is new: built
    with CaptureQueriesContext(connection) as queries:
        assert poll().status_code == 304
    assert len(queries) == 1  # authenticate + mark seen + read the cached ETag's key
    node.refresh_from_db()
    assert node.last_seen is not None


def test_a_poll_with_another_etag_gets_the_body(poll, node_client):
    assert poll().status_code == 304
    assert node_client.get("/internal/v1/snapshot", HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_origin_writes_reach_the_next_poll(poll, node):
    origin = OriginFactory(name="a")
    assert [o["name"] for o in poll().json()["origins"]] == ["a"]
    origin.cache_ttl = 99
    origin.save()
    assert poll().json()["origins"][0]["cache_ttl"] == 99
    assert poll().status_code == 304
    origin.nodes.add(ProxyNodeFactory(name="elsewhere"))  # assigned to another node only
    assert poll().json()["origins"] == []
    origin.nodes.add(node)
    assert len(poll().json()["origins"]) == 1
    origin.player_access = "digest"
    origin.save()
    poll()
    PlayerCredential.objects.create(origin=origin, username="viewer", realm=origin.player_realm,
                                    ha1_md5="0" * 32, ha1_sha256="0" * 64)
    assert [u["username"] for u in poll().json()["origins"][0]["player_users"]] == ["viewer"]
    origin.delete()
    assert poll().json()["origins"] == []


def test_purges_prestuff_and_terminations_reach_the_next_poll(poll, node):
    purge = PurgeRequest.objects.create(url="rtsp://o/a", prefix=False)
    assert [p["url"] for p in poll().json()["purges"]] == ["rtsp://o/a"]
    PurgeRequest.objects.filter(pk=purge.pk).update(state="done")  # a bulk update, no save()
    assert poll().json()["purges"] == []
    PrestuffRequest.objects.create(url="rtsp://o/p", node=node)
    assert [p["url"] for p in poll().json()["prestuff"]] == ["rtsp://o/p"]
    session = StreamSessionFactory(node=node)
    assert poll().status_code == 304  # a new session changes nothing in the snapshot
    session.terminate_requested_at = timezone.now()
    session.save()
    assert poll().json()["terminate_sessions"] == [session.session_id]
    session.ended_at = timezone.now()
    session.save()
    assert poll().json()["terminate_sessions"] == []


def test_another_nodes_termination_does_not_rebuild_this_nodes_snapshot(poll, node):
    other = ProxyNodeFactory(name="other")
    poll()  # a new node: every snapshot is built again (cluster membership)
    StreamSessionFactory(node=other, terminate_requested_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        assert poll().status_code == 304
    assert len(queries) == 1


def test_a_revalidation_reaches_the_next_poll_and_leaves_it_with_the_window(poll, node, settings, monkeypatch):
    settings.APPLIANCE_SNAPSHOT_REVALIDATED_WINDOW = 60
    poll()  # the setting is part of the key: built again
    content = CachedContentFactory(node=node, url="rtsp://o/r")
    assert poll().status_code == 304  # never revalidated: not in the snapshot
    revalidated = timezone.now()
    content.last_revalidated_at = revalidated
    content.save()
    assert [r["url"] for r in poll().json()["revalidated"]] == ["rtsp://o/r"]
    assert poll().status_code == 304
    monkeypatch.setattr(timezone, "now", lambda: revalidated + dt.timedelta(seconds=61))
    assert poll().json()["revalidated"] == []  # no write: the window moved past it


def test_settings_are_part_of_the_key(poll, settings):
    settings.APPLIANCE_REPORT_BATCH_DELAY = 7
    assert poll().json()["reporting"] == {"batch_delay": 7}


def test_cluster_members_going_stale_and_coming_back_reach_the_next_poll(poll, node, node_client, settings,
                                                                         monkeypatch):
    settings.APPLIANCE_CLUSTER_CACHE = True
    now = timezone.now()
    peer = ProxyNodeFactory(name="node-2", listen="10.0.0.2:554", last_seen=now)
    peer_client = type(node_client)()
    peer_client.credentials(HTTP_AUTHORIZATION=f"Bearer {peer.token}")
    members = {m["name"]: m["online"] for m in poll().json()["cluster"]["nodes"]}
    assert members == {"node-2": True}
    assert poll().status_code == 304
    stale = dt.timedelta(seconds=settings.APPLIANCE_NODE_STALE_SECONDS)
    monkeypatch.setattr(timezone, "now", lambda: now + stale / 2)
    assert poll().status_code == 304  # this node keeps polling, the peer is silent
    later = now + stale + dt.timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert poll().json()["cluster"]["nodes"] == [{"name": "node-2", "address": "10.0.0.2:554", "online": False}]
    assert poll().status_code == 304
    peer_client.get("/internal/v1/snapshot")  # the peer polls again: online for everyone
    assert poll().json()["cluster"]["nodes"][0]["online"] is True
    peer.rtsp_address = "peer.example:554"
    peer.save()
    assert poll().json()["cluster"]["nodes"][0]["address"] == "peer.example:554"


def test_report_batches_match_origins_without_querying_them_until_one_changes(node, make_event, post_batch):
    from appliance.playback.models import StreamSession

    def started(sid: str) -> dict:
        return make_event("session.started", session_id=sid, url="rtsp://proxy/x",
                          origin_url="rtsp://origin.example/vod/x")

    def origin_queries(sid: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert post_batch([started(sid)]).status_code == 200
        return sum('FROM "origins_origin"' in q["sql"] for q in queries)

    first = OriginFactory(name="first", base_url="rtsp://origin.example/vod")
    post_batch([])  # the node's first report sets its listen address (a snapshot change)
    origin_queries("s0")
    assert origin_queries("s1") == 0
    assert StreamSession.objects.get(session_id="s1").origin == first
    first.base_url = "rtsp://elsewhere.example/"
    first.save()
    second = OriginFactory(name="second", base_url="rtsp://origin.example/")
    assert origin_queries("s2") == 1
    assert StreamSession.objects.get(session_id="s2").origin == second


def test_a_peer_reporting_another_address_reaches_the_next_poll(poll, node, settings,
                                                                django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    settings.APPLIANCE_CLUSTER_CACHE = True
    peer = ProxyNodeFactory(name="node-2", listen="10.0.0.2:554", last_seen=timezone.now())
    assert [m["address"] for m in poll().json()["cluster"]["nodes"]] == ["10.0.0.2:554"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {peer.token}")
    with django_capture_on_commit_callbacks(execute=True):
        body = {"schema_version": 1, "node": {"listen": "10.0.0.9:554"}, "events": []}
        assert client.post("/internal/v1/reports", body, format="json").status_code == 200
    assert [m["address"] for m in poll().json()["cluster"]["nodes"]] == ["10.0.0.9:554"]


def test_a_first_report_does_not_rebuild_the_snapshots_without_a_cluster(poll, post_batch):
    post_batch([])  # sets the node's listen address: in no snapshot without a cache cluster
    with CaptureQueriesContext(connection) as queries:
        assert poll().status_code == 304
    assert len(queries) == 1
