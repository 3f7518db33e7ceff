"""Gather every proxyd metric at scrape time from the runtime's own state (no hot-path counters)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from proxyd.metrics import counters
from proxyd.metrics.events import SESSION_COUNTERS, ReportTotals
from proxyd.metrics.exposition import Family, counter, from_counter, from_histogram, gauge

if TYPE_CHECKING:
    from proxyd.cache.store import CacheStore
    from proxyd.config import Config
    from proxyd.control.plane import ControlPlane

UNREPORTED = "none"  # a session before its first PLAY has not said where it is served from


class MetricsSource(Protocol):
    """What the collector reads from proxyd.server.ProxyServer."""

    config: Config
    sessions: dict
    connections: set
    cache_store: CacheStore | None


def collect(server: MetricsSource, totals: ReportTotals, plane: ControlPlane | None) -> list[Family]:
    families = _sessions(server, totals)
    families += _cache(server, totals)
    families += _splits(totals)
    families += [from_counter(c) if isinstance(c, counters.LabelledCounter) else from_histogram(c)
                 for c in counters.FAMILIES]
    if plane is not None:
        families += _control(plane)
    return families


def _sessions(server: MetricsSource, totals: ReportTotals) -> list[Family]:
    by_kind_state: dict[tuple[str, str], int] = {}
    players: dict[str, set[int]] = {}  # served_from -> ids of connected players with such a session
    sums = dict(totals.ended_counters)
    for session in list(server.sessions.values()):
        kind = totals.served_from.get(session.id, UNREPORTED)
        state = "detached" if session.detached else session.state
        by_kind_state[kind, state] = by_kind_state.get((kind, state), 0) + 1
        if not session.detached:
            players.setdefault(kind, set()).add(id(session.player))
        data = session.counters_data()
        for name in SESSION_COUNTERS:
            sums[kind, name] = sums.get((kind, name), 0) + data[name]
    sessions = Family("proxyd_sessions", "gauge", "open player sessions by where they are served from "
                      "(origin: relayed or replayed from a fill in progress, cache, split; none: before "
                      "PLAY) and state (init, ready, playing, detached)")
    for (kind, state), n in sorted(by_kind_state.items()):
        sessions.add(n, served_from=kind, state=state)
    families = [
        sessions,
        gauge("proxyd_player_connections", "open player RTSP connections", len(server.connections)),
        Family("proxyd_players", "gauge", "player connections with a session served from each kind",
               [("", (("served_from", kind),), len(ids)) for kind, ids in sorted(players.items())]),
        gauge("proxyd_max_sessions", "--max-sessions", server.config.limits.max_sessions),
        counter("proxyd_sessions_started_total", "sessions that reached PLAY, by served_from", totals.started,
                "served_from"),
        counter("proxyd_sessions_ended_total", "reported sessions that ended, by end_reason", totals.ended,
                "end_reason"),
    ]
    for name in SESSION_COUNTERS:
        family = Family(f"proxyd_session_{name}_total", "counter",
                        f"{name.replace('_', ' ')} of player sessions (open and ended), by served_from; "
                        "_in counts a relayed session's own origin session (fills and splits: see "
                        "proxyd_cache_filled_bytes_total, proxyd_split_bytes_in_total)")
        for (kind, counter_name), value in sorted(sums.items()):
            if counter_name == name:
                family.add(value, served_from=kind)
        families.append(family)
    hit_bytes = sums.get(("cache", "bytes_out"), 0)
    miss_bytes = sums.get(("origin", "bytes_out"), 0)
    families.append(counter("proxyd_cache_bytes_total", "bytes sent to players from the store (hit) or from "
                            "the origin, relayed or from a fill in progress (miss)",
                            {"hit": hit_bytes, "miss": miss_bytes}, "result"))
    return families


def _cache(server: MetricsSource, totals: ReportTotals) -> list[Family]:
    store = server.cache_store
    entries = len(store.entries) if store is not None else 0
    size = store.total_bytes if store is not None else 0
    quota = store.max_bytes if store is not None else server.config.cache_max_bytes
    return [
        gauge("proxyd_cache_entries", "committed cache entries", entries),
        gauge("proxyd_cache_size_bytes", "bytes the committed entries use on disk", size),
        gauge("proxyd_cache_quota_bytes", "--cache-max-bytes", quota),
        gauge("proxyd_cache_fills_active", "URLs being recorded now", len(totals.filling)),
        gauge("proxyd_cache_disk_full", "1 while the cache filesystem is full: the last fill could not "
              "be stored (cleared by the next stored fill)", int(store is not None and store.disk_full)),
        Family("proxyd_cache_disk_full_total", "counter", "fills not stored because the cache filesystem "
               "was full").add(store.disk_full_fills if store is not None else 0),
        counter("proxyd_cache_fills_total", "cache fills: started, and how they finished "
                "(complete, incomplete)",
                {"started": 0, "complete": 0, "incomplete": 0} | totals.fills, "outcome"),
        Family("proxyd_cache_filled_bytes_total", "counter", "bytes of entries committed by fills "
               "(what the cache fetched from origins)").add(totals.filled_bytes),
        counter("proxyd_cache_changes_total", "cache.changed reports by state (purged includes "
                "quota evictions)",
                totals.cache_states, "state"),
    ]


def _splits(totals: ReportTotals) -> list[Family]:
    by_state: dict[str, int] = {}
    players = Family("proxyd_split_players", "gauge", "players of each live split (as of its last status)")
    for split in totals.splits.values():
        by_state[split.state] = by_state.get(split.state, 0) + 1
        players.add(split.players, url=split.url)
    splits = Family("proxyd_splits", "gauge", "open splits (one origin session per live URL) by state")
    for state, n in sorted(by_state.items()):
        splits.add(n, state=state)
    return [
        splits,
        players,
        counter("proxyd_splits_ended_total", "splits that ended, by end_reason", totals.splits_ended,
                "end_reason"),
        Family("proxyd_split_reconnects_total", "counter", "origin session losses of splits")
        .add(totals.split_reconnects),
        Family("proxyd_split_bytes_in_total", "counter", "RTP bytes splits received from origins "
               "(as of each split's last status)").add(totals.split_bytes_in),
    ]


def _control(plane: ControlPlane) -> list[Family]:
    stats = plane.stats()
    dropped = Family("proxyd_report_dropped_total", "counter", "report events dropped, by reason")
    for reason, n in sorted(stats["dropped"].items()):
        dropped.add(n, reason=reason)
    age = plane.snapshot.age_seconds(time.monotonic())
    families = [
        gauge("proxyd_report_queue_events", "report events only in memory (not batched or not in the disk spool yet)", stats["queued"]),
        gauge("proxyd_report_spool_bytes", "undelivered report batches on disk (spool depth)",
              stats["spool_bytes"]),
        gauge("proxyd_report_spool_segments", "spool segment files on disk", plane.spool.segments),
        Family("proxyd_report_dead_lettered_total", "counter",
               "report batches the control plane refused (4xx)").add(stats["dead_lettered"]),
        dropped,
        Family("proxyd_report_delivered_events_total", "counter", "report events the control plane accepted")
        .add(plane.delivery.delivered_events),
        Family("proxyd_report_post_failures_total", "counter", "report POSTs that failed and were retried "
               "(control plane unreachable or refusing the token)").add(plane.delivery.failed_posts),
        gauge("proxyd_report_delivery_failing", "1 while report POSTs fail (reports are spooled)",
              int(not plane.delivery.reachable)),
    ]
    if age is not None:
        families.append(gauge("proxyd_snapshot_age_seconds",
                              "seconds since the control plane last answered a snapshot poll", age))
    return families
