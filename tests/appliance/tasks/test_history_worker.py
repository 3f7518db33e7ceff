"""The traffic history's roll-up run by the real Celery worker's beat (autodiscovered, scheduled)."""

import datetime as dt

import pytest
from django.utils import timezone

from appliance.history.models import TrafficBucket
from appliance.nodes.models import ProxyNode
from appliance.playback.models import StreamSession
from tests.appliance.tasks.harness import wait_until

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def test_beat_rolls_up_open_sessions_into_minute_hour_and_day_rows(celery_worker_process):
    node = ProxyNode.objects.create(name="history-node", token_hash="7" * 64)
    now = timezone.now()
    for i, ip in enumerate(("10.1.0.1", "10.1.0.1", "10.1.0.2")):
        StreamSession.objects.create(
            node=node, session_id=f"s{i}", player_ip=ip, started_at=now - dt.timedelta(minutes=2)
        )

    def gauges():
        rows = TrafficBucket.objects.filter(node=node, sessions__gt=0)
        return {(r.grain, r.sessions, r.players) for r in rows} >= {
            ("minute", 3, 2),
            ("hour", 3, 2),
            ("day", 3, 2),
        }

    wait_until(gauges, timeout=40, what="the beat's history.rollup")
