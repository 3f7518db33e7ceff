from django.shortcuts import get_object_or_404
from django.urls import reverse

from appliance.playback.filters import StreamSessionFilterSet
from appliance.playback.models import StreamSession
from appliance.playback.selectors import session_list
from appliance.playback.services import session_terminate
from appliance.ui.mixins import FilteredListView, ServiceActionView


class SessionListView(FilteredListView):
    template_name = "ui/session_list.html"
    filterset_class = StreamSessionFilterSet

    def base_queryset(self):
        return session_list().order_by("-started_at", "-pk")


class SessionTerminateView(ServiceActionView):
    success_message = "Termination requested; the node ends the session at its next snapshot."

    def perform(self, request, actor, pk):
        session_terminate(session=get_object_or_404(StreamSession, pk=pk), actor=actor)

    def success_url(self, **kwargs):
        return reverse("ui:session-list")
