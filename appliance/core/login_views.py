"""The admin site's login behind the failed-login limit (the dashboard's own login is appliance.ui)."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponse

from appliance.core.auth_limits import login_retry_after


def refused_message(wait: int) -> str:
    return f"Too many failed logins. Try again in {wait} seconds."


def admin_login(request, extra_context=None):
    wait = login_retry_after(request, request.POST.get("username")) if request.method == "POST" else 0
    if wait:
        response = HttpResponse(refused_message(wait), status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(wait)
        return response
    return admin.site.login(request, extra_context)
