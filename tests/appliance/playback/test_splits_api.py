import datetime as dt

import pytest
from django.utils import timezone

from tests.appliance.factories import BASE_TIME, LiveSplitFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/splits/"


def ids(client, **params) -> list[int]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_viewers_read_and_nobody_writes(anon_client, norole_client, viewer_client, operator_client):
    split = LiveSplitFactory()
    assert anon_client.get(URL).status_code == 401
    assert norole_client.get(URL).status_code == 403
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.post(URL, {}).status_code == 403
    assert operator_client.post(URL, {}).status_code == 405
    assert operator_client.delete(f"{URL}{split.id}/").status_code == 405


def test_detail_shows_the_split_status(viewer_client):
    split = LiveSplitFactory(reconnects=2, media_stalls=1, origin_transport="tcp", packets_in=10, bytes_in=999)
    body = viewer_client.get(f"{URL}{split.id}/").json()
    assert body["node"] == split.node.name and body["split_id"] == split.split_id
    assert (body["url"], body["player_url"], body["state"], body["live"]) == (
        split.url, split.player_url, "live", True)
    assert (body["players"], body["peak_players"], body["reconnects"], body["media_stalls"]) == (3, 5, 2, 1)
    assert (body["origin_transport"], body["packets_in"], body["bytes_in"]) == ("tcp", 10, 999)
    assert body["ended_at"] is None and body["end_reason"] == ""
    assert viewer_client.get(f"{URL}987654/").status_code == 404


def test_filters_live_state_node_and_url(viewer_client):
    node = ProxyNodeFactory(name="edge-2")
    live = LiveSplitFactory(url="rtsp://127.0.0.1:8600/news", player_url="rtsp://proxy/tv/news")
    reconnecting = LiveSplitFactory(node=node, state="reconnecting")
    ended = LiveSplitFactory(state="ended", players=0, ended_at=timezone.now(), end_reason="linger_expired")
    assert sorted(ids(viewer_client, live="true")) == sorted([live.id, reconnecting.id])
    assert ids(viewer_client, live="false") == [ended.id]
    assert ids(viewer_client, state="reconnecting") == [reconnecting.id]
    assert ids(viewer_client, node=node.id) == [reconnecting.id]
    assert ids(viewer_client, url="8600/news") == [live.id]
    assert ids(viewer_client, url="tv/news") == [live.id]  # the player-facing URL too
    assert viewer_client.get(URL, {"state": "exploded"}).status_code == 400


def test_ordering(viewer_client):
    few = LiveSplitFactory(players=1, started_at=BASE_TIME)
    many = LiveSplitFactory(players=90, started_at=BASE_TIME - dt.timedelta(hours=1))
    assert ids(viewer_client) == [few.id, many.id]  # newest first
    assert ids(viewer_client, ordering="-players") == [many.id, few.id]
    assert ids(viewer_client, ordering="players") == [few.id, many.id]


def test_list_query_count_is_constant(viewer_client, assert_list_queries_constant):
    node = ProxyNodeFactory()
    assert_list_queries_constant(viewer_client, URL, lambda n: LiveSplitFactory.create_batch(n, node=node))
