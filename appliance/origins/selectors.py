from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from appliance.origins.models import Origin
from proxyd.rtsp.uri import is_within, url_key

if TYPE_CHECKING:
    from appliance.nodes.models import ProxyNode


def origin_list() -> QuerySet[Origin]:
    return Origin.objects.all()


def origins_for_node(node: ProxyNode) -> QuerySet[Origin]:
    """The origins a node serves, the only ones whose credentials it is sent.

    No assignment of origins to nodes exists yet, so every node serves every origin; a per-node
    assignment narrows this queryset and the snapshot follows.
    """
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
