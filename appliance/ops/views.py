"""/metrics, /healthz, /readyz of the web process: plain Django views (no session, no CSRF), allowed
only from APPLIANCE_METRICS_ALLOW_IPS (nginx does not forward them either)."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from appliance.ops.metrics import exposition
from appliance.ops.readiness import readiness

log = logging.getLogger(__name__)


def _allowed(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.APPLIANCE_METRICS_ALLOW_NETWORKS)


def _forbidden(request: HttpRequest) -> HttpResponse:
    log.warning("ops endpoint %s refused for %s (not in APPLIANCE_METRICS_ALLOW_IPS)", request.path,
                request.META.get("REMOTE_ADDR"))
    return HttpResponse("forbidden\n", status=403, content_type="text/plain")


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return _forbidden(request)
    return HttpResponse(exposition(with_state=True), content_type=CONTENT_TYPE_LATEST)


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return _forbidden(request)
    return JsonResponse({"alive": True})


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return _forbidden(request)
    checks = readiness()
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)
