"""Origin passwords at rest: Fernet tokens (AES-128-CBC + HMAC-SHA256), APPLIANCE_ORIGIN_CREDENTIALS_KEYS.

MultiFernet: the first key encrypts, every listed key decrypts, so a key is rotated by putting the new
one first, running `manage.py origin_credentials_rotate`, then dropping the old one. Decrypt only where
a password is used: the snapshot for a node, the Celery revalidation probe and SendEvent.
"""
from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialsKeyError(ImproperlyConfigured):
    """A stored password was encrypted under a key that is not configured any more."""


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def cipher() -> MultiFernet:
    return _cipher(tuple(settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS))


def encrypt_password(password: str) -> str:
    return cipher().encrypt(password.encode("utf-8")).decode("ascii") if password else ""


def decrypt_password(stored: str) -> str:
    if not stored:
        return ""
    try:
        return cipher().decrypt(stored.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise CredentialsKeyError(
            "an origin password cannot be decrypted with APPLIANCE_ORIGIN_CREDENTIALS_KEYS "
            "(was the key that encrypted it removed?)") from None


def reencrypt_password(stored: str) -> str:
    """The same password under the first (current) key."""
    if not stored:
        return ""
    try:
        return cipher().rotate(stored.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise CredentialsKeyError("an origin password is not readable with any configured key") from None
