"""Audit trail written by every administrative service, inside the service's transaction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.core.models import AuditLog


@dataclass(frozen=True)
class Actor:
    """Who is making a change: a user (or None for system/CLI) and the client address."""

    user: Any = None
    remote_addr: str | None = None
    name: str = ""

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.user is not None and getattr(self.user, "is_authenticated", False):
            return self.user.get_username()
        return "system"

    @classmethod
    def from_request(cls, request) -> Actor:
        user = getattr(request, "user", None)
        return cls(user=user if getattr(user, "is_authenticated", False) else None,
                   remote_addr=request.META.get("REMOTE_ADDR") or None)


SYSTEM = Actor(name="system")


def audit_record(*, actor: Actor, action: str, obj: Any = None, object_type: str = "",
                 object_id: str = "", changes: dict | None = None) -> AuditLog:
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    return AuditLog.objects.create(
        actor=actor.user, actor_name=actor.display_name[:150], action=action,
        object_type=object_type, object_id=object_id, changes=changes or {}, remote_addr=actor.remote_addr,
    )
