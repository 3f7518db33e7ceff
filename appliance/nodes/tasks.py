"""Periodic node checks."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from appliance.nodes.services import nodes_close_lost


@shared_task(name="nodes.close_lost", ignore_result=True, soft_time_limit=60, time_limit=90)
def close_lost() -> int:
    """Offline nodes' open sessions and splits end as `node_lost` (safe to repeat: only open rows change)."""
    return nodes_close_lost(now=timezone.now(), limit=settings.APPLIANCE_NODE_CHECK_BATCH).nodes
