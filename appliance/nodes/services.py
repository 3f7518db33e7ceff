from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from appliance.core.audit import Actor, audit_record
from appliance.core.exceptions import ApplicationError
from appliance.core.live import publish_many_after_commit
from appliance.nodes.models import ProxyNode
from appliance.nodes.selectors import nodes_offline
from appliance.playback.models import SplitState
from appliance.playback.services import live_payload, sessions_close_lost
from appliance.playback.split_services import split_live_payload, splits_close_lost

logger = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
LIVE_EVENTS_MAX = 200  # dashboard rows per lost node; the pages show the rest from the database


def node_create_or_set_token(*, name: str, token: str | None, actor: Actor) -> tuple[ProxyNode, str]:
    """Create the node (or rotate its token). Returns the node and the clear-text token, shown once."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ApplicationError(f"A node token needs at least {MIN_TOKEN_LENGTH} characters.",
                               fields={"token": ["too short"]})
    token = token or ProxyNode.new_token()
    with transaction.atomic():
        node, created = ProxyNode.objects.select_for_update().get_or_create(
            name=name, defaults={"token_hash": ""})
        node.set_token(token)
        node.save(update_fields=["token_hash"])
        audit_record(actor=actor, action="node.create" if created else "node.rotate_token", obj=node,
                     changes={"name": name})
    return node, token


def nodes_zero_offline_load(*, now: dt.datetime) -> list[str]:
    """Zero the last reported load (sessions, bandwidth) of offline nodes (APPLIANCE_NODE_OFFLINE_SECONDS):
    a node that stopped reporting is not still sending. Returns their names (to publish the zeros)."""
    silent = nodes_offline(now=now).filter(Q(load_sessions__gt=0) | Q(load_bandwidth_bps__gt=0))
    with transaction.atomic():
        names = list(silent.select_for_update().values_list("name", flat=True))
        ProxyNode.objects.filter(name__in=names).update(load_sessions=0, load_bandwidth_bps=0)
    return names


@dataclass(frozen=True)
class LostNodes:
    nodes: int
    sessions: int
    splits: int


def nodes_close_lost(*, now: dt.datetime, limit: int) -> LostNodes:
    """Close the open sessions and splits of at most `limit` offline nodes as lost. Safe to repeat:
    only open rows change, and a node seen again after the check began is left alone."""
    has_open = Q(sessions__ended_at__isnull=True) | (Q(splits__isnull=False) & ~Q(splits__state=SplitState.ENDED))
    candidates = list(nodes_offline(now=now).filter(has_open).distinct().order_by("pk")
                      .values_list("pk", flat=True)[:limit])
    nodes = sessions = splits = 0
    for pk in candidates:
        with transaction.atomic():
            node = ProxyNode.objects.select_for_update().get(pk=pk)  # serialised with its report batches
            if not nodes_offline(now=now).filter(pk=pk).exists():
                continue  # reported while we were looking
            closed = sessions_close_lost(node=node, now=now)
            ended = splits_close_lost(node=node, now=now)
            publish_many_after_commit([("session.ended", live_payload(node, s)) for s in closed[:LIVE_EVENTS_MAX]]
                                      + [("split.changed", split_live_payload(s)) for s in ended[:LIVE_EVENTS_MAX]])
        logger.warning("node %s offline (last seen %s): %d sessions and %d splits closed as lost",
                       node.name, node.last_seen, len(closed), len(ended))
        nodes, sessions, splits = nodes + 1, sessions + len(closed), splits + len(ended)
    return LostNodes(nodes=nodes, sessions=sessions, splits=splits)
