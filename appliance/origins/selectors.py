from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet

from appliance.origins.models import Origin
from proxyd.rtsp.uri import is_within, url_key

if TYPE_CHECKING:
    from appliance.nodes.models import ProxyNode


def origin_list() -> QuerySet[Origin]:
    return Origin.objects.prefetch_related("nodes")


def origins_for_node(node: ProxyNode) -> QuerySet[Origin]:
    """The origins (and so the routes, credentials and policies) a node is given in its snapshot, the
    only ones whose credentials it is sent: those assigned to it, and those assigned to no node at all
    (served everywhere)."""
    through = Origin.nodes.through.objects.filter(origin_id=OuterRef("pk"))
    return Origin.objects.filter(Q(Exists(through.filter(proxynode_id=node.pk))) | ~Q(Exists(through)))


def origin_for_url(url: str, *, origins: list[Origin] | None = None) -> Origin | None:
    """The origin whose base URL is the longest one an origin-side URL is at or below (URL identity:
    proxyd.rtsp.uri, so rtsp://h:554/x and rtsp://H/x/ are the same)."""
    candidates = origins if origins is not None else list(Origin.objects.only("id", "base_url"))
    best, best_length = None, -1
    for origin in candidates:
        if is_within(url, origin.base_url) and len(url_key(origin.base_url)) > best_length:
            best, best_length = origin, len(url_key(origin.base_url))
    return best
