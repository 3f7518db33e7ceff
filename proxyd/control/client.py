"""Blocking HTTP client for the control plane's /internal/v1 API.

Standard library only. Every call blocks, so callers run it in a worker thread
(`loop.run_in_executor`) and the event loop never waits on the network.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

API_PREFIX = "/internal/v1"
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
ERROR_EXCERPT_BYTES = 300


class ControlApiError(Exception):
    """A request to the control plane failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientError(ControlApiError):
    """Worth retrying later: refused, reset, timed out, 5xx, 408, 429, unexpected redirect or bad body."""


class PermanentError(ControlApiError):
    """The control plane rejected this request; sending it again unchanged cannot succeed."""


class AuthError(PermanentError):
    """401/403: the node token is refused. The request itself may be fine, so callers keep it."""


def classify_status(status: int, detail: str) -> ControlApiError:
    if status >= 500 or status in TRANSIENT_CLIENT_STATUSES:
        return TransientError(f"HTTP {status}: {detail}", status)
    if status in (401, 403):
        return AuthError(f"HTTP {status} (node token refused): {detail}", status)
    if 400 <= status < 500:
        return PermanentError(f"HTTP {status}: {detail}", status)
    # 3xx (redirects are not followed) and anything odd: a configuration problem the operator can fix.
    return TransientError(f"unexpected HTTP {status}: {detail}", status)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would silently turn into a GET; surface 3xx as an error instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def _unquote_etag(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


class ControlClient:
    """`/internal/v1` endpoints with a Bearer token, a timeout and a response size cap."""

    def __init__(self, base_url: str, token: str, *, timeout: float, max_response_bytes: int = 16 << 20,
                 user_agent: str = "proxyd"):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"control URL must be http(s)://host[:port][/path], got {base_url!r}")
        path = parts.path.rstrip("/")
        if not path.endswith(API_PREFIX):
            path += API_PREFIX
        self._base = f"{parts.scheme}://{parts.netloc}{path}"
        self._token = token
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._user_agent = user_agent
        # No environment proxies: the control plane is addressed directly, and no redirects (see above).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    @property
    def base_url(self) -> str:
        return self._base

    def get_snapshot(self, etag: str | None) -> tuple[int, str | None, dict | None]:
        """(200, etag, body) for a new snapshot, (304, etag, None) when `etag` is still current."""
        headers = {"Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = f'"{etag}"'
        status, resp_headers, raw = self._request("GET", "/snapshot", None, headers)
        if status == 304:
            return 304, _unquote_etag(resp_headers.get("ETag")) or etag, None
        body = self._json(raw)
        if not isinstance(body, dict):
            raise TransientError("snapshot body is not a JSON object", status)
        new_etag = body.get("etag") if isinstance(body.get("etag"), str) else None
        return status, new_etag or _unquote_etag(resp_headers.get("ETag")), body

    def post_reports(self, batch: bytes | Mapping[str, Any]) -> dict:
        """POST one report batch; returns the decoded 2xx answer ({} when it has no JSON body)."""
        body = batch if isinstance(batch, bytes) else json.dumps(batch, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        _, _, raw = self._request("POST", "/reports", body, headers)
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        # The batch was accepted (2xx) even if the answer is odd: never re-send because of the answer.
        return answer if isinstance(answer, dict) else {}

    def _request(self, method: str, path: str, body: bytes | None,
                 headers: dict[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        req = urllib.request.Request(self._base + path, data=body, method=method, headers={
            **headers, "Authorization": f"Bearer {self._token}", "User-Agent": self._user_agent})
        try:
            with self._opener.open(req, timeout=self._timeout) as resp:
                return resp.status, resp.headers, self._read_capped(resp)
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 304:
                    return 304, exc.headers, b""
                detail = exc.read(ERROR_EXCERPT_BYTES).decode("utf-8", "replace").strip() or exc.reason
            raise classify_status(exc.code, f"{method} {path}: {detail}") from None
        except urllib.error.URLError as exc:
            raise TransientError(f"{method} {path}: {exc.reason}") from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise TransientError(f"{method} {path}: {type(exc).__name__}: {exc}") from None

    def _read_capped(self, resp) -> bytes:
        raw = resp.read(self._max_response_bytes + 1)
        if len(raw) > self._max_response_bytes:
            raise TransientError(f"response larger than {self._max_response_bytes} bytes")
        return raw

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise TransientError(f"response is not JSON: {exc}") from None
