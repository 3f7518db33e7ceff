"""Origin CRUD; every change is audited (credentials are never written to the audit log).

`password` arrives in clear from the API or the form and is stored only encrypted (password_encrypted).
"""
from __future__ import annotations

from django.db import IntegrityError, transaction

from appliance.core.audit import Actor, audit_record
from appliance.core.exceptions import ApplicationError
from appliance.origins.credentials import decrypt_password, encrypt_password, reencrypt_password
from appliance.origins.models import Origin

_SECRET_FIELDS = {"password"}


def _audit_changes(changes: dict) -> dict:
    return {key: ("(changed)" if key in _SECRET_FIELDS else value) for key, value in changes.items()}


def _unique_error(exc: IntegrityError) -> ApplicationError:
    message = str(exc).lower()
    field = "route_prefix" if "route_prefix" in message else "name"
    return ApplicationError("An origin with this value already exists.", fields={field: ["must be unique"]})


def _node_names(nodes) -> list[str]:
    return sorted(node.name for node in nodes)


def origin_create(*, actor: Actor, nodes=None, **fields) -> Origin:
    """`nodes`: the nodes that serve this origin; none (or empty) means every node."""
    try:
        with transaction.atomic():
            stored = {name: value for name, value in fields.items() if name != "password"}
            origin = Origin.objects.create(**stored,
                                           password_encrypted=encrypt_password(fields.get("password", "")))
            changes = _audit_changes(fields)
            if nodes:
                origin.nodes.set(nodes)
                changes["nodes"] = _node_names(nodes)
            audit_record(actor=actor, action="origin.create", obj=origin, changes=changes)
    except IntegrityError as exc:
        raise _unique_error(exc) from None
    return origin


def origin_update(*, origin: Origin, actor: Actor, nodes=None, **fields) -> Origin:
    """`nodes` None keeps the assignment; a list (empty: every node) replaces it."""
    try:
        with transaction.atomic():
            origin = Origin.objects.select_for_update().get(pk=origin.pk)
            changed = {name: value for name, value in fields.items()
                       if name != "password" and getattr(origin, name) != value}
            for name, value in changed.items():
                setattr(origin, name, value)
            if "password" in fields and decrypt_password(origin.password_encrypted) != fields["password"]:
                origin.password_encrypted = encrypt_password(fields["password"])
                changed["password"] = fields["password"]
            if nodes is not None and _node_names(nodes) != _node_names(origin.nodes.all()):
                origin.nodes.set(nodes)
                changed["nodes"] = _node_names(nodes)
            if changed:
                # save() also when only the assignment changed: updated_at shows the change
                origin.save()
                audit_record(actor=actor, action="origin.update", obj=origin, changes=_audit_changes(changed))
    except IntegrityError as exc:
        raise _unique_error(exc) from None
    return origin


def origin_delete(*, origin: Origin, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="origin.delete", obj=origin, changes={"name": origin.name})
        origin.delete()


def origin_credentials_rotate() -> int:
    """Re-encrypt every stored password under the first configured key; returns how many were rewritten."""
    rewritten = 0
    with transaction.atomic():
        rows = (Origin.objects.select_for_update().exclude(password_encrypted="")
                .values_list("pk", "password_encrypted"))
        for pk, stored in rows:
            Origin.objects.filter(pk=pk).update(password_encrypted=reencrypt_password(stored))
            rewritten += 1
    return rewritten
