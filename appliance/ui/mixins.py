"""Access rules and list plumbing shared by the dashboard pages (roles from appliance.core.permissions)."""

import logging

from django.contrib import messages
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.views import View
from django.views.generic import ListView

from appliance.core.audit import Actor
from appliance.core.exceptions import ApplicationError
from appliance.core.permissions import can_read, can_write

LOGIN_URL = "ui:login"

log = logging.getLogger(__name__)


class ViewerRequiredMixin(AccessMixin):
    """Any page: logged in with the viewer or operator role (anonymous users go to the login page)."""

    login_url = LOGIN_URL

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not can_read(request.user):
            raise PermissionDenied("Your account has no dashboard role.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_operate"] = can_write(self.request.user)
        return context


class OperatorRequiredMixin(ViewerRequiredMixin):
    """Pages and actions that change state: operator role only (viewers get 403)."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and can_read(request.user) and not can_write(request.user):
            raise PermissionDenied("Changing this needs the operator role.")
        return super().dispatch(request, *args, **kwargs)


class FilteredListView(ViewerRequiredMixin, ListView):
    """A paginated list backed by a selector queryset and the FilterSet the API uses too: the same
    validation, so a filter the API answers 400 to gets a 400 page with the form's errors and no rows
    (never the unfiltered list)."""

    filterset_class = None
    paginate_by = 50

    def base_queryset(self):
        raise NotImplementedError

    def filters_rejected(self) -> bool:
        return self.filterset is not None and self.filterset.is_bound and not self.filterset.is_valid()

    def get_queryset(self):
        queryset = self.base_queryset()
        if self.filterset_class is None:
            self.filterset = None
            return queryset
        self.filterset = self.filterset_class(self.request.GET or None, queryset=queryset, request=self.request)
        if self.filters_rejected():
            log.info("%s: filters rejected: %s", self.request.path, dict(self.filterset.errors))
            return queryset.none()
        return self.filterset.qs if self.filterset.is_bound else queryset

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if self.filters_rejected():
            response.status_code = 400
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter_form"] = self.filterset.form if self.filterset is not None else None
        query = self.request.GET.copy()
        query.pop("page", None)
        context["querystring_without_page"] = query.urlencode() + "&" if query else ""
        return context


class ServiceActionView(OperatorRequiredMixin, View):
    """POST-only button target: run one service call, flash its outcome, go back to `success_url`."""

    http_method_names = ["post"]
    success_message = "Done."

    def perform(self, request, actor: Actor, **kwargs):
        raise NotImplementedError

    def success_url(self, **kwargs) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        try:
            self.perform(request, Actor.from_request(request), **kwargs)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, self.success_message)
        return HttpResponseRedirect(self.success_url(**kwargs))
