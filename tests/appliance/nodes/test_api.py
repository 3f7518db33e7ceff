import pytest

from tests.appliance.factories import ProxyNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/nodes/"


def test_nodes_are_listed_without_token_material(viewer_client):
    node = ProxyNodeFactory(name="edge-1", version="0.1.0", load_sessions=4)
    body = viewer_client.get(URL).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["name"], row["version"], row["load_sessions"]) == ("edge-1", "0.1.0", 4)
    assert not {"token", "token_hash"} & set(row)
    assert viewer_client.get(f"{URL}{node.id}/").json()["name"] == "edge-1"


def test_permissions_and_read_only(anon_client, norole_client, operator_client):
    assert anon_client.get(URL).status_code == 401
    assert norole_client.get(URL).status_code == 403
    assert operator_client.post(URL, {"name": "x"}, format="json").status_code == 405
    assert operator_client.get(f"{URL}5555/").status_code == 404


def test_report_updates_show_up(node, post_batch, viewer_client):
    post_batch([], load={"sessions": 9, "bandwidth_bps": 4_000_000})
    row = viewer_client.get(f"{URL}{node.id}/").json()
    assert (row["load_sessions"], row["load_bandwidth_bps"]) == (9, 4_000_000)
    assert row["last_seen"] is not None


def test_list_query_count_is_constant(viewer_client, assert_list_queries_constant):
    assert_list_queries_constant(viewer_client, URL, ProxyNodeFactory.create_batch)
