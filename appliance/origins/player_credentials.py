"""Player accounts of an origin (who may play it through the proxy), hashed at rest.

Only H(A1) = H(username:realm:password) is stored, for MD5 and SHA-256 (RFC 7616): Digest needs
exactly that, and proxyd checks Basic by hashing the password it receives the same way, so one stored
form serves both modes and switching mode needs no new passwords. A slow password hash (PBKDF2)
would have to run in proxyd on every request of every player (DESCRIBE, SETUP, PLAY, keepalives),
a CPU lever for anyone on the network; and H(A1) is salted by username and realm. The hashes travel
only in the snapshots of the nodes that serve the origin (origins_for_node).

The validation here is the one the API and the dashboard form share.
"""
from __future__ import annotations

from dataclasses import dataclass

from appliance.core.exceptions import ApplicationError
from appliance.origins.models import Origin, PlayerAccess, PlayerCredential
from proxyd.rtsp.auth import digest_ha1

MAX_PLAYER_ACCOUNTS = 1000  # per origin: every one travels in the snapshot of each serving node


@dataclass(frozen=True)
class PlayerAccount:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"PlayerAccount({self.username!r})"


def _bad_text(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def validate_player_access(*, access: str, realm: str, accounts: list[PlayerAccount] | None,
                           stored_realm: str | None, stored_count: int) -> None:
    """ApplicationError (field errors) unless the access settings can be applied.

    `accounts` None keeps the stored ones (hashed with `stored_realm`), a list replaces them."""
    errors: dict[str, list[str]] = {}
    if not realm or '"' in realm or _bad_text(realm):
        errors.setdefault("player_realm", []).append(
            "A realm without quotes or control characters is needed.")
    if accounts is None and stored_count and stored_realm is not None and realm != stored_realm:
        errors.setdefault("player_realm", []).append(
            "The stored player passwords were hashed with the old realm: give every player password again.")
    if accounts is not None:
        names = [a.username for a in accounts]
        if len(accounts) > MAX_PLAYER_ACCOUNTS:
            errors.setdefault("player_credentials", []).append(f"At most {MAX_PLAYER_ACCOUNTS} players.")
        if any(not n or ":" in n or _bad_text(n) or len(n) > 255 for n in names):
            errors.setdefault("player_credentials", []).append(
                "A player username is 1-255 characters without ':' or control characters.")
        if any(not a.password or _bad_text(a.password) for a in accounts):
            errors.setdefault("player_credentials", []).append("Every player needs a password.")
        if len(set(names)) != len(names):
            errors.setdefault("player_credentials", []).append("Player usernames must be unique.")
    count = stored_count if accounts is None else len(accounts)
    if access != PlayerAccess.OPEN and not count:
        errors.setdefault("player_credentials", []).append(
            f"{access.title()} access needs at least one player.")
    if errors:
        raise ApplicationError("Invalid player access settings.", fields=errors)


def replace_player_accounts(origin: Origin, accounts: list[PlayerAccount]) -> None:
    """Store `accounts` (hashed with the origin's realm) instead of the origin's current ones."""
    origin.player_credentials.all().delete()
    PlayerCredential.objects.bulk_create(
        PlayerCredential(origin=origin, username=a.username, realm=origin.player_realm,
                         ha1_md5=digest_ha1("MD5", a.username, origin.player_realm, a.password),
                         ha1_sha256=digest_ha1("SHA-256", a.username, origin.player_realm, a.password))
        for a in accounts)
