"""Celery tasks for cached content. Each takes ids, calls one service and is safe to run twice."""

from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from appliance.content import task_services


@shared_task(name="content.revalidate_due", ignore_result=True, soft_time_limit=30, time_limit=60)
def revalidate_due() -> int:
    """Beat: claim a bounded batch of content due for revalidation; re-queue while a full batch came back."""
    batch = settings.APPLIANCE_REVALIDATE_BATCH
    with transaction.atomic():
        ids = task_services.content_claim_due_for_revalidation(now=timezone.now(), limit=batch)
        for content_id in ids:
            transaction.on_commit(partial(revalidate_content.delay, content_id))
        if len(ids) >= batch:
            transaction.on_commit(revalidate_due.delay)
    return len(ids)


@shared_task(name="content.revalidate_content", ignore_result=True, acks_late=True,
             soft_time_limit=60, time_limit=90)
def revalidate_content(content_id: int) -> str | None:
    verdict = task_services.content_revalidate(content_id=content_id)
    return verdict.outcome if verdict else None


@shared_task(name="content.housekeeping", ignore_result=True, soft_time_limit=120, time_limit=180)
def housekeeping() -> dict:
    batch = settings.APPLIANCE_REVALIDATE_BATCH * 10
    return {
        "expired": task_services.content_expire_overdue(now=timezone.now(), limit=batch),
        "over_quota": task_services.content_enforce_quota(quota_bytes=settings.APPLIANCE_CACHE_QUOTA_BYTES,
                                                          limit=batch),
    }
