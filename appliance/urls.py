from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("appliance.api_urls")),
    path("internal/v1/", include("appliance.control.urls")),
    path("", include("appliance.ops.urls")),
]

# The dashboard is optional: the API keeps working without it.
if find_spec("appliance.ui.urls") is not None:
    urlpatterns.append(path("", include("appliance.ui.urls")))
