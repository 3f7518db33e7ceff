"""Dashboard summary figures (read-only queries)."""

import datetime as dt

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState
from appliance.nodes.models import ProxyNode
from appliance.playback.selectors import live_sessions
from appliance.playback.tasks import cache_hit_ratio
from appliance.uplink.models import UplinkEvent, UplinkState

NODE_FRESH_SECONDS = 120  # a node that reported within this window counts towards current bandwidth


def dashboard_summary() -> dict:
    now = timezone.now()
    recent_nodes = ProxyNode.objects.filter(last_seen__gte=now - dt.timedelta(seconds=NODE_FRESH_SECONDS))
    ratio = cache_hit_ratio(since=now - dt.timedelta(seconds=settings.APPLIANCE_HIT_RATIO_WINDOW))
    cache_bytes = (CachedContent.objects.exclude(state__in=[ContentState.PURGED, ContentState.PURGING])
                   .aggregate(total=Sum("size_bytes"))["total"])
    return {
        "active_sessions": live_sessions().count(),
        "bandwidth_bps": recent_nodes.aggregate(total=Sum("load_bandwidth_bps"))["total"] or 0,
        "hit_ratio": ratio,
        "cache_bytes": cache_bytes or 0,
        "uplink_backlog": UplinkEvent.objects.filter(state__in=[UplinkState.PENDING, UplinkState.SENDING]).count(),
        "uplink_failed": UplinkEvent.objects.filter(state=UplinkState.FAILED).count(),
    }
