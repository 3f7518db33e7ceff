"""ControlPlane: wires Reporter, Spool, ControlClient and SnapshotStore together as asyncio tasks.

    plane = ControlPlane(ControlConfig(url=..., token=..., node_name=..., state_dir=...))
    plane.reporter.emit("session.started", {...})     # ReportSink, usable before start()
    await plane.start()                               # loads last-known-good, first fetch, tasks
    plane.snapshot.current / plane.snapshot.subscribe(callback)
    await plane.stop(deadline=5.0)                    # seconds allowed to put memory on disk
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import proxyd
from proxyd.control.client import ControlClient
from proxyd.control.delivery import Delivery, Outbox
from proxyd.control.files import ensure_private_dir
from proxyd.control.reports import Reporter
from proxyd.control.schema import Snapshot
from proxyd.control.seqstate import SeqReservation
from proxyd.control.snapshot import SnapshotStore
from proxyd.control.spool import Spool

log = logging.getLogger("proxyd.control")


@dataclass(frozen=True)
class ControlConfig:
    url: str  # control plane base URL, e.g. http://127.0.0.1:8000 (/internal/v1 is appended)
    token: str = field(repr=False)
    node_name: str
    state_dir: Path
    batch_max_events: int = 500
    batch_max_bytes: int = 512 * 1024  # sum of encoded events per POST
    batch_max_delay: float = 1.0  # seconds an event may wait for its batch
    spool_max_bytes: int = 64 << 20
    poll_interval: float = 10.0  # seconds between snapshot polls
    request_timeout: float = 5.0
    spool_max_segments: int = 4096
    segment_max_bytes: int = 1 << 20
    dead_letter_max_bytes: int = 16 << 20
    queue_max_events: int = 20_000  # events waiting to be batched
    queue_max_bytes: int = 16 << 20
    memory_batches: int = 4  # batches the full (or failing) spool refused, held in memory while the API answers
    retry_initial: float = 0.5  # seconds; doubles per failure up to retry_max (with jitter)
    retry_max: float = 30.0
    max_response_bytes: int = 16 << 20
    seq_block: int = 10_000  # seq numbers reserved per state-file write
    listen: str = ""  # reported as node.listen
    version: str = proxyd.__version__

    def __post_init__(self):
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        if not self.token or any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F for c in self.token):
            raise ValueError("control token must be non-empty printable text without spaces")
        if not self.node_name:
            raise ValueError("node_name must not be empty")
        for name in ("batch_max_events", "batch_max_bytes", "spool_max_bytes", "spool_max_segments",
                     "segment_max_bytes", "queue_max_events", "queue_max_bytes", "memory_batches",
                     "max_response_bytes", "seq_block"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("batch_max_delay", "poll_interval", "request_timeout", "retry_initial", "retry_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds")
        if self.dead_letter_max_bytes < 0:
            raise ValueError("dead_letter_max_bytes must be >= 0")
        ControlClient(self.url, self.token, timeout=self.request_timeout)  # validates the URL


def read_token_file(path: str | Path) -> str:
    """Token from a file (PROXYD_CONTROL_TOKEN_FILE), surrounding whitespace removed."""
    return Path(path).read_text(encoding="utf-8").strip()


class ControlPlane:
    """The constructor reads the seq state and scans the spool (small, blocking, before serving)."""

    def __init__(self, config: ControlConfig, *, node_load: Callable[[], dict] | None = None,
                 wall_clock: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self._node_load = node_load or (lambda: {"sessions": 0, "bandwidth_bps": 0, "cache_disk_full": False})
        state_dir = ensure_private_dir(config.state_dir)
        self._io_pool = ThreadPoolExecutor(1, thread_name_prefix="control-io")  # serialises disk writes
        self._http_pool = ThreadPoolExecutor(2, thread_name_prefix="control-http")
        self.client = ControlClient(config.url, config.token, timeout=config.request_timeout,
                                    max_response_bytes=config.max_response_bytes,
                                    user_agent=f"proxyd/{config.version}")
        self.spool = Spool(state_dir / "spool", max_bytes=config.spool_max_bytes,
                           max_segments=config.spool_max_segments, segment_max_bytes=config.segment_max_bytes,
                           dead_letter_max_bytes=config.dead_letter_max_bytes)
        self._seq_state = SeqReservation(state_dir / "report-seq.json")
        first_seq = max(self._seq_state.load(), (self.spool.max_seq() or 0) + 1, 1)
        self.reporter = Reporter(
            first_seq=first_seq, batch_max_events=config.batch_max_events,
            batch_max_bytes=config.batch_max_bytes, batch_max_delay=config.batch_max_delay,
            queue_max_events=config.queue_max_events, queue_max_bytes=config.queue_max_bytes,
            wall_clock=wall_clock, clock=clock)
        self._outbox = Outbox(self.spool, self._run_io, max_memory_batches=config.memory_batches,
                              batch_max_events=config.batch_max_events,
                              batch_max_bytes=config.batch_max_bytes)
        self.delivery = Delivery(reporter=self.reporter, outbox=self._outbox, spool=self.spool,
                                 seq_state=self._seq_state, post=self._post, node_json=self._node_json,
                                 run_io=self._run_io, retry_initial=config.retry_initial,
                                 retry_max=config.retry_max, seq_block=config.seq_block)
        self.snapshot = SnapshotStore(path=state_dir / "snapshot.json", fetch=self._fetch_snapshot,
                                      run_io=self._run_io, poll_interval=config.poll_interval)
        self.snapshot.subscribe(self.apply_reporting)
        self._tasks: list[asyncio.Task] = []
        self._stopped = False

    def apply_reporting(self, snapshot: Snapshot) -> None:
        """The control plane may ask for longer report batches and rarer snapshot polls (fewer
        requests when it serves many nodes); without its say the node's own settings apply."""
        delay = snapshot.report_batch_delay or self.config.batch_max_delay
        if delay != self.reporter.batch_max_delay:
            log.info("report batch delay %.1fs (was %.1fs)", delay, self.reporter.batch_max_delay)
            self.reporter.batch_max_delay = delay
        interval = snapshot.poll_interval or self.config.poll_interval
        if interval != self.snapshot.poll_interval:
            log.info("snapshot poll interval %.1fs (was %.1fs)", interval, self.snapshot.poll_interval)
            self.snapshot.poll_interval = interval

    async def start(self) -> None:
        """Load the last-known-good snapshot, try one fetch (bounded by request_timeout), start tasks."""
        await self._run_io(self._seq_state.reserve, self.reporter.next_seq + self.config.seq_block)
        await self.snapshot.load()
        await self.snapshot.refresh()
        for name, loop_fn in (("pump", self.delivery.run_pump), ("sender", self.delivery.run_sender),
                              ("snapshot", self.snapshot.run)):
            self._tasks.append(asyncio.create_task(self._supervise(name, loop_fn), name=f"control-{name}"))

    async def _supervise(self, name: str, loop_fn: Callable[[], Any]) -> None:
        """Restart a loop that died of a bug, after a pause, so reporting cannot stop for good."""
        while True:
            try:
                await loop_fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("control-plane %s loop failed; restarting it in %.1fs",
                              name, self.config.retry_max)
                await asyncio.sleep(self.config.retry_max)

    async def stop(self, deadline: float = 5.0) -> None:
        """Stop the tasks and put undelivered events on disk, taking at most `deadline` seconds."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await asyncio.wait_for(self.delivery.flush_to_spool(), deadline)
        except TimeoutError:
            log.error("report flush to %s did not finish within %.1fs; %d queued events lost",
                      self.spool.directory, deadline, self.reporter.queued_events)
        except OSError as exc:
            log.error("report flush to %s failed: %s", self.spool.directory, exc)
        self._io_pool.shutdown(wait=False, cancel_futures=True)
        self._http_pool.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> dict[str, Any]:
        """Drop counters and queue sizes, also sent as node.reporter in every report batch."""
        spool, reporter = self.spool.counters, self.reporter.counters
        return {
            "queued": self.reporter.queued_events + self.delivery.volatile_events,  # not on disk yet
            "spool_bytes": self.spool.bytes,
            "dropped": {"queue_full": reporter.dropped_queue_full, "oversize": reporter.dropped_oversize,
                        "invalid": reporter.dropped_invalid,
                        "spool_full": spool.dropped_full + spool.dropped_write_error,
                        "dead_letter_full": spool.dead_letter_dropped},
            "dead_lettered": spool.dead_lettered,
            "corrupt_spool_lines": spool.corrupt_lines,
        }

    def _node_json(self) -> bytes:
        node = {"name": self.config.node_name, "version": self.config.version, "listen": self.config.listen,
                "load": self._safe_load(), "reporter": self.stats()}
        return json.dumps(node, separators=(",", ":")).encode()

    def _safe_load(self) -> dict:
        try:
            load = self._node_load()
            return {"sessions": int(load["sessions"]), "bandwidth_bps": int(load["bandwidth_bps"]),
                    "cache_disk_full": bool(load.get("cache_disk_full"))}
        except Exception as exc:  # a runtime bug must not stop reporting
            log.warning("node load callback failed: %s", exc)
            return {"sessions": 0, "bandwidth_bps": 0, "cache_disk_full": False}

    async def _run_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io_pool, functools.partial(fn, *args))

    async def _post(self, body: bytes) -> dict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._http_pool, self.client.post_reports, body)

    async def _fetch_snapshot(self, etag: str | None):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._http_pool, self.client.get_snapshot, etag)
