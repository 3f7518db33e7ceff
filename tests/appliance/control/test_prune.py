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
