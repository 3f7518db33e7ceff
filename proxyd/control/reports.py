"""ReportSink implementations: `Reporter` (ids, seq, timestamps, bounded batching) and `NullSink`.

`Reporter.emit` runs on the event loop for every report the runtime makes, so it only encodes the
event and appends it to a bounded queue. Delivery (network, spool) lives in `delivery.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger("proxyd.control.reports")


class ReportSink(Protocol):
    def emit(self, kind: str, data: dict) -> None: ...  # never blocks, never raises


class NullSink:
    """No control plane configured: reports go nowhere."""

    def emit(self, kind: str, data: dict) -> None:
        return None


def iso_utc(epoch_seconds: float) -> str:
    """2026-11-25T12:00:01.250Z (UTC, milliseconds), the contract's `at` format."""
    stamp = datetime.fromtimestamp(epoch_seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Batch:
    """Encoded events with consecutive-in-emit-order seq numbers, one JSON object per line."""

    lines: tuple[bytes, ...]
    first_seq: int
    last_seq: int

    @property
    def nbytes(self) -> int:
        return sum(len(line) for line in self.lines) + len(self.lines)


@dataclass
class ReporterCounters:
    emitted: int = 0
    dropped_queue_full: int = 0
    dropped_oversize: int = 0
    dropped_invalid: int = 0


class Reporter:
    """Gives each event an id, a per-node seq and an `at`, and queues it (bounded) for the batcher.

    Batches are cut when `batch_max_events` or `batch_max_bytes` (sum of encoded events) is reached,
    or when the oldest queued event has waited `batch_max_delay` seconds. Time comes from the
    injected `clock` (monotonic, for delays) and `wall_clock` (epoch seconds, for `at`).
    Call `emit` from the event loop thread only (it sets an asyncio.Event).
    """

    def __init__(self, *, first_seq: int, batch_max_events: int, batch_max_bytes: int,
                 batch_max_delay: float, queue_max_events: int, queue_max_bytes: int,
                 wall_clock: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic,
                 new_id: Callable[[], uuid.UUID] = uuid.uuid4):
        self.batch_max_events = batch_max_events
        self.batch_max_bytes = batch_max_bytes
        self.batch_max_delay = batch_max_delay
        self._queue_max_events = queue_max_events
        self._queue_max_bytes = queue_max_bytes
        self._wall_clock = wall_clock
        self.clock = clock
        self._new_id = new_id
        self._next_seq = first_seq
        self._queue: deque[tuple[int, bytes, float]] = deque()  # (seq, line, queued at)
        self._queue_bytes = 0
        self.counters = ReporterCounters()
        self.wakeup = asyncio.Event()  # set on the first queued event and when a batch is full
        self._warned_invalid = False

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def queued_events(self) -> int:
        return len(self._queue)

    def emit(self, kind: str, data: dict) -> None:
        try:
            self._emit(kind, data)
        except Exception as exc:  # the contract: emit never raises into the runtime
            self.counters.dropped_invalid += 1
            if not self._warned_invalid:
                self._warned_invalid = True
                log.warning("dropping unencodable %r report (%s: %s); further ones are only counted",
                            kind, type(exc).__name__, exc)

    def _emit(self, kind: str, data: dict) -> None:
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise TypeError("kind must be str and data a dict")
        if len(self._queue) >= self._queue_max_events:
            self.counters.dropped_queue_full += 1
            return
        seq = self._next_seq
        event = {"id": str(self._new_id()), "seq": seq, "at": iso_utc(self._wall_clock()),
                 "kind": kind, "data": data}
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        if len(line) + 1 > self.batch_max_bytes:
            self.counters.dropped_oversize += 1
            return
        if self._queue_bytes + len(line) + 1 > self._queue_max_bytes:
            self.counters.dropped_queue_full += 1
            return
        self._next_seq = seq + 1
        self._queue.append((seq, line, self.clock()))
        self._queue_bytes += len(line) + 1
        self.counters.emitted += 1
        if len(self._queue) == 1 or self._full():
            self.wakeup.set()

    def _full(self) -> bool:
        return len(self._queue) >= self.batch_max_events or self._queue_bytes >= self.batch_max_bytes

    def ready(self, now: float) -> bool:
        """True when a batch should be cut now (size reached or oldest event waited long enough)."""
        if not self._queue:
            return False
        return self._full() or now - self._queue[0][2] >= self.batch_max_delay

    def deadline(self) -> float | None:
        """`clock` time at which the oldest queued event must be sent, None when the queue is empty."""
        return self._queue[0][2] + self.batch_max_delay if self._queue else None

    def cut(self) -> Batch | None:
        """Take the oldest events that fit in one batch (at least one when any is queued)."""
        if not self._queue:
            return None
        lines: list[bytes] = []
        size = 0
        first_seq = last_seq = self._queue[0][0]
        while self._queue and len(lines) < self.batch_max_events:
            seq, line, _ = self._queue[0]
            if lines and size + len(line) + 1 > self.batch_max_bytes:
                break
            self._queue.popleft()
            lines.append(line)
            size += len(line) + 1
            last_seq = seq
        self._queue_bytes -= size
        return Batch(tuple(lines), first_seq, last_seq)

    def cut_all(self) -> list[Batch]:
        batches = []
        while (batch := self.cut()) is not None:
            batches.append(batch)
        return batches
