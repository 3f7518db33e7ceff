"""DATABASE_URL -> Django DATABASES entry (only the two engines the appliance supports)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def parse_database_url(url: str | None, *, sqlite_path: Path) -> dict:
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_path)}
    parts = urlsplit(url)
    if parts.scheme in ("sqlite", "sqlite3"):
        # sqlite:///relative/or/absolute/path
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:] or str(sqlite_path))}
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise ImproperlyConfigured(f"DATABASE_URL scheme {parts.scheme!r} is not supported (postgres:// or sqlite://)")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL must name a database, e.g. postgres://user@host:5432/appliance")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
    }
