from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet

from appliance.origins.models import Origin

if TYPE_CHECKING:
    from appliance.nodes.models import ProxyNode


def origin_list() -> QuerySet[Origin]:
    return Origin.objects.prefetch_related("nodes")


def origins_for_node(node: ProxyNode) -> QuerySet[Origin]:
    """The origins (and so the routes, credentials and policies) a node is given in its snapshot:
    those assigned to it, and those assigned to no node at all (served everywhere)."""
    through = Origin.nodes.through.objects.filter(origin_id=OuterRef("pk"))
    return Origin.objects.filter(Q(Exists(through.filter(proxynode_id=node.pk))) | ~Q(Exists(through)))


def origin_for_url(url: str, *, origins: list[Origin] | None = None) -> Origin | None:
    """The origin whose base URL is the longest prefix of an origin-side URL."""
    candidates = origins if origins is not None else list(Origin.objects.only("id", "base_url"))
    best = None
    for origin in candidates:
        base = origin.base_url.rstrip("/")
        if url == base or url.startswith(base + "/"):
            if best is None or len(base) > len(best.base_url):
                best = origin
    return best
