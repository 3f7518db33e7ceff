"""Set-based application of one report batch: a handful of queries per batch, not per event.

Sessions named by the batch are loaded (locked) in one query, events are applied to them in memory
in seq order, then new rows are inserted and changed rows updated in bulk; play logs are inserted in
bulk. Sessions and play logs are plain rows (appliance.playback.session_rows, {column: value} dicts),
not model instances. split.changed events are applied together, the newest per split (one locking read, bulk writes).
cache.changed and sendevent events (rare) are applied one by one afterwards, with the batch's
session rows at hand. Runs inside report_batch_ingest's transaction, with the node row locked.
"""
from __future__ import annotations

import logging

from appliance.content.models import CachedContent, ContentState
from appliance.content.services import content_apply_change
from appliance.control.coerce import as_str
from appliance.core.bulk import column_defaults, insert_values
from appliance.history.services import TrafficDeltas
from appliance.nodes.models import ProxyNode
from appliance.origins.models import Origin
from appliance.origins.selectors import origins_for_matching
from appliance.playback import services as playback
from appliance.playback.models import EndReason, PlayLog, ServedFrom
from appliance.playback.session_rows import SessionRow, session_row_new, session_rows_locked, session_rows_save
from appliance.playback.split_services import split_live_payload, splits_apply
from appliance.uplink.services import uplink_enqueue_from_report

logger = logging.getLogger(__name__)

SESSION_KINDS = ("session.started", "session.counters", "session.ended", "playlog")
SPLIT_KIND = "split.changed"
CACHE, ORIGIN = ServedFrom.CACHE.value, ServedFrom.ORIGIN.value  # plain str: compared once or twice per event
ORIGIN_ERROR = EndReason.ORIGIN_ERROR.value
SESSION_FIELDS = ("url", "origin_url", "player_addr", "player_ip", "user_agent", "transports", "served_from",
                  "started_at", "origin_id", "ended_at", "end_reason", "bytes_out", "packets_out", "bytes_in",
                  "packets_in", "packets_lost", "jitter_ms", "counters_seq", "updated_at")


def _session_id(event: dict) -> str:
    data = event["data"]
    return as_str(data.get("session_id"), 128) if isinstance(data, dict) else ""


class BatchApply:
    def __init__(self, node: ProxyNode, *, generation: int | None = None) -> None:
        self.node = node
        self.generation = generation  # the snapshot generation read under the node lock (origins cache)
        self.sessions: dict[str, SessionRow] = {}
        self.new: dict[str, SessionRow] = {}
        self.changed: set[str] = set()
        self.origins: list[Origin] | None = None
        self.traffic = TrafficDeltas()  # flushed by the caller (report_batch_ingest)

    def run(self, events: list[dict]) -> list[tuple[str, dict]]:
        """`events` are fresh (not stored before) and sorted by seq. Returns the live events to publish
        after commit (the caller adds its own and publishes them together)."""
        sids = [_session_id(e) if e["kind"] in SESSION_KINDS else "" for e in events]
        self._load_sessions(set(sids) - {""})
        playlogs: list[tuple[dict, SessionRow | None]] = []
        later: list[dict] = []
        splits: list[dict] = []
        published: list[tuple[str, SessionRow]] = []
        for event, sid in zip(events, sids, strict=True):
            kind, data, seq, at = event["kind"], event["data"], event["seq"], event["at"]
            if kind == SPLIT_KIND:
                splits.append(event)
                continue
            if kind not in SESSION_KINDS:
                later.append(event)
                continue
            session = self._session(sid) if sid else None
            if kind == "playlog":
                origin_id = playback.playlog_origin_id(session, origins=self._origins())
                playlogs.append((playback.playlog_values(data, at, origin_id=origin_id), session))
            elif session is None:
                logger.info("%s from %s without session_id ignored", kind, self.node.name)
            elif kind == "session.started":
                playback.started_apply(session, data, at, origins=self._origins())
                published.append(("session.started", session))
                self.traffic.add(at, requests=1, cache_requests=int(session.served_from == CACHE))
            elif kind == "session.counters":
                before = (session.bytes_out, session.bytes_in)
                if playback.counters_apply(session, data, seq):
                    self.changed.add(sid)
                    self._session_traffic(session, before, at)
            else:
                before = (session.bytes_out, session.bytes_in)
                playback.ended_apply(session, data, seq, at)
                published.append(("session.ended", session))
                self._session_traffic(session, before, at)
                self.traffic.add(at, errors=int(session.end_reason == ORIGIN_ERROR))
            if session is not None and kind != "session.counters":
                self.changed.add(sid)
        self._save_sessions()
        defaults = column_defaults(PlayLog)
        # session ids now that new sessions have primary keys
        insert_values(PlayLog, [{**defaults, **values, "node_id": self.node.pk,
                                 "session_id": session.id if session is not None else None}
                                for values, session in playlogs])
        changed_splits = splits_apply(node=self.node, events=splits, origins=self._origins,
                                      moved=self._split_traffic)
        for event in later:
            self._apply_other(event)
        return ([(kind, playback.live_payload(self.node, session)) for kind, session in published]
                + [(SPLIT_KIND, split_live_payload(split)) for split in changed_splits])

    def _session_traffic(self, session: SessionRow, before: tuple[int, int], at) -> None:
        """Counter deltas of one session; a split session's bytes in are its hub's, counted once there."""
        out, fetched = session.bytes_out - before[0], session.bytes_in - before[1]
        kind = session.served_from
        self.traffic.add(at, bytes_out=out, cache_bytes_out=out if kind == CACHE else 0,
                         origin_bytes=fetched if kind == ORIGIN else 0)

    def _split_traffic(self, at, bytes_in: int, origin_error: bool) -> None:
        self.traffic.add(at, origin_bytes=bytes_in, errors=int(origin_error))

    def _load_sessions(self, ids: set[str]) -> None:
        self.sessions = session_rows_locked(node_id=self.node.pk, session_ids=ids)

    def _session(self, sid: str) -> SessionRow:
        session = self.sessions.get(sid)
        if session is None:
            session = self.sessions[sid] = self.new[sid] = session_row_new(node_id=self.node.pk, session_id=sid)
        return session

    def _origins(self) -> list[Origin]:
        if self.origins is None:  # at most one query per batch, not per event
            self.origins = origins_for_matching(generation=self.generation)
        return self.origins

    def _save_sessions(self) -> None:
        session_rows_save(list(self.new.values()), [self.sessions[sid] for sid in self.changed if sid not in self.new],
                          SESSION_FIELDS)

    def _apply_other(self, event: dict) -> None:
        kind, data, seq, at = event["kind"], event["data"], event["seq"], event["at"]
        if kind == "cache.changed":
            before = (CachedContent.objects.filter(node=self.node, url=as_str(data.get("url"), 2000))
                      .values_list("state", "report_seq").first())
            content = content_apply_change(node=self.node, data=data, seq=seq, at=at)
            if (content is not None and content.state == ContentState.COMPLETE and content.report_seq == seq
                    and (before is None or (before[0] != ContentState.COMPLETE and before[1] < seq))):
                self.traffic.add(at, origin_bytes=content.size_bytes)  # a fill finished: fetched from origin
        elif kind == "sendevent":
            sid = _session_id(event)  # the model row (uplink's foreign key): rare events, one query each
            session = playback.session_locked(node=self.node, session_id=sid) if sid else None
            uplink_enqueue_from_report(node=self.node, event_id=event["id"], data=data, at=at, session=session)
        else:
            logger.info("report event kind %r from %s stored but not applied", kind, self.node.name)
