"""URLconf of the internal API tier (appliance/settings_internal.py): the nodes' API and the ops probes."""

from django.urls import include, path

urlpatterns = [
    path("internal/v1/", include("appliance.control.urls")),
    path("", include("appliance.ops.urls")),
]
