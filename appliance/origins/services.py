"""Origin CRUD; every change is audited (credentials are never written to the audit log).

`password` arrives in clear from the API or the form and is stored only encrypted (password_encrypted).
"""
from __future__ import annotations

from django.db import IntegrityError, transaction

from appliance.core.audit import Actor, audit_record
from appliance.core.exceptions import ApplicationError
from appliance.origins.credentials import decrypt_password, encrypt_password, reencrypt_password
from appliance.origins.models import Origin
from appliance.origins.player_credentials import (
    PlayerAccount,
    replace_player_accounts,
    validate_player_access,
)

_SECRET_FIELDS = {"password"}
_NOT_STORED = {"password", "player_credentials"}  # handled apart from the model fields


def _audit_changes(changes: dict) -> dict:
    return {key: ("(changed)" if key in _SECRET_FIELDS else value) for key, value in changes.items()}


def _unique_error(exc: IntegrityError) -> ApplicationError:
    message = str(exc).lower()
    field = "route_prefix" if "route_prefix" in message else "name"
    return ApplicationError("An origin with this value already exists.", fields={field: ["must be unique"]})


def _node_names(nodes) -> list[str]:
    return sorted(node.name for node in nodes)


def _accounts_audit(accounts: list[PlayerAccount]) -> list[str]:
    return sorted(a.username for a in accounts)  # who may play, never a password


def origin_create(*, actor: Actor, nodes=None, player_credentials: list[PlayerAccount] | None = None,
                  **fields) -> Origin:
    """`nodes`: the nodes that serve this origin; none (or empty) means every node.
    `player_credentials`: the players allowed when player_access is basic or digest."""
    probe = Origin(**{name: value for name, value in fields.items() if name not in _NOT_STORED})
    validate_player_access(access=probe.player_access, realm=probe.player_realm,
                           accounts=player_credentials or [], stored_realm=None, stored_count=0)
    try:
        with transaction.atomic():
            stored = {name: value for name, value in fields.items() if name != "password"}
            origin = Origin.objects.create(**stored,
                                           password_encrypted=encrypt_password(fields.get("password", "")))
            changes = _audit_changes(fields)
            if player_credentials:
                replace_player_accounts(origin, player_credentials)
                changes["player_credentials"] = _accounts_audit(player_credentials)
            if nodes:
                origin.nodes.set(nodes)
                changes["nodes"] = _node_names(nodes)
            audit_record(actor=actor, action="origin.create", obj=origin, changes=changes)
    except IntegrityError as exc:
        raise _unique_error(exc) from None
    return origin


def origin_update(*, origin: Origin, actor: Actor, nodes=None,
                  player_credentials: list[PlayerAccount] | None = None, **fields) -> Origin:
    """`nodes` None keeps the assignment; a list (empty: every node) replaces it. `player_credentials`
    None keeps the players; a list replaces them (needed again when the realm changes)."""
    try:
        with transaction.atomic():
            origin = Origin.objects.select_for_update().get(pk=origin.pk)
            stored_realm, stored_count = origin.player_realm, origin.player_credentials.count()
            changed = {name: value for name, value in fields.items()
                       if name != "password" and getattr(origin, name) != value}
            for name, value in changed.items():
                setattr(origin, name, value)
            validate_player_access(access=origin.player_access, realm=origin.player_realm,
                                   accounts=player_credentials, stored_realm=stored_realm,
                                   stored_count=stored_count)
            if player_credentials is not None:
                replace_player_accounts(origin, player_credentials)
                changed["player_credentials"] = _accounts_audit(player_credentials)
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
