"""Moves report batches from the Reporter to the control plane, through the disk spool when needed.

Two tasks: the pump cuts batches from the Reporter (size/time bounded) and puts them in the
Outbox; the sender posts the Outbox's oldest batch. Every batch is written (fsynced) to the spool
before it can be sent and removed only after the control plane acknowledged it, so a SIGKILL loses
no report: after a restart the spool is sent again, and the control plane drops the event ids it
already stored. Only when the spool refuses a batch (over its cap, or a write error) while the API
answers does it wait in memory (a few batches). The Outbox always hands out the batch with the
lowest seq, memory or spool, so delivery order is seq order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from proxyd.control.client import AuthError, PermanentError, TransientError
from proxyd.control.reports import Batch, Reporter
from proxyd.control.seqstate import SeqReservation
from proxyd.control.spool import SegmentContents, Spool

log = logging.getLogger("proxyd.control.delivery")

RunIo = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Pending:
    """A batch being delivered: a memory batch, or lines [start, end) of the loaded spool segment."""

    lines: tuple[bytes, ...]
    first_seq: int
    memory_batch: Batch | None = None
    segment_end: int = 0


class Outbox:
    def __init__(self, spool: Spool, run_io: RunIo, *, max_memory_batches: int,
                 batch_max_events: int, batch_max_bytes: int):
        self._spool = spool
        self._run_io = run_io
        self._max_memory_batches = max_memory_batches
        self._batch_max_events = batch_max_events
        self._batch_max_bytes = batch_max_bytes
        self._memory: deque[Batch] = deque()
        self._segment: SegmentContents | None = None
        self._cursor = 0
        self.spooling = False  # set while the API fails: new batches go straight to disk
        self._work = asyncio.Event()

    @property
    def memory_events(self) -> int:
        return sum(len(b.lines) for b in self._memory)

    async def put(self, batch: Batch) -> None:
        refused = await self._run_io(self._spool.try_append, batch)
        if refused is not None:
            if not self.spooling and len(self._memory) < self._max_memory_batches:
                self._memory.append(batch)  # not durable, but delivered if proxyd lives
            else:
                self._spool.count_refused(batch, refused)
        self._work.set()

    async def next(self) -> Pending:
        """Wait for and return the lowest-seq batch not yet acknowledged."""
        while True:
            self._work.clear()
            head = self._memory[0] if self._memory else None
            spool_seq = self._segment.first_seq if self._segment else self._spool.oldest_first_seq()
            if head is not None and (spool_seq is None or head.first_seq < spool_seq):
                return Pending(head.lines, head.first_seq, memory_batch=head)
            if spool_seq is None:
                await self._work.wait()
                continue
            if self._segment is None:
                self._segment, self._cursor = await self._run_io(self._spool.load_oldest), 0
                if self._segment is None:
                    continue
            if self._cursor >= len(self._segment.lines):  # nothing valid left in it
                await self._finish_segment()
                continue
            return self._slice_segment()

    def _slice_segment(self) -> Pending:
        lines, start = self._segment.lines, self._cursor
        end, size = start, 0
        while end < len(lines) and end - start < self._batch_max_events:
            if end > start and size + len(lines[end]) + 1 > self._batch_max_bytes:
                break
            size += len(lines[end]) + 1
            end += 1
        return Pending(lines[start:end], self._segment.first_seq, segment_end=end)

    async def _finish_segment(self) -> None:
        name, self._segment = self._segment.name, None
        await self._run_io(self._spool.remove, name)

    async def ack(self, pending: Pending) -> None:
        """The control plane has this batch (or it was dead-lettered): forget it."""
        if pending.memory_batch is not None:
            if self._memory and self._memory[0] is pending.memory_batch:
                self._memory.popleft()
            return
        self._cursor = pending.segment_end
        if self._segment is not None and self._cursor >= len(self._segment.lines):
            await self._finish_segment()

    async def spool_memory(self) -> None:
        """Move the in-memory batches to disk, oldest first (one the spool refuses is dropped, counted)."""
        while self._memory:
            batch = self._memory[0]
            await self._run_io(self._spool.append, batch)
            if self._memory and self._memory[0] is batch:
                self._memory.popleft()


class Delivery:
    def __init__(self, *, reporter: Reporter, outbox: Outbox, spool: Spool, seq_state: SeqReservation,
                 post: Callable[[bytes], Awaitable[dict]], node_json: Callable[[], bytes], run_io: RunIo,
                 retry_initial: float, retry_max: float, seq_block: int):
        self._reporter = reporter
        self._outbox = outbox
        self._spool = spool
        self._seq_state = seq_state
        self._post = post
        self._node_json = node_json
        self._run_io = run_io
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._seq_block = seq_block
        self._failures = 0
        self._writing_events = 0
        self._logged_statuses: set[int] = set()
        self.delivered_events = 0
        self.failed_posts = 0  # report POSTs that failed (retried later), for proxyd.metrics
        self.last_error: str | None = None

    @property
    def reachable(self) -> bool:
        return self._failures == 0

    async def run_pump(self) -> None:
        reporter = self._reporter
        while True:
            now = reporter.clock()
            if reporter.ready(now):
                await self._put(reporter.cut())
                continue
            deadline = reporter.deadline()
            reporter.wakeup.clear()
            try:
                timeout = None if deadline is None else max(0.0, deadline - now)
                await asyncio.wait_for(reporter.wakeup.wait(), timeout)
            except TimeoutError:
                pass

    @property
    def volatile_events(self) -> int:
        """Events cut from the Reporter that are not on disk: being written, or held in memory."""
        return self._writing_events + self._outbox.memory_events

    async def _put(self, batch: Batch) -> None:
        self._writing_events += len(batch.lines)
        try:
            if batch.last_seq >= self._seq_state.reserved:
                try:
                    await self._run_io(self._seq_state.reserve, batch.last_seq + 1 + self._seq_block)
                except OSError as exc:
                    log.error("cannot persist report seq state %s: %s", self._seq_state.path, exc)
            await self._outbox.put(batch)
        finally:
            self._writing_events -= len(batch.lines)

    async def run_sender(self) -> None:
        while True:
            pending = await self._outbox.next()
            body = self.envelope(pending.lines)
            try:
                await self._post(body)
            except TransientError as exc:
                await self._failed(f"control plane unreachable ({exc})", exc)
                continue
            except AuthError as exc:
                await self._failed(f"control plane refuses this node's token ({exc})", exc)
                continue
            except PermanentError as exc:
                await self._dead_letter(pending, exc)
                continue
            await self._outbox.ack(pending)
            self.delivered_events += len(pending.lines)
            if self._failures:
                log.info("control plane reachable again; %d spooled bytes left to deliver", self._spool.bytes)
            self._failures = 0
            self._outbox.spooling = False

    def envelope(self, lines: tuple[bytes, ...]) -> bytes:
        return b"".join((b'{"schema_version":1,"node":', self._node_json(), b',"events":[',
                         b",".join(lines), b"]}"))

    async def _failed(self, message: str, exc: Exception) -> None:
        if self._failures == 0:
            log.warning("%s; spooling reports in %s", message, self._spool.directory)
        self.last_error = str(exc)
        self._failures += 1
        self.failed_posts += 1
        self._outbox.spooling = True
        await self._outbox.spool_memory()
        ceiling = self._retry_max if isinstance(exc, AuthError) else min(
            self._retry_max, self._retry_initial * 2 ** min(self._failures - 1, 30))
        await asyncio.sleep(ceiling * random.uniform(0.5, 1.0))

    async def _dead_letter(self, pending: Pending, exc: PermanentError) -> None:
        self.last_error = str(exc)
        if exc.status not in self._logged_statuses:
            self._logged_statuses.add(exc.status)
            log.error("control plane rejected a report batch (%s); keeping it in %s, not retrying "
                      "(logged once per status)", exc, self._spool.dead_directory)
        await self._run_io(self._spool.dead_letter, pending.lines, pending.first_seq)
        await self._outbox.ack(pending)

    async def flush_to_spool(self) -> None:
        """Shutdown: everything still in memory goes to disk (delivered on the next start)."""
        await self._outbox.spool_memory()
        for batch in self._reporter.cut_all():
            await self._put_on_disk(batch)

    async def _put_on_disk(self, batch: Batch) -> None:
        if batch.last_seq >= self._seq_state.reserved:
            await self._run_io(self._seq_state.reserve, batch.last_seq + 1)
        await self._run_io(self._spool.append, batch)
