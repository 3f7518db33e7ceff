import pytest

from appliance.core.models import AuditLog
from tests.appliance.factories import OriginFactory, UplinkEventFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/uplink/"


def test_backlog_filters_by_state(viewer_client):
    pending = UplinkEventFactory(state="pending")
    UplinkEventFactory(state="sent")
    failed = UplinkEventFactory(state="failed", attempts=10, last_error="timeout")
    ids = [row["id"] for row in viewer_client.get(URL, {"state": ["pending", "failed"]}).json()["results"]]
    assert ids == [pending.id, failed.id]
    assert viewer_client.get(f"{URL}{failed.id}/").json()["last_error"] == "timeout"


def test_permissions(anon_client, norole_client, viewer_client):
    event = UplinkEventFactory(state="failed")
    assert anon_client.get(URL).status_code == 401
    assert norole_client.get(URL).status_code == 403
    assert viewer_client.post(f"{URL}{event.id}/retry/").status_code == 403


def test_operator_retries_a_failed_event(operator_client):
    event = UplinkEventFactory(state="failed", attempts=10)
    response = operator_client.post(f"{URL}{event.id}/retry/")
    assert response.status_code == 200
    assert response.json()["state"] == "pending" and response.json()["next_attempt_at"] is not None
    assert AuditLog.objects.filter(action="uplink.retry", object_id=str(event.id)).exists()


def test_only_failed_events_can_be_retried(operator_client):
    event = UplinkEventFactory(state="sent")
    response = operator_client.post(f"{URL}{event.id}/retry/")
    assert response.status_code == 409
    assert operator_client.post(f"{URL}99999/retry/").status_code == 404


def test_list_query_count_is_constant(viewer_client, assert_list_queries_constant):
    origin = OriginFactory()
    assert_list_queries_constant(viewer_client, URL, lambda n: UplinkEventFactory.create_batch(n, origin=origin))
