"""Beat tasks for the traffic history; both are safe to run again at any time."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from appliance.history import services


@shared_task(name="history.rollup", ignore_result=True, soft_time_limit=50, time_limit=60)
def rollup() -> int:
    return services.history_rollup(now=timezone.now(), lookback_minutes=settings.APPLIANCE_HISTORY_LOOKBACK_MINUTES)


@shared_task(name="history.prune", ignore_result=True, soft_time_limit=120, time_limit=180)
def prune() -> int:
    keep = {"minute": dt.timedelta(hours=settings.APPLIANCE_HISTORY_MINUTE_RETENTION_HOURS),
            "hour": dt.timedelta(days=settings.APPLIANCE_HISTORY_HOUR_RETENTION_DAYS),
            "day": dt.timedelta(days=settings.APPLIANCE_HISTORY_DAY_RETENTION_DAYS)}
    return services.history_prune(now=timezone.now(), keep=keep, limit=settings.APPLIANCE_HISTORY_PRUNE_BATCH)
