from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import FormView

from appliance.core.audit import Actor
from appliance.core.exceptions import ApplicationError
from appliance.origins.filters import OriginFilterSet
from appliance.origins.models import Origin
from appliance.origins.selectors import origin_list
from appliance.origins.services import origin_create, origin_delete, origin_update
from appliance.ui.forms import OriginForm
from appliance.ui.mixins import FilteredListView, OperatorRequiredMixin, ServiceActionView


class OriginListView(FilteredListView):
    template_name = "ui/origin_list.html"
    filterset_class = OriginFilterSet

    def base_queryset(self):
        return origin_list()


class OriginFormView(OperatorRequiredMixin, FormView):
    template_name = "ui/origin_form.html"
    form_class = OriginForm

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.origin = None

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        if "pk" in self.kwargs:
            self.origin = get_object_or_404(Origin, pk=self.kwargs["pk"])
        kwargs["instance"] = self.origin
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)  # builds the form, which loads self.origin
        context["origin"] = self.origin
        return context

    def form_valid(self, form):
        fields = dict(form.cleaned_data)
        if self.origin is not None and not fields.get("password"):
            fields.pop("password")  # empty means "keep"
        if fields.get("player_credentials") is None:
            fields.pop("player_credentials")  # empty means "keep"
        actor = Actor.from_request(self.request)
        try:
            if self.origin is None:
                origin = origin_create(actor=actor, **fields)
            else:
                origin = origin_update(origin=self.origin, actor=actor, **fields)
        except ApplicationError as exc:
            for field, errors in exc.fields.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            if not exc.fields:
                form.add_error(None, exc.message)
            return self.form_invalid(form)
        messages.success(self.request, f"Origin {origin.name} saved.")
        return redirect("ui:origin-list")


class OriginDeleteView(ServiceActionView):
    success_message = "Origin deleted."

    def perform(self, request, actor, pk):
        origin_delete(origin=get_object_or_404(Origin, pk=pk), actor=actor)

    def success_url(self, **kwargs):
        return reverse("ui:origin-list")
