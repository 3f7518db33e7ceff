from django.shortcuts import get_object_or_404
from django.urls import reverse

from appliance.content.filters import CachedContentFilterSet
from appliance.content.models import CachedContent
from appliance.content.selectors import content_list
from appliance.content.services import content_prestuff, content_purge, content_revalidate
from appliance.core.exceptions import ApplicationError
from appliance.ui.forms import PrestuffForm
from appliance.ui.mixins import FilteredListView, ServiceActionView


class ContentListView(FilteredListView):
    template_name = "ui/content_list.html"
    filterset_class = CachedContentFilterSet

    def base_queryset(self):
        return content_list().select_related("node", "origin")

    def get_context_data(self, **kwargs):
        return super().get_context_data(prestuff_form=PrestuffForm(), **kwargs)


class _ContentAction(ServiceActionView):
    def content(self, pk) -> CachedContent:
        return get_object_or_404(CachedContent, pk=pk)

    def success_url(self, **kwargs):
        return reverse("ui:content-list")


class ContentPurgeView(_ContentAction):
    success_message = "Purge requested; nodes drop the entry at their next snapshot."

    def perform(self, request, actor, pk):
        content_purge(content=self.content(pk), actor=actor)


class ContentRevalidateView(_ContentAction):
    success_message = "Revalidation queued."

    def perform(self, request, actor, pk):
        if not content_revalidate(content=self.content(pk), actor=actor):
            raise ApplicationError("No task runner is configured; revalidation cannot be queued.")


class ContentPrestuffView(_ContentAction):
    success_message = "Prestuff requested."

    def perform(self, request, actor):
        form = PrestuffForm(request.POST)
        if not form.is_valid():
            raise ApplicationError("Give the origin URL to fill.")
        content_prestuff(url=form.cleaned_data["url"], node=None, actor=actor)
