from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet

from appliance.origins.models import Origin, PlayerAccess
from proxyd.rtsp.uri import key_is_within, url_key

if TYPE_CHECKING:
    from appliance.nodes.models import ProxyNode


def origin_list() -> QuerySet[Origin]:
    return Origin.objects.prefetch_related("nodes", "player_credentials")


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
    best, best_length, key = None, -1, url_key(url)
    for origin in candidates:
        base = _base_key(origin.base_url)
        if len(base) > best_length and key_is_within(key, base):
            best, best_length = origin, len(base)
    return best


_matching: dict[int, list[Origin]] = {}


def origins_for_matching(*, generation: int | None) -> list[Origin]:
    """Every origin (id, name, base_url) for origin_for_url, kept per process for the snapshot
    generation given (appliance.control.poll: every origin write bumps it), so report batches do not
    query them each; None: query."""
    if generation is None:
        return list(Origin.objects.only("id", "name", "base_url"))
    origins = _matching.get(generation)
    if origins is None:
        origins = list(Origin.objects.only("id", "name", "base_url"))
        _matching.clear()  # only the newest generation is asked for again
        _matching[generation] = origins
    return origins


@functools.lru_cache(maxsize=4096)
def _base_key(base_url: str) -> str:
    # Batch ingestion matches every session and play log against every origin: normalise each base once.
    return url_key(base_url)


def player_usernames(origin: Origin) -> list[str]:
    return [c.username for c in origin.player_credentials.all()]


def snapshot_player_access(origin_ids: list[int]) -> dict[int, dict]:
    """The snapshot's player access fields per origin id: only for protected origins (an open one's
    row stays as it was: proxyd reads a missing player_access as open)."""
    rows = Origin.objects.filter(pk__in=origin_ids).exclude(player_access=PlayerAccess.OPEN)
    out: dict[int, dict] = {pk: {} for pk in origin_ids}
    for origin in rows.prefetch_related("player_credentials"):
        out[origin.pk] = {"player_access": origin.player_access, "player_realm": origin.player_realm,
                          "player_users": [{"username": c.username, "md5": c.ha1_md5, "sha256": c.ha1_sha256}
                                           for c in origin.player_credentials.all()
                                           if c.realm == origin.player_realm]}
    return out
