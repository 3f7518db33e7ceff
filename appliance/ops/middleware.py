"""Counts every HTTP request the web app answers (method, status) and its duration. Sync and async
capable, so under ASGI it adds no thread switch of its own."""

from __future__ import annotations

import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from appliance.ops.metrics import HTTP_REQUESTS, HTTP_SECONDS, METHODS


class RequestMetricsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        started = time.monotonic()
        response = self.get_response(request)
        self._count(request, response, started)
        return response

    async def _acall(self, request):
        started = time.monotonic()
        response = await self.get_response(request)
        self._count(request, response, started)
        return response

    @staticmethod
    def _count(request, response, started: float) -> None:
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUESTS.labels(method, str(response.status_code)).inc()
        HTTP_SECONDS.labels(method).observe(time.monotonic() - started)
