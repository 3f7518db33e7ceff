"""A node that stopped reporting stops counting: its last load is zeroed and the dashboard told so."""

import datetime as dt

import pytest
from django.utils import timezone

from appliance.nodes.models import ProxyNode
from appliance.playback import live
from appliance.playback.tasks import publish_live_stats

pytestmark = pytest.mark.django_db


def test_an_offline_nodes_bandwidth_is_zeroed_and_published(monkeypatch, settings):
    settings.APPLIANCE_NODE_OFFLINE_SECONDS = 300
    now = timezone.now()
    gone = ProxyNode.objects.create(name="gone", token_hash="1" * 64, load_sessions=3,
                                    load_bandwidth_bps=9_000_000, last_seen=now - dt.timedelta(seconds=301))
    here = ProxyNode.objects.create(name="here", token_hash="2" * 64, last_seen=now,
                                    load_sessions=1, load_bandwidth_bps=2_000_000)
    published = []
    monkeypatch.setattr(live, "publish", lambda event, payload: published.append((event, payload)))

    publish_live_stats()
    gone.refresh_from_db()
    here.refresh_from_db()
    assert (gone.load_sessions, gone.load_bandwidth_bps) == (0, 0)
    assert (here.load_sessions, here.load_bandwidth_bps) == (1, 2_000_000)
    bandwidth = {p["node"]: p for e, p in published if e == "node.bandwidth"}
    assert bandwidth["gone"] == {"node": "gone", "sessions": 0, "bandwidth_bps": 0}
    assert bandwidth["here"]["bandwidth_bps"] == 2_000_000

    published.clear()
    publish_live_stats()
    assert "gone" not in {p["node"] for e, p in published if e == "node.bandwidth"}  # zeroed once
