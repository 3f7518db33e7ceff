"""Typed readers for APPLIANCE_* environment variables.

Every reader rejects malformed values with ImproperlyConfigured so a typo fails at startup,
not at the first request. `env_secret` also reads `<NAME>_FILE` (systemd credentials, docker secrets).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "", *, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(name, default)


def env_bool(name: str, default: bool = False, *, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if name not in env:
        return default
    value = env[name].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {env[name]!r}")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        value = default
    else:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {value}")
    return value


def env_list(name: str, default: list[str] | None = None, *, environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """A DRF throttle rate such as "100/minute"; empty means no limit (None)."""
    env = os.environ if environ is None else environ
    raw = env.get(name, default).strip().replace(" ", "")
    if not raw:
        return None
    if not _RATE.match(raw) or raw.startswith("0/"):
        raise ImproperlyConfigured(f"{name} must look like 100/minute (per second, minute, hour or day), "
                                   f"or be empty for no limit; got {env[name]!r}")
    return raw


def env_secret(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """`NAME` or the contents of the file named by `NAME_FILE` (not both)."""
    env = os.environ if environ is None else environ
    file_name = env.get(f"{name}_FILE")
    if file_name and name in env:
        raise ImproperlyConfigured(f"set either {name} or {name}_FILE, not both")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from None
    return env.get(name, default)


def env_fernet_keys(name: str, *, generated_file: Path,
                    environ: Mapping[str, str] | None = None) -> list[str]:
    """Fernet keys from `NAME` or `NAME_FILE` (comma or whitespace separated, newest first).

    Unset: one key generated into `generated_file` on first use and read from it afterwards.
    """
    configured = env_secret(name, environ=environ)
    if configured:
        keys = configured.replace(",", " ").split()
    else:
        if not generated_file.exists():
            _generate_key_file(generated_file)
        keys = generated_file.read_text(encoding="utf-8").split()
    if not keys:
        raise ImproperlyConfigured(f"{name} names no key")
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: each key must be 32 url-safe base64-encoded bytes "
                                       "(python -c 'from cryptography.fernet import Fernet; "
                                       "print(Fernet.generate_key().decode())')") from None
    return keys


def _generate_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and linked into place: a process starting at the same time never reads half a key.
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(Fernet.generate_key().decode("ascii"))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process of this install won the race; everyone uses its key
    finally:
        draft.unlink()
