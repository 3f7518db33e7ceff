"""Read-mostly pages: nodes, uplink backlog, audit log."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from appliance.core.models import AuditLog
from appliance.nodes.selectors import node_list
from appliance.ui.mixins import FilteredListView, ServiceActionView
from appliance.uplink.filters import UplinkEventFilterSet
from appliance.uplink.models import UplinkEvent
from appliance.uplink.selectors import uplink_event_list
from appliance.uplink.services import uplink_retry


class NodeListView(FilteredListView):
    template_name = "ui/node_list.html"

    def base_queryset(self):
        return node_list(now=timezone.now()).order_by("name")


class UplinkListView(FilteredListView):
    template_name = "ui/uplink_list.html"
    filterset_class = UplinkEventFilterSet

    def base_queryset(self):
        return uplink_event_list().select_related("origin", "node").order_by("-pk")


class UplinkRetryView(ServiceActionView):
    success_message = "Event queued again."

    def perform(self, request, actor, pk):
        uplink_retry(event=get_object_or_404(UplinkEvent, pk=pk), actor=actor, now=timezone.now())

    def success_url(self, **kwargs):
        return reverse("ui:uplink-list")


class AuditListView(FilteredListView):
    template_name = "ui/audit_list.html"

    def base_queryset(self):
        return AuditLog.objects.order_by("-at", "-id")
