import csv
import datetime as dt
import io

import pytest

from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/playlogs/"


def test_permissions(anon_client, norole_client, viewer_client):
    assert anon_client.get(URL).status_code == 401
    assert anon_client.get(URL, {"format": "csv"}).status_code == 401
    assert norole_client.get(f"{URL}export/").status_code == 403
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.get(f"{URL}123456/").status_code == 404


def test_errors_stay_json_when_csv_was_asked_for(anon_client):
    response = anon_client.get(URL, {"format": "csv"})
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_filters_by_time_url_player_and_origin(viewer_client):
    origin = OriginFactory()
    early = PlayLogFactory(logged_at=BASE_TIME, url="rtsp://p/a", c_ip="192.0.2.1")
    late = PlayLogFactory(logged_at=BASE_TIME + dt.timedelta(hours=2), url="rtsp://p/b", origin=origin,
                          c_playerid="{3300AD50-2C39-46c0-AE0A-AAAAAAAAAAAA}")
    def ids(**params):
        response = viewer_client.get(URL, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]
    since = (BASE_TIME + dt.timedelta(hours=1)).isoformat()
    assert ids(since=since) == [late.id]
    assert ids(until=since) == [early.id]
    assert ids(url="rtsp://p/a") == [early.id]
    assert ids(player="192.0.2.1") == [early.id]
    assert ids(player="{3300AD50-2C39-46c0-AE0A-AAAAAAAAAAAA}") == [late.id]
    assert ids(origin=origin.id) == [late.id]
    assert viewer_client.get(URL, {"since": "yesterday"}).status_code == 400


def test_detail_includes_raw_xml(viewer_client):
    log = PlayLogFactory(raw="<XML><c-ip>0.0.0.0</c-ip></XML>")
    body = viewer_client.get(f"{URL}{log.id}/").json()
    assert body["raw"] == "<XML><c-ip>0.0.0.0</c-ip></XML>"
    assert "raw" not in viewer_client.get(URL).json()["results"][0]


@pytest.mark.parametrize("path,params", [(URL, {"format": "csv"}), (f"{URL}export/", {})])
def test_csv_export_respects_filters(viewer_client, path, params):
    node = ProxyNodeFactory(name="edge-9")
    PlayLogFactory(node=node, url="rtsp://p/a", x_duration=61, c_ip="192.0.2.5", cs_user_agent="WMP,\"12\"")
    PlayLogFactory(node=node, url="rtsp://p/b")
    response = viewer_client.get(path, {**params, "url": "rtsp://p/a"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert (rows[0]["node"], rows[0]["url"], rows[0]["x_duration"], rows[0]["c_ip"]) == (
        "edge-9", "rtsp://p/a", "61", "192.0.2.5")
    assert rows[0]["cs_user_agent"] == 'WMP,"12"'
    assert rows[0]["filesize"] == ""


def test_list_query_count_is_constant(viewer_client, assert_list_queries_constant):
    node, origin = ProxyNodeFactory(), OriginFactory()
    assert_list_queries_constant(viewer_client, URL,
                                 lambda n: PlayLogFactory.create_batch(n, node=node, origin=origin))


def test_the_list_count_stops_at_the_cap_and_says_so(viewer_client, client, viewer, settings):
    from django.urls import reverse

    settings.APPLIANCE_PLAYLOG_COUNT_MAX = 100
    node = ProxyNodeFactory()
    PlayLogFactory.create_batch(101, node=node, url="rtsp://p/many")
    PlayLogFactory.create_batch(3, node=node, url="rtsp://p/few")
    capped = viewer_client.get(URL, {"page_size": 40}).json()
    assert (capped["count"], capped["count_capped"], len(capped["results"])) == (100, True, 40)
    assert "page=2" in capped["next"]
    # a later page counts one page past itself: following `next` reaches every row
    second = viewer_client.get(URL, {"page_size": 40, "page": 2}).json()
    assert (second["count"], second["count_capped"], len(second["results"])) == (104, False, 40)
    last = viewer_client.get(URL, {"page_size": 40, "page": 3}).json()
    assert (len(last["results"]), last["next"]) == (24, None)
    seen = {row["id"] for page in (capped, second, last) for row in page["results"]}
    assert len(seen) == 104
    assert viewer_client.get(URL, {"page_size": 40, "page": 4}).status_code == 404  # past the end
    settings.APPLIANCE_PLAYLOG_EXPORT_MAX_ROWS = 100  # the deepest row a page may count to
    third = viewer_client.get(URL, {"page_size": 40, "page": 3}).json()
    assert (third["count"], third["count_capped"], third["next"]) == (100, True, None)
    exact = viewer_client.get(URL, {"url": "rtsp://p/few"}).json()
    assert (exact["count"], exact["count_capped"]) == (3, False)
    client.force_login(viewer)
    page = client.get(reverse("ui:playlog-list")).content.decode()
    assert "page 1 of 2+" in page


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_list_rows_are_what_the_model_serializer_makes(viewer_client, settings, zone):
    """The list's fast to_representation gives ModelSerializer's own output: names, nulls, dates (in the
    current zone), addresses."""
    from rest_framework import serializers

    from appliance.playback.api.playlogs import PlayLogDetailSerializer, PlayLogSerializer
    from appliance.playback.selectors import playlog_rows
    from tests.appliance.factories import StreamSessionFactory

    settings.TIME_ZONE = zone

    origin = OriginFactory(name="wms")
    PlayLogFactory(origin=origin, session=StreamSessionFactory(session_id="sid-7"), c_ip="2001:db8::1",
                   x_duration=None, c_playerid="{ABC}")
    PlayLogFactory(origin=None, c_ip=None, avgbandwidth=123)
    body = viewer_client.get(URL).json()["results"]
    stock = [serializers.ModelSerializer.to_representation(PlayLogSerializer(), row)
             for row in playlog_rows().order_by("-logged_at", "-id")]
    assert body == stock and {"wms", None} == {row["origin"] for row in body}
    assert body[0]["logged_at"].endswith("Z" if zone == "UTC" else ("-05:00", "-04:00"))
    assert "sid-7" in {row["session"] for row in body} and None in {row["x_duration"] for row in body}
    first = playlog_rows().order_by("pk").first()
    detail = viewer_client.get(f"{URL}{first.pk}/").json()
    assert detail == serializers.ModelSerializer.to_representation(PlayLogDetailSerializer(), first)
    assert "raw" in detail
