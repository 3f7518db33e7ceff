"""Beat tasks for the traffic history; both are safe to run again at any time."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from appliance.history import probes, services


@shared_task(name="history.rollup", ignore_result=True, soft_time_limit=50, time_limit=60)
def rollup() -> int:
    return services.history_rollup(
        now=timezone.now(), lookback_minutes=settings.APPLIANCE_HISTORY_LOOKBACK_MINUTES
    )


@shared_task(name="history.prune", ignore_result=True, soft_time_limit=120, time_limit=180)
def prune() -> int:
    keep = {
        "minute": dt.timedelta(hours=settings.APPLIANCE_HISTORY_MINUTE_RETENTION_HOURS),
        "hour": dt.timedelta(days=settings.APPLIANCE_HISTORY_HOUR_RETENTION_DAYS),
        "day": dt.timedelta(days=settings.APPLIANCE_HISTORY_DAY_RETENTION_DAYS),
    }
    now = timezone.now()
    pruned = services.history_prune(now=now, keep=keep, limit=settings.APPLIANCE_HISTORY_PRUNE_BATCH)
    return pruned + probes.origin_checks_prune(
        older_than=now - keep["minute"], limit=settings.APPLIANCE_HISTORY_PRUNE_BATCH
    )


@shared_task(name="history.probe_origins", ignore_result=True, soft_time_limit=20, time_limit=30)
def probe_origins() -> int:
    """Beat: one probe_origin task per allowed origin."""
    ids = probes.origins_to_probe(limit=settings.APPLIANCE_DASHBOARD_MAX_ROWS)
    for origin_id in ids:
        probe_origin.delay(origin_id)
    return len(ids)


@shared_task(name="history.probe_origin", ignore_result=True, soft_time_limit=30, time_limit=45)
def probe_origin(origin_id: int) -> bool | None:
    check = probes.origin_probe(
        origin_id=origin_id, timeout=float(settings.APPLIANCE_ORIGIN_TIMEOUT), now=timezone.now()
    )
    return None if check is None else check.ok
