import datetime as dt

import pytest

from appliance.content.models import CachedContent, PurgeRequest
from appliance.control.models import ReportEvent
from appliance.playback.models import PlayLog, StreamSession
from appliance.uplink.models import UplinkEvent
from tests.appliance.factories import OriginFactory

pytestmark = pytest.mark.django_db

SID = "node-1:8f0c"


def started(make_event, **overrides):
    data = {"session_id": SID, "url": "rtsp://proxy/vod/clip", "origin_url": "rtsp://127.0.0.1:8600/clip",
            "player_addr": "192.0.2.7:5000", "user_agent": "WMPlayer/12.0", "transports": ["udp", "udp"],
            "served_from": "cache"}
    return make_event("session.started", **{**data, **overrides})


def counters(make_event, kind="session.counters", seq=None, **values):
    data = {"session_id": SID, "bytes_out": 0, "packets_out": 0, "bytes_in": 0, "packets_in": 0,
            "packets_lost": 0, "jitter_ms": 0.0, **values}
    return make_event(kind, seq=seq, **data)


def test_batch_is_stored_once_however_often_it_is_sent(make_event, post_batch):
    events = [started(make_event), counters(make_event, bytes_out=100, packets_out=2)]
    first = post_batch(events)
    assert first.status_code == 200
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = post_batch(events)
    assert again.json() == {"accepted": 0, "duplicates": 2}
    assert ReportEvent.objects.count() == 2
    session = StreamSession.objects.get()
    assert (session.bytes_out, session.packets_out) == (100, 2)


def test_duplicate_ids_inside_one_batch_count_as_duplicates(make_event, post_batch):
    event = started(make_event)
    assert post_batch([event, event]).json() == {"accepted": 1, "duplicates": 1}


SPELLINGS = [str.upper, lambda text: "{" + text + "}", lambda text: text.replace("-", ""),
             lambda text: "urn:uuid:" + text]


@pytest.mark.parametrize("spelling", SPELLINGS, ids=["upper", "braces", "hex", "urn"])
def test_an_event_id_spelled_another_way_is_the_same_event(make_event, post_batch, spelling):
    event = started(make_event)
    respelled = {**event, "id": spelling(event["id"])}
    assert post_batch([respelled, event]).json() == {"accepted": 1, "duplicates": 1}
    assert post_batch([respelled]).json() == {"accepted": 0, "duplicates": 1}
    assert [str(ReportEvent.objects.get().event_id)] == [event["id"]]


def test_served_from_and_end_reason_of_another_json_type_are_left_empty(make_event, post_batch):
    start = started(make_event, served_from=["cache"])
    end = counters(make_event, kind="session.ended", end_reason={"teardown": 1})
    assert post_batch([start, end]).json() == {"accepted": 2, "duplicates": 0}
    session = StreamSession.objects.get()
    assert (session.served_from, session.end_reason, session.ended_at is not None) == ("", "", True)


def test_ended_before_started_builds_one_complete_session(make_event, post_batch):
    start = started(make_event)
    end = counters(make_event, kind="session.ended", bytes_out=5000, packets_lost=3, end_reason="teardown")
    assert post_batch([end]).json()["accepted"] == 1
    session = StreamSession.objects.get()
    assert session.ended_at is not None and session.started_at is None
    assert post_batch([start]).json()["accepted"] == 1
    session.refresh_from_db()
    assert StreamSession.objects.count() == 1
    assert session.url == "rtsp://proxy/vod/clip"
    assert session.player_ip == "192.0.2.7"
    assert session.transports == ["udp", "udp"]
    assert session.served_from == "cache"
    assert session.ended_at is not None and session.end_reason == "teardown"
    assert (session.bytes_out, session.packets_lost) == (5000, 3)


def test_stale_counters_are_ignored_by_seq(make_event, post_batch):
    newer = counters(make_event, seq=10, bytes_out=900)
    older = counters(make_event, seq=5, bytes_out=400)
    post_batch([started(make_event, seq=1), newer])
    post_batch([older])
    assert StreamSession.objects.get().bytes_out == 900


def test_out_of_order_events_within_a_batch_are_applied_in_seq_order(make_event, post_batch):
    events = [counters(make_event, seq=3, bytes_out=300), counters(make_event, seq=2, bytes_out=200),
              started(make_event, seq=1)]
    post_batch(events)
    assert StreamSession.objects.get().bytes_out == 300


def test_node_status_is_updated(node, make_event, post_batch):
    post_batch([], version="0.2.0", listen="0.0.0.0:554", load={"sessions": 7, "bandwidth_bps": 123})
    node.refresh_from_db()
    assert (node.version, node.listen, node.load_sessions, node.load_bandwidth_bps) == (
        "0.2.0", "0.0.0.0:554", 7, 123)
    assert node.last_seen is not None


def test_session_links_origin_by_longest_base_url(make_event, post_batch):
    OriginFactory(base_url="rtsp://127.0.0.1:8600/")
    deep = OriginFactory(base_url="rtsp://127.0.0.1:8600/live/")
    post_batch([started(make_event, origin_url="rtsp://127.0.0.1:8600/live/cam")])
    assert StreamSession.objects.get().origin == deep


def cache_changed(make_event, seq=None, **values):
    data = {"url": "rtsp://127.0.0.1:8600/clip", "state": "complete", "sdp": "v=0\r\n",
            "cache_control": "max-age=60", "last_modified": "Tue, 24 Nov 2026 10:00:00 GMT", "etag": '"e1"',
            "content_size": 123456, "size_bytes": 120000, "fetched_at": "2026-11-25T12:00:00Z",
            "expires_at": "2026-11-25T12:01:00Z", "hits": 3, "bytes_served": 360000, **values}
    return make_event("cache.changed", seq=seq, **data)


def test_cache_changed_upserts_content_and_ignores_older_events(node, make_event, post_batch):
    post_batch([cache_changed(make_event, seq=2, state="complete", hits=4)])
    post_batch([cache_changed(make_event, seq=1, state="filling", hits=0)])
    content = CachedContent.objects.get()
    assert (content.node, content.state, content.hits, content.content_size) == (node, "complete", 4, 123456)
    assert content.expires_at == dt.datetime(2026, 11, 25, 12, 1, tzinfo=dt.UTC)


def test_cache_purged_completes_matching_purge_requests(make_event, post_batch):
    exact = PurgeRequest.objects.create(url="rtsp://127.0.0.1:8600/clip")
    prefix = PurgeRequest.objects.create(url="rtsp://127.0.0.1:8600/", prefix=True)
    other = PurgeRequest.objects.create(url="rtsp://127.0.0.1:8600/other")
    post_batch([cache_changed(make_event, state="purged")])
    states = dict(PurgeRequest.objects.values_list("id", "state"))
    assert states == {exact.id: "done", prefix.id: "done", other.id: "pending"}


def test_a_purge_stays_pending_until_every_node_holding_the_url_purged_it(node, make_event, post_batch):
    from rest_framework.test import APIClient

    from tests.appliance.factories import CachedContentFactory, ProxyNodeFactory

    url = "rtsp://127.0.0.1:8600/clip"
    other = ProxyNodeFactory(name="node-2")
    CachedContentFactory(node=node, url=url, state="purging")
    CachedContentFactory(node=other, url=url, state="purging")
    CachedContentFactory(node=ProxyNodeFactory(name="retired", enabled=False), url=url, state="complete")
    purge = PurgeRequest.objects.create(url=url)
    post_batch([cache_changed(make_event, state="purged")])
    assert PurgeRequest.objects.get(pk=purge.pk).state == "pending"  # node-2 still holds it
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {other.token}")
    assert second.get("/internal/v1/snapshot").json()["purges"] == [{"id": purge.id, "url": url, "prefix": False}]
    post_batch([cache_changed(make_event, state="purged")], client=second)
    assert PurgeRequest.objects.get(pk=purge.pk).state == "done"


def test_cache_changed_with_unknown_state_is_ignored_not_fatal(make_event, post_batch):
    response = post_batch([cache_changed(make_event, state="exploded")])
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert not CachedContent.objects.exists()


WMLOG_FIELDS = {
    "c-ip": "192.0.2.7", "date": "2026-11-25", "time": "11:59:00", "cs-uri-stem": "rtsp://proxy/vod/clip",
    "c-starttime": "0", "x-duration": "61", "c-rate": "1", "c-status": "200",
    "c-playerid": "{3300AD50-2C39-46c0-AE0A-000000000001}", "c-playerversion": "12.0.7601.17514",
    "c-playerlanguage": "en-US", "cs-User-Agent": "WMPlayer/12.0", "c-hostexe": "wmplayer.exe",
    "c-os": "Windows", "filelength": "120", "filesize": "-", "avgbandwidth": "512000", "protocol": "rtsp",
    "transport": "UDP", "audiocodec": "Windows_Media_Audio_9", "c-pkts-received": "950",
    "c-pkts-lost-client": "50", "c-buffercount": "2", "c-totalbuffertime": "4", "c-quality": "95",
    "s-ip": "-", "s-cpu-util": "-", "s-proxied": "1", "c-rate-extra": "ignored",
}


def playlog(make_event, **overrides):
    data = {"session_id": SID, "url": "rtsp://proxy/vod/clip", "kind": "logplay", "log_type": "legacy",
            "player_addr": "192.0.2.7:5000", "user_agent": "WMPlayer/12.0", "raw": "<XML>...</XML>",
            "fields": WMLOG_FIELDS, "parse_error": None}
    return make_event("playlog", **{**data, **overrides})


def test_playlog_is_stored_with_typed_fields_and_linked_to_session(make_event, post_batch):
    post_batch([started(make_event), playlog(make_event)])
    log = PlayLog.objects.get()
    assert log.session == StreamSession.objects.get()
    assert log.c_ip == "192.0.2.7"
    assert log.logged_at == dt.datetime(2026, 11, 25, 11, 59, tzinfo=dt.UTC)
    assert (log.x_duration, log.avgbandwidth, log.c_pkts_lost_client, log.c_quality) == (61, 512000, 50, 95)
    assert log.filesize is None and log.s_ip is None and log.s_cpu_util is None
    assert log.s_proxied is True
    assert log.audiocodec == "Windows_Media_Audio_9"
    assert log.raw == "<XML>...</XML>" and log.parse_error == ""


def test_playlog_with_garbage_values_is_stored_leniently(make_event, post_batch):
    fields = {"c-ip": "not-an-ip", "date": "2026-13-45", "time": "25:99", "x-duration": "9" * 40,
              "c-status": "OK", "c-playerid": "x" * 500, "s-proxied": "maybe", "bogus": "1"}
    event = playlog(make_event, fields=fields, log_type="unknown", parse_error="mismatched tag", session_id=None)
    assert post_batch([event]).status_code == 200
    log = PlayLog.objects.get()
    assert log.c_ip is None and log.x_duration is None and log.c_status is None and log.s_proxied is None
    assert len(log.c_playerid) == 64
    assert log.session is None and log.parse_error == "mismatched tag"
    assert log.logged_at == dt.datetime.fromisoformat(event["at"])


def sendevent(make_event, **overrides):
    data = {"session_id": SID, "url": "rtsp://proxy/vod/clip", "origin_url": "rtsp://127.0.0.1:8600/clip",
            "event_type": "remote-log", "body": "<XML>rendering</XML>", "subscribed": True}
    return make_event("sendevent", **{**data, **overrides})


def test_subscribed_sendevent_goes_to_the_outbox_once(make_event, post_batch):
    origin = OriginFactory(base_url="rtsp://127.0.0.1:8600/")
    events = [sendevent(make_event), sendevent(make_event, subscribed=False)]
    post_batch(events)
    post_batch(events)
    uplink = UplinkEvent.objects.get()
    assert (uplink.state, uplink.origin, uplink.event_type, uplink.body) == (
        "pending", origin, "remote-log", "<XML>rendering</XML>")
    assert str(uplink.source_event_id) == events[0]["id"]
    assert uplink.session.session_id == SID


def test_unknown_event_kind_is_accepted_for_forward_compatibility(make_event, post_batch):
    assert post_batch([make_event("future.thing", x=1)]).json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize("body,field", [
    ({"schema_version": 2, "events": []}, "schema_version"),
    ({"events": []}, "schema_version"),
    ({"schema_version": 1}, "events"),
    ({"schema_version": 1, "events": [{"seq": 1, "at": "2026-11-25T12:00:00Z", "kind": "x", "data": {}}]},
     "events"),
    ({"schema_version": 1, "events": "nope"}, "events"),
])
def test_invalid_batches_get_400_with_field_errors(node_client, body, field):
    response = node_client.post("/internal/v1/reports", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not ReportEvent.objects.exists()


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_json_gets_400(node_client, payload):
    response = node_client.post("/internal/v1/reports", payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("parse_error", "invalid")


def test_batch_over_the_event_limit_is_rejected(settings, make_event, post_batch):
    settings.APPLIANCE_MAX_REPORT_EVENTS = 2
    response = post_batch([started(make_event) for _ in range(3)])
    assert response.status_code == 400
    assert "events" in response.json()["error"]["fields"]


def test_body_over_the_byte_limit_is_413(settings, make_event, post_batch):
    settings.APPLIANCE_MAX_REPORT_BYTES = 200
    response = post_batch([playlog(make_event)])
    assert response.status_code == 413


def test_origin_found_by_url_identity_whatever_the_spelling(make_event, post_batch):
    """Origins on 554 are written with and without the port; reports carry the normal form."""
    cam = OriginFactory(base_url="rtsp://Cam:554/live/")
    post_batch([started(make_event, origin_url="rtsp://cam/live/entrance")])
    assert StreamSession.objects.get().origin == cam


def test_cache_urls_kept_in_normal_form_and_purges_match_any_spelling(make_event, post_batch):
    exact = PurgeRequest.objects.create(url="rtsp://ORIGIN:554/clip/")
    prefix = PurgeRequest.objects.create(url="rtsp://origin:554/", prefix=True)
    other = PurgeRequest.objects.create(url="rtsp://origin:8554/clip")
    post_batch([cache_changed(make_event, seq=1, url="rtsp://origin:554/clip/", state="complete")])
    post_batch([cache_changed(make_event, seq=2, url="rtsp://origin/clip", state="purged")])
    assert list(CachedContent.objects.values_list("url", "state")) == [("rtsp://origin/clip", "purged")]
    states = dict(PurgeRequest.objects.values_list("id", "state"))
    assert states == {exact.id: "done", prefix.id: "done", other.id: "pending"}
