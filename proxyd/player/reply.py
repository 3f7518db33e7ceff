"""The answer a request handler raises: a status for the player, logged once as a warning."""

from __future__ import annotations


class Reply(Exception):
    """Raised inside a handler to answer with a status (logged as a warning once)."""

    def __init__(self, status: int, reason: str, detail: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers
