import pytest

from tests.appliance.factories import OriginFactory

pytestmark = pytest.mark.django_db


def test_changes_made_through_the_api_are_listed(operator_client, viewer_client, anon_client):
    origin = OriginFactory()
    operator_client.patch(f"/api/v1/origins/{origin.id}/", {"cache_ttl": 99}, format="json")
    rows = viewer_client.get("/api/v1/audit/", {"action": "origin.update"}).json()["results"]
    assert len(rows) == 1
    assert rows[0]["changes"] == {"cache_ttl": 99} and rows[0]["object_id"] == str(origin.id)
    assert viewer_client.post("/api/v1/audit/", {}, format="json").status_code == 403
    assert anon_client.get("/api/v1/audit/").status_code == 401
