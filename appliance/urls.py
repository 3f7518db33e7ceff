from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path

from appliance.core.login_views import admin_login

urlpatterns = [
    path("admin/login/", admin_login),  # ahead of admin.site.urls: the same login, behind the failure limit
    path("admin/", admin.site.urls),
    path("api/v1/", include("appliance.api_urls")),
    path("internal/v1/", include("appliance.control.urls")),
    path("", include("appliance.ops.urls")),
]

# The dashboard is optional: the API keeps working without it.
if find_spec("appliance.ui.urls") is not None:
    urlpatterns.append(path("", include("appliance.ui.urls")))
