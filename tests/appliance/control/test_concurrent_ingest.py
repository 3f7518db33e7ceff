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


@pytest.mark.django_db(transaction=True)
def test_two_nodes_reporting_purged_at_once_finish_the_purge(node):
    """Node A's report is applied but not committed when node B's arrives: B must wait for A (the
    purge row lock) and then see A's copy purged, or neither would finish the purge."""
    import datetime as dt
    import time

    from django.db import transaction

    from appliance.content.models import PurgeRequest
    from appliance.content.services import content_apply_change
    from tests.appliance.factories import CachedContentFactory, ProxyNodeFactory

    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL feature")
    url = "rtsp://o/clip"
    other = ProxyNodeFactory(name="node-2")
    for holder in (node, other):
        CachedContentFactory(node=holder, url=url, state="purging")
    purge = PurgeRequest.objects.create(url=url)
    at = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    a_applied, b_finished = threading.Event(), threading.Event()

    def backend_waits_on_a_lock() -> bool:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else cached for the whole transaction
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            return cursor.fetchone()[0] > 0

    def report_a() -> None:
        try:
            with transaction.atomic():
                content_apply_change(node=node, data={"url": url, "state": "purged"}, seq=1, at=at)
                a_applied.set()
                # commit only once B is blocked behind us (fixed) or done without us (the race)
                deadline = time.monotonic() + 20
                while not (b_finished.is_set() or backend_waits_on_a_lock()) and time.monotonic() < deadline:
                    threading.Event().wait(0.02)  # polling the server's lock table: no event to wait on
        finally:
            connections.close_all()

    def report_b() -> None:
        try:
            assert a_applied.wait(10)
            with transaction.atomic():
                content_apply_change(node=other, data={"url": url, "state": "purged"}, seq=1, at=at)
        finally:
            b_finished.set()
            connections.close_all()

    threads = [threading.Thread(target=report_a), threading.Thread(target=report_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert PurgeRequest.objects.get(pk=purge.pk).state == "done"
