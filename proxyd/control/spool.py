"""Disk spool for report events the control plane has not acknowledged yet.

Segments are append-only files of JSON lines (one event per line) named after the first event's
seq and holding one contiguous seq range, so listing them in name order delivers events in seq
order no matter which path wrote them when. Every append is flushed and fsynced. Segments that exist at start-up are never appended to
again, so a torn last line left by a crash stays last and is skipped when read. A segment is
deleted only after the control plane answered 2xx for all of it.

All methods block on disk I/O: call them from one worker thread (the lock only guards the index).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from proxyd.control.files import ensure_private_dir, fsync_dir
from proxyd.control.reports import Batch

log = logging.getLogger("proxyd.control.spool")

SUFFIX = ".jsonl"
FULL, WRITE_ERROR = "full", "write_error"  # why try_append refused a batch


@dataclass(frozen=True, slots=True)
class SegmentContents:
    name: str
    first_seq: int
    lines: tuple[bytes, ...]  # valid events only, in file order


@dataclass
class SpoolCounters:
    dropped_full: int = 0  # events refused because the spool was at its byte or segment cap
    dropped_write_error: int = 0
    corrupt_lines: int = 0  # torn or unparsable lines skipped on read
    dead_lettered: int = 0
    dead_letter_dropped: int = 0


@dataclass
class _Segment:
    name: str
    first_seq: int
    size: int
    last_seq: int | None = None  # only known for the segment currently open for appends


def _sort_key(name: str) -> tuple[int, int] | None:
    parts = name[: -len(SUFFIX)].split(".") if name.endswith(SUFFIX) else []
    if not parts or not all(p.isdigit() for p in parts) or len(parts) > 2:
        return None
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 0


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int, max_segments: int, segment_max_bytes: int,
                 dead_letter_max_bytes: int):
        self.directory = ensure_private_dir(Path(directory))
        self.dead_directory = ensure_private_dir(self.directory / "dead")
        self._max_bytes = max_bytes
        self._max_segments = max_segments
        self._segment_max_bytes = segment_max_bytes
        self._dead_letter_max_bytes = dead_letter_max_bytes
        self._lock = threading.Lock()
        self.counters = SpoolCounters()
        self._index: list[_Segment] = self._scan(self.directory)
        self._bytes = sum(s.size for s in self._index)
        self._tail: _Segment | None = None  # open for appends; segments found at start-up stay sealed
        self._dead_bytes = sum(p.stat().st_size for p in self.dead_directory.glob("*" + SUFFIX))
        self._warned_full = False

    @staticmethod
    def _scan(directory: Path) -> list[_Segment]:
        found = []
        for path in directory.iterdir():
            key = _sort_key(path.name)
            if key is not None and path.is_file():
                found.append((key, _Segment(path.name, key[0], path.stat().st_size)))
        return [segment for _, segment in sorted(found, key=lambda item: item[0])]

    # -- state seen from the event loop (cheap, no I/O) ---------------------------------------

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def segments(self) -> int:
        return len(self._index)

    def oldest_first_seq(self) -> int | None:
        with self._lock:
            return self._index[0].first_seq if self._index else None

    # -- blocking operations ------------------------------------------------------------------

    def max_seq(self) -> int | None:
        """Highest seq stored (segments hold disjoint seq ranges, so it is in the last one)."""
        for segment in reversed(self._index):
            try:
                lines = self._read_valid_lines(segment.name, report=False)
            except OSError:
                continue  # reported when delivery reads it
            if lines:
                return max(json.loads(line)["seq"] for line in lines)
        return None

    def append(self, batch: Batch) -> bool:
        """Append and fsync `batch`; False (events counted as dropped) when over a cap or on disk error."""
        refused = self.try_append(batch)
        if refused is not None:
            self.count_refused(batch, refused)
        return refused is None

    def count_refused(self, batch: Batch, refused: str) -> None:
        """Count the events of a batch `try_append` refused as dropped (FULL or WRITE_ERROR)."""
        with self._lock:
            if refused == FULL:
                self.counters.dropped_full += len(batch.lines)
            else:
                self.counters.dropped_write_error += len(batch.lines)

    def try_append(self, batch: Batch) -> str | None:
        """Append and fsync `batch`: None when it is on disk, else why not (FULL, WRITE_ERROR); counts
        nothing, so a caller that keeps the batch elsewhere has not dropped it."""
        data = b"".join(line + b"\n" for line in batch.lines)
        with self._lock:
            tail = self._tail
            # A segment only ever holds one contiguous seq range, so segments never interleave and
            # name order is seq order even when an older batch is written after newer ones.
            reuse = (tail is not None and tail is self._index[-1] and tail.last_seq is not None
                     and batch.first_seq == tail.last_seq + 1
                     and tail.size + len(data) <= self._segment_max_bytes)
            if self._bytes + len(data) > self._max_bytes or (
                    not reuse and len(self._index) >= self._max_segments):
                if not self._warned_full:
                    self._warned_full = True
                    log.error("report spool full (%d bytes in %d segments); new events are not kept on "
                              "disk until it drains", self._bytes, len(self._index))
                return FULL
            if not reuse:
                tail = _Segment(self._free_name(batch.first_seq), batch.first_seq, 0)
        try:
            self._write(self.directory / tail.name, data, new_file=not reuse)
        except OSError as exc:
            with self._lock:
                self._tail = None  # a partial write may have left a torn line: never append after it
            log.error("cannot write report spool segment %s: %s (%d events not on disk)",
                      tail.name, exc, len(batch.lines))
            return WRITE_ERROR
        with self._lock:
            tail.size += len(data)
            tail.last_seq = batch.last_seq
            self._bytes += len(data)
            if not reuse:
                self._index.append(tail)
                self._index.sort(key=lambda s: _sort_key(s.name))
            if tail is self._index[-1]:
                self._tail = tail
        return None

    def load_oldest(self) -> SegmentContents | None:
        """Seal and read the oldest segment (skipping torn or corrupt lines), None when empty."""
        with self._lock:
            if not self._index:
                return None
            segment = self._index[0]
            if self._tail is segment:
                self._tail = None
        try:
            lines = self._read_valid_lines(segment.name)
        except OSError as exc:
            self._quarantine(segment, exc)
            return None
        return SegmentContents(segment.name, segment.first_seq, tuple(lines))

    def _quarantine(self, segment: _Segment, exc: OSError) -> None:
        """An unreadable segment moves to dead/ (kept for an operator, never deleted by us)."""
        log.error("cannot read report spool segment %s (%s); moving it to %s", segment.name, exc,
                  self.dead_directory)
        try:
            os.replace(self.directory / segment.name, self.dead_directory / ("unreadable-" + segment.name))
        except OSError as move_exc:
            log.error("cannot move %s aside either: %s", segment.name, move_exc)
        with self._lock:
            if segment in self._index:
                self._index.remove(segment)
                self._bytes -= segment.size

    def remove(self, name: str) -> None:
        """Forget a fully delivered segment."""
        (self.directory / name).unlink(missing_ok=True)
        with self._lock:
            for i, segment in enumerate(self._index):
                if segment.name == name:
                    del self._index[i]
                    self._bytes -= segment.size
                    if self._tail is segment:
                        self._tail = None
                    break
            if self._bytes < self._max_bytes // 2:
                self._warned_full = False

    def dead_letter(self, lines: tuple[bytes, ...], first_seq: int) -> bool:
        """Keep events the control plane refused for an operator to inspect (bounded, never resent)."""
        data = b"".join(line + b"\n" for line in lines)
        if self._dead_bytes + len(data) > self._dead_letter_max_bytes:
            self.counters.dead_letter_dropped += len(lines)
            return False
        name = self._free_name(first_seq, self.dead_directory)
        try:
            self._write(self.dead_directory / name, data, new_file=True)
        except OSError as exc:
            self.counters.dead_letter_dropped += len(lines)
            log.error("cannot write dead-letter file %s: %s", name, exc)
            return False
        self._dead_bytes += len(data)
        self.counters.dead_lettered += len(lines)
        return True

    # -- helpers --------------------------------------------------------------------------------

    def _free_name(self, first_seq: int, directory: Path | None = None) -> str:
        directory = directory or self.directory
        name, n = f"{first_seq:020d}{SUFFIX}", 0
        while (directory / name).exists():
            n += 1
            name = f"{first_seq:020d}.{n}{SUFFIX}"
        return name

    @staticmethod
    def _write(path: Path, data: bytes, *, new_file: bool) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if new_file:
            fsync_dir(path.parent)

    def _read_valid_lines(self, name: str, *, report: bool = True) -> list[bytes]:
        raw = (self.directory / name).read_bytes()
        pieces = raw.split(b"\n")
        valid = []
        for lineno, piece in enumerate(pieces, start=1):
            if not piece:
                continue
            torn = lineno == len(pieces)  # no newline after it: the write was cut short
            if not torn and self._is_event(piece):
                valid.append(piece)
                continue
            if not report:
                continue
            self.counters.corrupt_lines += 1
            log.warning("report spool segment %s line %d is %s; skipped", name, lineno,
                        "torn (no newline, crash during write?)" if torn else "not a valid event")
        return valid

    @staticmethod
    def _is_event(line: bytes) -> bool:
        try:
            event = json.loads(line)
        except ValueError:
            return False
        return isinstance(event, dict) and isinstance(event.get("id"), str) and type(event.get("seq")) is int
