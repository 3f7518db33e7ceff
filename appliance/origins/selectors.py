from __future__ import annotations

from django.db.models import QuerySet

from appliance.origins.models import Origin
from proxyd.rtsp.uri import is_within, url_key


def origin_list() -> QuerySet[Origin]:
    return Origin.objects.all()


def origin_for_url(url: str, *, origins: list[Origin] | None = None) -> Origin | None:
    """The origin whose base URL is the longest one an origin-side URL is at or below (URL identity:
    proxyd.rtsp.uri, so rtsp://h:554/x and rtsp://H/x/ are the same)."""
    candidates = origins if origins is not None else list(Origin.objects.only("id", "base_url"))
    best, best_length = None, -1
    for origin in candidates:
        if is_within(url, origin.base_url) and len(url_key(origin.base_url)) > best_length:
            best, best_length = origin, len(url_key(origin.base_url))
    return best
