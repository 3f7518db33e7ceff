"""Celery tasks for the uplink outbox (SendEvent to origins)."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from appliance.uplink import task_services


@shared_task(name="uplink.send_pending", ignore_result=True,
             soft_time_limit=settings.APPLIANCE_UPLINK_LEASE + 30, time_limit=settings.APPLIANCE_UPLINK_LEASE + 60)
def send_pending() -> int:
    """Beat: deliver one bounded batch; re-queue while a full batch came back."""
    batch = settings.APPLIANCE_UPLINK_BATCH
    claimed = task_services.uplink_send_batch(limit=batch)
    if claimed >= batch:
        transaction.on_commit(send_pending.delay)
    return claimed


@shared_task(name="uplink.prune_sent", ignore_result=True, soft_time_limit=60, time_limit=90)
def prune_sent() -> int:
    cutoff = timezone.now() - dt.timedelta(days=settings.APPLIANCE_UPLINK_SENT_RETENTION_DAYS)
    return task_services.uplink_prune_sent(older_than=cutoff, limit=10_000)
