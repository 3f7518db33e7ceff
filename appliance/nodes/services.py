from __future__ import annotations

import datetime as dt

from django.db import transaction

from appliance.core.audit import Actor, audit_record
from appliance.core.exceptions import ApplicationError
from appliance.nodes.models import ProxyNode

MIN_TOKEN_LENGTH = 16


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


def nodes_zero_offline_load(*, now) -> list[str]:
    """Zero the last reported load (sessions, bandwidth) of nodes silent for APPLIANCE_NODE_OFFLINE_SECONDS:
    a node that stopped reporting is not still sending. Returns their names (to publish the zeros)."""
    from django.conf import settings
    from django.db.models import Q

    cutoff = now - dt.timedelta(seconds=settings.APPLIANCE_NODE_OFFLINE_SECONDS)
    silent = (ProxyNode.objects.filter(Q(last_seen__lt=cutoff) | Q(last_seen__isnull=True))
              .filter(Q(load_sessions__gt=0) | Q(load_bandwidth_bps__gt=0)))
    with transaction.atomic():
        names = list(silent.select_for_update().values_list("name", flat=True))
        ProxyNode.objects.filter(name__in=names).update(load_sessions=0, load_bandwidth_bps=0)
    return names
