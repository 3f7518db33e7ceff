"""The periodic live stats carry the count of every live session (the dashboard card's reset)."""

import pytest
from django.utils import timezone

from appliance.nodes.models import ProxyNode
from appliance.playback import live
from appliance.playback.models import StreamSession
from appliance.playback.tasks import publish_live_stats

pytestmark = pytest.mark.django_db


def test_live_stats_count_every_live_session(monkeypatch):
    node = ProxyNode.objects.create(name="n", token_hash="1" * 64, last_seen=timezone.now())
    now = timezone.now()
    StreamSession.objects.bulk_create([StreamSession(node=node, session_id=f"s{i}", started_at=now)
                                       for i in range(250)])
    StreamSession.objects.create(node=node, session_id="done", started_at=now, ended_at=now)
    StreamSession.objects.create(node=node, session_id="not-playing-yet")
    published = []
    monkeypatch.setattr(live, "publish", lambda event, payload: published.append((event, payload)))
    publish_live_stats()
    assert ("sessions.active", {"count": 250}) in published
