"""Origin latency: an OPTIONS request per allowed origin, timed (the cheapest request every RTSP server
answers; no media, no session). Off when APPLIANCE_ORIGIN_PROBE_INTERVAL is 0."""

from __future__ import annotations

import datetime as dt
import time

from appliance.content.task_services import proxy_user_agent
from appliance.history.models import OriginCheck
from appliance.origins.models import Origin
from proxyd.rtsp.oneshot import RtspRequestError, rtsp_request


def origins_to_probe(*, limit: int) -> list[int]:
    return list(Origin.objects.filter(allowed=True).order_by("pk").values_list("pk", flat=True)[:limit])


def origin_probe(*, origin_id: int, timeout: float, now: dt.datetime) -> OriginCheck | None:
    """Time one OPTIONS to the origin's base URL and record it (None: the origin is gone or not allowed)."""
    origin = Origin.objects.filter(pk=origin_id, allowed=True).only("pk", "base_url", "tls_verify").first()
    if origin is None:
        return None
    started = time.monotonic()
    try:
        response = rtsp_request(
            origin.base_url, "OPTIONS", headers=[("User-Agent", proxy_user_agent())], timeout=timeout,
            tls_verify=origin.tls_verify,
        )
    except RtspRequestError as exc:
        return OriginCheck.objects.create(
            origin=origin,
            at=now,
            status=None,
            ok=False,
            latency_ms=None,
            error=(str(exc) or type(exc).__name__)[:200],
        )
    latency_ms = (time.monotonic() - started) * 1000.0
    return OriginCheck.objects.create(
        origin=origin,
        at=now,
        status=response.status,
        ok=response.status < 500,
        latency_ms=latency_ms,
        error="",
    )


def origin_checks_prune(*, older_than: dt.datetime, limit: int) -> int:
    ids = list(
        OriginCheck.objects.filter(at__lt=older_than).order_by("at").values_list("id", flat=True)[:limit]
    )
    return OriginCheck.objects.filter(id__in=ids).delete()[0]
