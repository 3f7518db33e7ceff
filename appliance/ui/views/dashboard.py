from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from appliance.history.filters import PRESET_LABELS, TrafficFilterSet
from appliance.history.health import node_health, origin_health, top_content_now, top_content_range
from appliance.history.selectors import traffic_buckets, traffic_series, traffic_totals
from appliance.playback.selectors import live_sessions, live_splits
from appliance.playback.services import live_payload
from appliance.playback.split_services import split_live_payload
from appliance.ui.mixins import ViewerRequiredMixin
from appliance.ui.summary import dashboard_summary

CHART_RANGES = {key: PRESET_LABELS[key] for key in ("1h", "24h", "7d")}


def _json(body: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, encoder=DjangoJSONEncoder)


def live_state() -> dict:
    """Everything the live panels show, as of now: the page loads it and reloads it after a reconnect."""
    limit = settings.APPLIANCE_DASHBOARD_MAX_ROWS
    sessions = live_sessions().order_by("-started_at")[:limit]
    splits = live_splits().order_by("-started_at", "-pk")[:limit]
    return {
        "summary": dashboard_summary(),
        "sessions": [live_payload(s.node, s) for s in sessions],
        "splits": [split_live_payload(s) for s in splits],
        "nodes": node_health(now=timezone.now()),
    }


class DashboardView(ViewerRequiredMixin, TemplateView):
    template_name = "ui/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(live_state())
        context["disk_full_nodes"] = [n["node"] for n in context["nodes"] if n["cache_disk_full"]]
        context["chart_ranges"] = CHART_RANGES
        return context


class LiveStateView(ViewerRequiredMixin, View):
    def get(self, request):
        return _json(live_state())


class DashboardChartsView(ViewerRequiredMixin, View):
    """The charts' data for one range: the history series (same FilterSet and selector as /api/v1/history/),
    top content now and over the range, per-origin health over the range."""

    def get(self, request):
        filterset = TrafficFilterSet(request.GET or {"range": "1h"}, queryset=traffic_buckets())
        if not filterset.is_valid():
            return _json({"errors": filterset.errors}, status=400)
        grain, since, until = filterset.window()
        points = traffic_series(buckets=filterset.qs, grain=grain)
        top = settings.APPLIANCE_DASHBOARD_TOP_CONTENT
        return _json(
            {
                "grain": grain,
                "since": since,
                "until": until,
                "points": points,
                "totals": traffic_totals(points),
                "top_now": top_content_now(limit=top),
                "top_range": top_content_range(since=since, until=until, limit=top),
                "origins": origin_health(since=since),
            }
        )
