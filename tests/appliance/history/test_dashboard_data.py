"""The dashboard's JSON: charts data from the same selector as the API, node and origin health, live state."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState
from appliance.history.models import TrafficBucket
from appliance.nodes.selectors import node_status
from appliance.origins.models import Origin
from tests.appliance.factories import LiveSplitFactory, ProxyNodeFactory, StreamSessionFactory
from tests.appliance.tasks.rtsp_responder import RtspResponder

pytestmark = pytest.mark.django_db


@pytest.fixture
def responder():
    server = RtspResponder().start()
    yield server
    server.stop()


@pytest.fixture
def logged_in(client, viewer):
    client.force_login(viewer)
    return client


@pytest.mark.parametrize(
    ("age", "status"),
    [(None, "offline"), (5, "online"), (60, "online"), (61, "stale"), (300, "stale"), (301, "offline")],
)
def test_node_status_by_last_report(settings, age, status):
    settings.APPLIANCE_NODE_STALE_SECONDS, settings.APPLIANCE_NODE_OFFLINE_SECONDS = 60, 300
    now = timezone.now()
    assert node_status(None if age is None else now - dt.timedelta(seconds=age), now) == status


def test_charts_data_equals_the_api_and_lists_top_content_and_origins(logged_in):
    node = ProxyNodeFactory(name="n1")
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=2)
    TrafficBucket.objects.create(
        node=node,
        grain="minute",
        start=minute,
        bytes_out=6_000_000,
        cache_bytes_out=1_500_000,
        requests=3,
        cache_requests=1,
        sessions=2,
        players=2,
    )
    origin = Origin.objects.create(name="gst", base_url="rtsp://o/", route_prefix="/vod")
    for url, n, ended in (("rtsp://p/vod/a", 2, None), ("rtsp://p/vod/b", 1, now)):
        for _ in range(n):
            StreamSessionFactory(
                node=node,
                url=url,
                origin=origin,
                started_at=now - dt.timedelta(minutes=1),
                ended_at=ended,
                bytes_out=1000 * n,
                end_reason="origin_error" if ended else "",
            )
    charts = logged_in.get(reverse("ui:dashboard-charts"), {"range": "1h"}).json()
    api = logged_in.get("/api/v1/history/", {"range": "1h"}).json()
    assert [(p["start"][:16], p["bytes_out"], p["hit_ratio_bytes"]) for p in charts["points"]] == [
        (p["start"][:16], p["bytes_out"], p["hit_ratio_bytes"]) for p in api["points"]
    ]
    assert charts["points"][0]["hit_ratio_bytes"] == 0.25
    assert [(r["url"], r["sessions"]) for r in charts["top_now"]] == [("rtsp://p/vod/a", 2)]
    assert [(r["url"], r["bytes_out"]) for r in charts["top_range"]] == [
        ("rtsp://p/vod/a", 4000),
        ("rtsp://p/vod/b", 1000),
    ]
    assert charts["origins"] == [
        {
            "origin": "gst",
            "sessions": 3,
            "errors": 1,
            "reconnects": 0,
            "error_ratio": pytest.approx(1 / 3),
            "latency_ms": None,
            "probes_failed": 0,
            "last_probe": None,
        }
    ]
    assert logged_in.get(reverse("ui:dashboard-charts"), {"range": "forever"}).status_code == 400


def test_live_state_has_sessions_splits_and_node_health(logged_in, settings):
    settings.APPLIANCE_CACHE_QUOTA_BYTES = 1000
    now = timezone.now()
    online = ProxyNodeFactory(name="a-online", last_seen=now, load_sessions=2, load_bandwidth_bps=5000)
    ProxyNodeFactory(
        name="b-gone", last_seen=now - dt.timedelta(hours=1), load_sessions=9, load_bandwidth_bps=9000
    )
    CachedContent.objects.create(node=online, url="rtsp://o/x", state=ContentState.COMPLETE, size_bytes=250)
    CachedContent.objects.create(node=online, url="rtsp://o/y", state=ContentState.PURGED, size_bytes=700)
    TrafficBucket.objects.create(
        node=online, grain="minute", start=now.replace(second=0, microsecond=0), spool_bytes=4096
    )
    StreamSessionFactory(node=online, session_id="live-1", started_at=now)
    LiveSplitFactory(node=online, split_id="sp-1")
    state = logged_in.get(reverse("ui:live-state")).json()
    assert [s["session_id"] for s in state["sessions"]] == ["live-1"]
    assert [s["split_id"] for s in state["splits"]] == ["sp-1"]
    assert state["summary"]["active_sessions"] == 1
    nodes = {n["node"]: n for n in state["nodes"]}
    assert (
        nodes["a-online"]["status"],
        nodes["a-online"]["sessions"],
        nodes["a-online"]["cache_use"],
        nodes["a-online"]["spool_bytes"],
    ) == ("online", 2, 0.25, 4096)
    assert (nodes["b-gone"]["status"], nodes["b-gone"]["sessions"], nodes["b-gone"]["bandwidth_bps"]) == (
        "offline",
        0,
        0,
    )


def test_dashboard_data_needs_a_login(client):
    assert client.get(reverse("ui:live-state")).status_code == 302
    assert client.get(reverse("ui:dashboard-charts")).status_code == 302


def test_an_origin_probe_times_an_options_round_trip_and_the_origin_health_shows_it(responder, logged_in):
    from appliance.history import probes

    origin = Origin.objects.create(name="scripted", base_url=responder.url("/vod/"), route_prefix="/s")
    down = Origin.objects.create(name="down", base_url="rtsp://127.0.0.1:9/", route_prefix="/d")
    Origin.objects.create(name="blocked", base_url="rtsp://127.0.0.1:9/", route_prefix="/b", allowed=False)
    assert probes.origins_to_probe(limit=10) == [origin.pk, down.pk]
    now = timezone.now()
    ok = probes.origin_probe(origin_id=origin.pk, timeout=5.0, now=now)
    failed = probes.origin_probe(origin_id=down.pk, timeout=2.0, now=now)
    assert [r.method for r in responder.requests] == ["OPTIONS"]
    assert responder.requests[0].headers["user-agent"].startswith("WMCacheProxy/")
    assert ok.ok and ok.status == 200 and 0 < ok.latency_ms < 5000
    assert not failed.ok and failed.status is None and failed.latency_ms is None and failed.error
    charts = logged_in.get(reverse("ui:dashboard-charts"), {"range": "1h"}).json()
    health = {o["origin"]: o for o in charts["origins"]}
    assert health["scripted"]["latency_ms"] == pytest.approx(ok.latency_ms)
    assert health["scripted"]["last_probe"]["ok"] is True and health["down"]["probes_failed"] == 1
    assert health["blocked"]["last_probe"] is None


def test_collectstatic_ships_chartjs_and_not_the_unused_highcharts(tmp_path, settings):
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    assert (tmp_path / "js" / "Chart.min.js").read_bytes().startswith(b"/*!\n * Chart.js")
    assert not list(tmp_path.rglob("highcharts*")) and not list(tmp_path.rglob("excanvas.js"))


def test_live_stats_publish_the_hit_ratio_by_bytes_from_the_history(monkeypatch, settings):
    from appliance.playback import live, tasks

    settings.APPLIANCE_HIT_RATIO_WINDOW = 3600
    node = ProxyNodeFactory(name="n1", last_seen=timezone.now())
    recent = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    TrafficBucket.objects.create(node=node, grain="minute", start=recent, bytes_out=1000, cache_bytes_out=900,
                                 requests=10, cache_requests=2)
    TrafficBucket.objects.create(node=node, grain="minute", start=recent - dt.timedelta(hours=2),
                                 bytes_out=10**9, cache_bytes_out=0)  # outside the window
    published = []
    monkeypatch.setattr(live, "publish", lambda event, payload: published.append((event, payload)))
    tasks.publish_live_stats()
    ratio = dict(published)["cache.hit_ratio"]
    assert ratio == {"ratio": 0.9, "ratio_requests": 0.2, "cache_bytes_out": 900, "bytes_out": 1000,
                     "window_seconds": 3600}
