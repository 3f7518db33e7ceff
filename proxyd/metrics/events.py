"""ReportTotals: a ReportSink in front of the real one that sums what the runtime already reports
(session.started/ended, cache.changed, split.changed), so counters stay monotonic after sessions,
fills and splits end. emit() is called per report, never per packet."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxyd.control.reports import ReportSink
from proxyd.log import get_logger

log = get_logger("metrics")

SESSION_COUNTERS = ("bytes_out", "packets_out", "bytes_in", "packets_in", "packets_lost")


@dataclass
class SplitState:
    url: str
    state: str
    players: int
    reconnects: int
    bytes_in: int


@dataclass
class ReportTotals:
    inner: ReportSink
    served_from: dict[str, str] = field(default_factory=dict)  # live reported session id -> kind
    started: dict[str, int] = field(default_factory=dict)  # served_from -> sessions started
    ended: dict[str, int] = field(default_factory=dict)  # end_reason -> sessions ended
    ended_counters: dict[tuple[str, str], int] = field(default_factory=dict)  # (served_from, counter) -> sum
    filling: set[str] = field(default_factory=set)  # origin URLs being filled
    fills: dict[str, int] = field(default_factory=dict)  # started / complete / incomplete
    filled_bytes: int = 0  # size of entries committed by fills
    cache_states: dict[str, int] = field(default_factory=dict)  # cache.changed state -> count
    splits: dict[str, SplitState] = field(default_factory=dict)  # live split_id -> last status
    ended_split_reconnects: int = 0
    ended_split_bytes_in: int = 0
    splits_ended: dict[str, int] = field(default_factory=dict)  # end_reason -> count

    def emit(self, kind: str, data: dict) -> None:
        try:
            self.observe(kind, data)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed report must not stop reporting
            log.warning("metrics: cannot count %s report: %s", kind, exc)
        self.inner.emit(kind, data)

    def observe(self, kind: str, data: dict) -> None:
        if kind == "session.started":
            source = data["served_from"]
            self.served_from[data["session_id"]] = source
            self.started[source] = self.started.get(source, 0) + 1
        elif kind == "session.ended":
            source = self.served_from.pop(data["session_id"], "unknown")
            for name in SESSION_COUNTERS:
                key = (source, name)
                self.ended_counters[key] = self.ended_counters.get(key, 0) + int(data[name])
            reason = data["end_reason"]
            self.ended[reason] = self.ended.get(reason, 0) + 1
        elif kind == "cache.changed":
            self._cache_changed(data["url"], data["state"], int(data["size_bytes"]))
        elif kind == "split.changed":
            self._split_changed(data)

    def _cache_changed(self, url: str, state: str, size_bytes: int) -> None:
        self.cache_states[state] = self.cache_states.get(state, 0) + 1
        if state == "filling":
            self.filling.add(url)
            self.fills["started"] = self.fills.get("started", 0) + 1
        elif url in self.filling and state in ("complete", "incomplete"):
            self.filling.discard(url)
            self.fills[state] = self.fills.get(state, 0) + 1
            if state == "complete":
                self.filled_bytes += size_bytes

    def _split_changed(self, data: dict) -> None:
        split_id, state = data["split_id"], data["state"]
        if state == "ended":
            self.splits.pop(split_id, None)
            self.ended_split_reconnects += int(data["reconnects"])
            self.ended_split_bytes_in += int(data["bytes_in"])
            reason = data.get("end_reason") or "unknown"
            self.splits_ended[reason] = self.splits_ended.get(reason, 0) + 1
            return
        self.splits[split_id] = SplitState(data["url"], state, int(data["players"]), int(data["reconnects"]),
                                            int(data["bytes_in"]))

    @property
    def split_reconnects(self) -> int:
        return self.ended_split_reconnects + sum(s.reconnects for s in self.splits.values())

    @property
    def split_bytes_in(self) -> int:
        return self.ended_split_bytes_in + sum(s.bytes_in for s in self.splits.values())
