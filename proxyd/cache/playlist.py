"""The entries of a cached server-side playlist in play order ([MS-RTSP] 3.2.4.1-2).

A committed playlist is complete from the start. A fill adds each entry when the origin announces
it and closes the list at the origin's final EndOfStream, so a replay that reaches the end of an
entry before the origin has said what follows waits (`when_changed`) instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from proxyd.wmext.playlist import parse_gen_id

T = TypeVar("T")


class Playlist(Generic[T]):
    def __init__(self, entries: list[T] | None = None, *, complete: bool = True) -> None:
        self.entries: list[T] = list(entries or [])
        self.complete = complete
        self.waiters: list[Callable[[], None]] = []

    def add(self, entry: T) -> None:
        self.entries.append(entry)
        self.wake()

    def close(self) -> None:
        self.complete = True
        self.wake()

    def known_after(self, index: int) -> bool:
        """Whether it is known if entry `index` has a successor (False: wait for the fill)."""
        return self.complete or index + 1 < len(self.entries)

    def has_after(self, index: int) -> bool:
        return index + 1 < len(self.entries)

    def when_changed(self, callback: Callable[[], None]) -> None:
        self.waiters.append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        if callback in self.waiters:
            self.waiters.remove(callback)

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for callback in waiters:
            callback()


def stored_gen_id(body: dict) -> int:
    """The X-Playlist-Gen-Id the origin answered the stored DESCRIBE with (0: none)."""
    for name, value in body.get("headers", []):
        if name.lower() == "x-playlist-gen-id":
            return parse_gen_id(value) or 0
    return 0
