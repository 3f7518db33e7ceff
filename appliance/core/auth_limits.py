"""Counters of failed credentials in the Django cache (Redis when REDIS_URL is set: shared by web workers).

Dashboard and admin logins: per client address and per username. API tokens: per client address.
Windows are fixed and aligned on multiples of their length, one cache key each, so counting is an
atomic add+incr and the Retry-After given is exact. Limits are read from settings on every call.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from time import time as wall_clock

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class FailureLimit:
    scope: str
    max_failures: int  # 0: unlimited
    window: int  # seconds

    def _key(self, ident: str, now: float) -> tuple[str, float]:
        bucket = int(now // self.window)
        digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]  # usernames stay out of Redis keys
        return f"authfail:{self.scope}:{digest}:{bucket}", (bucket + 1) * self.window - now

    def retry_after(self, ident: str) -> int:
        if not self.max_failures:
            return 0
        key, remaining = self._key(ident, wall_clock())
        return math.ceil(remaining) if cache.get(key, 0) >= self.max_failures else 0

    def record(self, ident: str) -> bool:
        """Counts one failure; True when it is the one that reaches the limit."""
        if not self.max_failures:
            return False
        key, remaining = self._key(ident, wall_clock())
        cache.add(key, 0, timeout=math.ceil(remaining) + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: a new window began
            cache.set(key, 1, timeout=self.window + 1)
            count = 1
        return count == self.max_failures

    def clear(self, ident: str) -> None:
        cache.delete(self._key(ident, wall_clock())[0])


def client_address(request) -> str:
    # gunicorn's uvicorn worker already replaced it with the X-Forwarded-For of a trusted proxy (nginx).
    return request.META.get("REMOTE_ADDR") or "unknown"


def _login_by_address() -> FailureLimit:
    return FailureLimit("login-addr", settings.APPLIANCE_LOGIN_MAX_FAILURES,
                        settings.APPLIANCE_LOGIN_FAILURE_WINDOW)


def _login_by_user() -> FailureLimit:
    return FailureLimit("login-user", settings.APPLIANCE_LOGIN_MAX_FAILURES_PER_USER,
                        settings.APPLIANCE_LOGIN_FAILURE_WINDOW)


def _token_by_address() -> FailureLimit:
    return FailureLimit("token-addr", settings.APPLIANCE_TOKEN_MAX_FAILURES,
                        settings.APPLIANCE_TOKEN_FAILURE_WINDOW)


def _username(username: str | None) -> str:
    return (username or "").strip().lower()


def login_retry_after(request, username: str | None) -> int:
    """Seconds until a login from this address for this username may be tried again; 0: now."""
    return max(_login_by_address().retry_after(client_address(request)),
               _login_by_user().retry_after(_username(username)))


def login_failed(request, username: str | None) -> bool:
    by_address = _login_by_address().record(client_address(request))
    by_user = _login_by_user().record(_username(username))
    return by_address or by_user


def login_succeeded(request, username: str | None) -> None:
    _login_by_user().clear(_username(username))


def token_retry_after(request) -> int:
    return _token_by_address().retry_after(client_address(request))


def token_failed(request) -> bool:
    return _token_by_address().record(client_address(request))
