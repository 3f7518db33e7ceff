import pytest
from django.utils import timezone

from appliance.core.models import AuditLog
from tests.appliance.factories import ProxyNodeFactory, StreamSessionFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/sessions/"


def test_permissions(anon_client, norole_client, viewer_client):
    session = StreamSessionFactory()
    assert anon_client.get(URL).status_code == 401
    assert norole_client.get(URL).status_code == 403
    assert viewer_client.get(f"{URL}{session.id}/").status_code == 200
    assert viewer_client.post(f"{URL}{session.id}/terminate/").status_code == 403


def test_live_and_past_filters(viewer_client):
    live = StreamSessionFactory()
    past = StreamSessionFactory(ended_at=timezone.now(), end_reason="teardown")
    def ids(**params):
        return [item["id"] for item in viewer_client.get(URL, params).json()["results"]]
    assert ids(live="true") == [live.id]
    assert ids(live="false") == [past.id]
    assert sorted(ids()) == sorted([live.id, past.id])
    body = viewer_client.get(f"{URL}{live.id}/").json()
    assert body["live"] is True and body["node"] == live.node.name


def test_filter_by_player_and_served_from(viewer_client):
    StreamSessionFactory(player_addr="10.0.0.1:5000", served_from="cache")
    wanted = StreamSessionFactory(player_addr="10.0.0.2:5000", served_from="origin")
    assert [s["id"] for s in viewer_client.get(URL, {"player": "10.0.0.2"}).json()["results"]] == [wanted.id]
    assert [s["id"] for s in viewer_client.get(URL, {"served_from": "origin"}).json()["results"]] == [wanted.id]


def test_terminate_reaches_the_node_snapshot_and_is_audited(operator_client, node, node_client):
    session = StreamSessionFactory(node=node)
    response = operator_client.post(f"{URL}{session.id}/terminate/")
    assert response.status_code == 202
    assert response.json()["terminate_requested_at"] is not None
    assert node_client.get("/internal/v1/snapshot").json()["terminate_sessions"] == [session.session_id]
    assert AuditLog.objects.filter(action="session.terminate", object_id=str(session.id)).count() == 1


def test_terminating_an_ended_session_is_a_conflict(operator_client):
    session = StreamSessionFactory(ended_at=timezone.now())
    response = operator_client.post(f"{URL}{session.id}/terminate/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_ended"


def test_unknown_session_is_404(operator_client):
    assert operator_client.post(f"{URL}987654/terminate/").status_code == 404


def test_list_query_count_is_constant(viewer_client, assert_list_queries_constant):
    node = ProxyNodeFactory()
    assert_list_queries_constant(viewer_client, URL, lambda n: StreamSessionFactory.create_batch(n, node=node))
