import datetime as dt

import pytest
from django.utils import timezone

from appliance.control.models import ReportEvent
from appliance.control.services import report_events_prune

pytestmark = pytest.mark.django_db


def test_prune_forgets_only_old_ids_in_bounded_steps(make_event, post_batch):
    post_batch([make_event("future.kind") for _ in range(5)])
    old = timezone.now() - dt.timedelta(days=40)
    ReportEvent.objects.filter(id__in=list(ReportEvent.objects.order_by("id").values_list("id", flat=True)[:3])
                               ).update(received_at=old)
    cutoff = timezone.now() - dt.timedelta(days=30)
    assert report_events_prune(older_than=cutoff, limit=2) == 2
    assert report_events_prune(older_than=cutoff, limit=2) == 1
    assert report_events_prune(older_than=cutoff, limit=2) == 0
    assert ReportEvent.objects.count() == 2


def test_beat_runs_the_prune_with_the_configured_retention(make_event, post_batch, settings):
    from appliance.celery import celery_app
    from appliance.control.tasks import prune_report_events

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "control.prune_report_events" in scheduled
    assert "control.prune_report_events" in celery_app.tasks
    settings.APPLIANCE_REPORT_EVENT_RETENTION_DAYS = 3
    post_batch([make_event("future.kind") for _ in range(3)])
    ids = list(ReportEvent.objects.order_by("id").values_list("id", flat=True))
    ReportEvent.objects.filter(id=ids[0]).update(received_at=timezone.now() - dt.timedelta(days=4))
    ReportEvent.objects.filter(id=ids[1]).update(received_at=timezone.now() - dt.timedelta(days=2))
    assert prune_report_events() == 1
    assert list(ReportEvent.objects.order_by("id").values_list("id", flat=True)) == ids[1:]
    assert prune_report_events() == 0  # running again is harmless


def test_deleting_a_node_deletes_its_event_ids_and_keeps_the_others(make_event, post_batch, node):
    """The event ids' node column has no database constraint (ingest speed): the ORM's CASCADE removes them."""
    from appliance.nodes.models import ProxyNode
    from tests.appliance.factories import ProxyNodeFactory

    other = ProxyNodeFactory(name="node-2")
    events = [make_event("future.kind") for _ in range(3)]
    assert post_batch(events).json()["accepted"] == 3
    assert post_batch(events, client=_client_of(other)).json()["accepted"] == 3  # ids are per node
    ProxyNode.objects.filter(pk=node.pk).delete()
    assert list(ReportEvent.objects.values_list("node_id", flat=True).distinct()) == [other.pk]
    assert ReportEvent.objects.count() == 3
    assert post_batch(events, client=_client_of(other)).json() == {"accepted": 0, "duplicates": 3}


def _client_of(node):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {node.token}")
    return client
