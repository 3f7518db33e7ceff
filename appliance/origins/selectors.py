from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from appliance.origins.models import Origin

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
    """The origin whose base URL is the longest prefix of an origin-side URL."""
    candidates = origins if origins is not None else list(Origin.objects.only("id", "base_url"))
    best = None
    for origin in candidates:
        base = origin.base_url.rstrip("/")
        if url == base or url.startswith(base + "/"):
            if best is None or len(base) > len(best.base_url):
                best = origin
    return best
