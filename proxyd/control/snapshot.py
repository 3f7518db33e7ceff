"""SnapshotStore: pulls the config snapshot (If-None-Match), keeps the last-known-good copy on disk.

At start the on-disk copy is loaded first, so proxyd serves with the last good configuration when
the control plane is unreachable. A fetched snapshot replaces it only after it parses; then it is
written to disk (temp file, fsync, atomic rename) and subscribers are called.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from proxyd.control.client import ControlApiError
from proxyd.control.files import atomic_write
from proxyd.control.schema import Snapshot, SnapshotError, parse_snapshot

log = logging.getLogger("proxyd.control.snapshot")

Fetch = Callable[[str | None], Awaitable[tuple[int, str | None, dict | None]]]
Subscriber = Callable[[Snapshot], None]


class SnapshotStore:
    def __init__(self, *, path: Path, fetch: Fetch, run_io: Callable[..., Awaitable[Any]],
                 poll_interval: float):
        self.path = Path(path)
        self._fetch = fetch
        self._run_io = run_io
        self.poll_interval = poll_interval
        self._current: Snapshot | None = None
        self._subscribers: list[Subscriber] = []
        self._failing = False
        self.last_error: str | None = None
        self.last_answer_at: float | None = None  # time.monotonic() of the last 200/304 (proxyd.metrics)
        self.changed = asyncio.Event()  # set on every accepted change (cleared by whoever waits)

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(snapshot)` on the event loop after each change; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def load_last_known_good(self) -> Snapshot | None:
        """Blocking: read the on-disk copy; a missing or corrupt file is logged and ignored."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read last-known-good snapshot %s: %s; ignoring it", self.path, exc)
            return None
        try:
            snapshot = parse_snapshot(json.loads(raw))
        except (ValueError, SnapshotError) as exc:
            log.warning("ignoring corrupt last-known-good snapshot %s: %s", self.path, exc)
            return None
        log.info("loaded last-known-good snapshot %s (etag %s)", self.path, snapshot.etag)
        return snapshot

    async def load(self) -> Snapshot | None:
        snapshot = await self._run_io(self.load_last_known_good)
        if snapshot is not None and self._current is None:
            self._apply(snapshot)
        return snapshot

    async def refresh(self) -> bool:
        """One poll. True when a new snapshot was accepted; failures are logged once per outage."""
        etag = self._current.etag if self._current else None
        try:
            status, _, body = await self._fetch(etag)
        except ControlApiError as exc:
            self._failed(f"cannot fetch config snapshot: {exc}")
            return False
        self.last_answer_at = time.monotonic()
        if self._failing:
            log.info("config snapshot fetch works again")
            self._failing = False
        if status == 304 or body is None:
            return False
        try:
            snapshot = parse_snapshot(body)
        except SnapshotError as exc:
            self._failed(f"rejected config snapshot ({exc}); keeping the last-known-good one")
            return False
        if self._current is not None and snapshot == self._current:
            return False
        try:
            await self._run_io(atomic_write, self.path, json.dumps(body, separators=(",", ":")).encode())
        except OSError as exc:
            log.error("cannot save snapshot to %s: %s (using it in memory anyway)", self.path, exc)
        self._apply(snapshot)
        return True

    def age_seconds(self, now: float) -> float | None:
        """Seconds since the control plane last answered a poll (`now`: time.monotonic()); None: never."""
        return None if self.last_answer_at is None else max(0.0, now - self.last_answer_at)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.refresh()

    def _failed(self, message: str) -> None:
        self.last_error = message
        if not self._failing:
            self._failing = True
            log.warning(message)

    def _apply(self, snapshot: Snapshot) -> None:
        self._current = snapshot
        self.changed.set()
        for callback in list(self._subscribers):
            try:
                callback(snapshot)
            except Exception:  # a subscriber bug must not stop config updates
                log.exception("snapshot subscriber %r failed", callback)
