from django.utils import timezone
from django.views.generic import TemplateView

from appliance.nodes.selectors import node_list
from appliance.playback.selectors import live_sessions, live_splits
from appliance.ui.mixins import ViewerRequiredMixin
from appliance.ui.summary import dashboard_summary

LIVE_PANEL_ROWS = 200


class DashboardView(ViewerRequiredMixin, TemplateView):
    template_name = "ui/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["summary"] = dashboard_summary()
        context["sessions"] = live_sessions().order_by("-started_at")[:LIVE_PANEL_ROWS]
        context["splits"] = live_splits().order_by("-started_at", "-pk")[:LIVE_PANEL_ROWS]
        context["nodes"] = node_list(now=timezone.now()).order_by("name")
        return context
