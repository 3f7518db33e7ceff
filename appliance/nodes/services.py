from __future__ import annotations

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
