"""Celery tasks of the internal API: forgetting old report event ids (de-duplication window)."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from appliance.control.services import report_events_prune


@shared_task(name="control.prune_report_events", ignore_result=True, soft_time_limit=60, time_limit=90)
def prune_report_events() -> int:
    """Beat: forget event ids older than APPLIANCE_REPORT_EVENT_RETENTION_DAYS, one bounded batch per run,
    re-queued while a full batch came back (safe to repeat: deleting what is gone is a no-op)."""
    batch = settings.APPLIANCE_REPORT_EVENT_PRUNE_BATCH
    cutoff = timezone.now() - dt.timedelta(days=settings.APPLIANCE_REPORT_EVENT_RETENTION_DAYS)
    deleted = report_events_prune(older_than=cutoff, limit=batch)
    if deleted >= batch:
        transaction.on_commit(prune_report_events.delay)
    return deleted
