"""/readyz checks of the control plane: PostgreSQL answers, Redis (broker and channel layer) answers."""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.db.utils import DatabaseError


def check_database() -> tuple[bool, str]:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return False, f"database: {type(exc).__name__}: {first_line}"
    return True, f"database ({connections['default'].vendor}) answers"


def check_redis() -> tuple[bool, str]:
    if not settings.REDIS_URL:
        return True, "no Redis configured (embedded broker, in-memory channel layer)"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.APPLIANCE_READY_TIMEOUT,
                                      socket_connect_timeout=settings.APPLIANCE_READY_TIMEOUT)
        client.ping()
    except redis.RedisError as exc:
        return False, f"redis: {exc}"
    return True, "redis answers"


def readiness() -> dict[str, dict]:
    checks = {}
    for name, check in (("database", check_database), ("redis", check_redis)):
        ok, detail = check()
        checks[name] = {"ok": ok, "detail": detail}
    return checks
