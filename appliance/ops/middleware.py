"""Counts every HTTP request the web app answers (method, status) and its duration."""

from __future__ import annotations

import time

from appliance.ops.metrics import HTTP_REQUESTS, HTTP_SECONDS, METHODS


class RequestMetricsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUESTS.labels(method, str(response.status_code)).inc()
        HTTP_SECONDS.labels(method).observe(time.monotonic() - started)
        return response
