"""A node that stops reporting is shown offline; the check closes its open sessions and splits as lost."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appliance.nodes.services import nodes_close_lost
from appliance.nodes.tasks import close_lost
from appliance.playback.models import LiveSplit, StreamSession
from tests.appliance.factories import LiveSplitFactory, ProxyNodeFactory, StreamSessionFactory

pytestmark = pytest.mark.django_db

OFFLINE_AFTER = 60


@pytest.fixture(autouse=True)
def _offline_after(settings):
    settings.APPLIANCE_NODE_STALE_SECONDS, settings.APPLIANCE_NODE_OFFLINE_SECONDS = 30, OFFLINE_AFTER


def seen_ago(seconds: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=seconds)


def test_api_and_pages_show_a_silent_node_offline(viewer_client, client, viewer):
    ProxyNodeFactory(name="alive", last_seen=seen_ago(5))
    ProxyNodeFactory(name="silent", last_seen=seen_ago(OFFLINE_AFTER + 5))
    ProxyNodeFactory(name="never")
    rows = {r["name"]: r["online"] for r in viewer_client.get("/api/v1/nodes/").json()["results"]}
    assert rows == {"alive": True, "silent": False, "never": False}
    client.force_login(viewer)
    for page in ("ui:node-list", "ui:dashboard"):
        body = client.get(reverse(page)).content.decode()
        assert body.count("badge-online") == 1 and body.count("badge-offline") == 2, page


def test_offline_node_sessions_and_splits_close_as_lost_and_a_second_run_changes_nothing():
    silent = ProxyNodeFactory(name="silent", last_seen=seen_ago(OFFLINE_AFTER + 5))
    alive = ProxyNodeFactory(name="alive", last_seen=seen_ago(1))
    open_sessions = StreamSessionFactory.create_batch(3, node=silent)
    done = StreamSessionFactory(node=silent, ended_at=seen_ago(600), end_reason="teardown")
    kept = StreamSessionFactory(node=alive)
    split = LiveSplitFactory(node=silent, state="reconnecting")
    alive_split = LiveSplitFactory(node=alive)

    result = nodes_close_lost(now=timezone.now(), limit=10)
    assert (result.nodes, result.sessions, result.splits) == (1, 3, 1)
    for session in open_sessions:
        session.refresh_from_db()
        assert session.end_reason == "node_lost" and session.ended_at is not None
    assert StreamSession.objects.get(pk=done.pk).ended_at == done.ended_at
    assert StreamSession.objects.get(pk=kept.pk).ended_at is None
    split.refresh_from_db()
    assert (split.state, split.end_reason, split.players) == ("ended", "node_lost", 0)
    assert LiveSplit.objects.get(pk=alive_split.pk).state == "live"

    again = nodes_close_lost(now=timezone.now(), limit=10)
    assert (again.nodes, again.sessions, again.splits) == (0, 0, 0)


def test_the_beat_task_is_bounded_per_run(settings):
    settings.APPLIANCE_NODE_CHECK_BATCH = 2
    for n in range(3):
        StreamSessionFactory(node=ProxyNodeFactory(name=f"gone-{n}", last_seen=seen_ago(OFFLINE_AFTER * 2)))
    assert close_lost() == 2
    assert close_lost() == 1
    assert close_lost() == 0
    assert set(StreamSession.objects.values_list("end_reason", flat=True)) == {"node_lost"}


def test_a_lost_session_the_node_later_reports_ended_takes_the_reported_reason(node, post_batch, make_event):
    node.last_seen = seen_ago(OFFLINE_AFTER + 5)
    node.save()
    session = StreamSessionFactory(node=node)
    assert nodes_close_lost(now=timezone.now(), limit=10).sessions == 1
    response = post_batch([make_event("session.ended", session_id=session.session_id, end_reason="teardown",
                                  bytes_out=10, packets_out=1)])
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.end_reason == "teardown"
