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
