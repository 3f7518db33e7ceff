"""The same batch posted concurrently (a proxyd retry racing a slow first attempt) is applied once."""
import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from appliance.control.models import ReportEvent
from appliance.playback.models import StreamSession
from appliance.uplink.models import UplinkEvent


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_batches_are_applied_once(node, make_event):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL feature; SQLite serialises writers anyway")
    events = [make_event("session.started", session_id="s1", url="rtsp://p/a", origin_url="rtsp://o/a"),
              make_event("sendevent", session_id="s1", url="rtsp://p/a", origin_url="rtsp://o/a",
                         event_type="remote-open", body="<x/>", subscribed=True)]
    body = {"schema_version": 1, "node": {"name": node.name}, "events": events}
    start = threading.Barrier(4)
    results: list = []

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {node.token}")
        try:
            start.wait(timeout=10)
            results.append(client.post("/internal/v1/reports", body, format="json").json())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4
    assert sum(r["accepted"] for r in results) == 2
    assert sum(r["duplicates"] for r in results) == 6
    assert ReportEvent.objects.count() == 2
    assert StreamSession.objects.count() == 1
    assert UplinkEvent.objects.count() == 1
