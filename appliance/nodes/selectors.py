"""Node reads: online/offline is derived from last_seen (every report and snapshot poll sets it)."""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import BooleanField, Case, Q, QuerySet, Value, When

from appliance.nodes.models import ProxyNode


def offline_cutoff(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=settings.APPLIANCE_NODE_OFFLINE_AFTER)


def node_list(*, now: dt.datetime) -> QuerySet[ProxyNode]:
    """Every node, each with `online`: seen within APPLIANCE_NODE_OFFLINE_AFTER seconds."""
    return ProxyNode.objects.annotate(online=Case(When(last_seen__gte=offline_cutoff(now), then=Value(True)),
                                                  default=Value(False), output_field=BooleanField()))


def nodes_offline(*, now: dt.datetime) -> QuerySet[ProxyNode]:
    """Nodes that stopped reporting (or never did)."""
    return ProxyNode.objects.filter(Q(last_seen__lt=offline_cutoff(now)) | Q(last_seen__isnull=True))
