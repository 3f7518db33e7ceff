"""Writes for sessions and play logs. Report appliers run inside the ingestion transaction."""
from __future__ import annotations

import datetime as dt
import ipaddress

from django.db import transaction
from django.utils import timezone

from appliance.control.coerce import as_float, as_int, as_str, as_str_list
from appliance.core.audit import Actor, audit_record
from appliance.core.exceptions import ConflictError
from appliance.core.live import publish_after_commit
from appliance.nodes.models import ProxyNode
from appliance.origins.selectors import origin_for_url
from appliance.playback.models import EndReason, PlayLog, ServedFrom, StreamSession
from appliance.playback.wmlog_fields import wmlog_columns

_COUNTERS = ("bytes_out", "packets_out", "bytes_in", "packets_in", "packets_lost")
_MAX_BIGINT = 2**63 - 1
# Choices.values builds a new list on every access: these run once per report event
_SERVED_FROM = frozenset(ServedFrom.values)
_END_REASONS = frozenset(EndReason.values)


def _ip_of(addr: str) -> str | None:
    """IP of "ip:port", "[v6]:port" or a bare address; None when it is none of these."""
    if addr.startswith("["):
        host = addr[1:addr.find("]")] if "]" in addr else ""
    elif addr.count(":") == 1:
        host = addr.split(":", 1)[0]
    else:
        host = addr
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def session_locked(*, node: ProxyNode, session_id: str) -> StreamSession:
    """The session row for (node, session_id), created empty if no event has named it yet."""
    session, _ = StreamSession.objects.select_for_update().get_or_create(node=node, session_id=session_id[:128])
    return session


def session_apply_started(*, node: ProxyNode, data: dict, at: dt.datetime) -> StreamSession:
    session = session_locked(node=node, session_id=as_str(data.get("session_id"), 128))
    started_apply(session, data, at, origins=None)
    session.save()
    publish_after_commit("session.started", live_payload(node, session))
    return session


def started_apply(session: StreamSession, data: dict, at: dt.datetime, *, origins: list | None) -> None:
    """session.started onto the row in memory; `origins` is a preloaded list (None: query it)."""
    session.url = as_str(data.get("url"), 2000)
    session.origin_url = as_str(data.get("origin_url"), 2000)
    session.player_addr = as_str(data.get("player_addr"), 64)
    session.player_ip = _ip_of(session.player_addr)
    session.user_agent = as_str(data.get("user_agent"), 512)
    session.transports = as_str_list(data.get("transports"))
    served_from = data.get("served_from")
    session.served_from = served_from if isinstance(served_from, str) and served_from in _SERVED_FROM else ""
    session.started_at = at
    session.origin = origin_for_url(session.origin_url, origins=origins) if session.origin_url else None


def counters_apply(session: StreamSession, data: dict, seq: int) -> bool:
    if seq <= session.counters_seq:
        return False  # an older snapshot of cumulative counters arrived late
    for name in _COUNTERS:
        value = data.get(name)
        # proxyd's own values are plain non-negative ints: skip as_int's checks (a batch's hottest loop)
        setattr(session, name, value if type(value) is int and 0 <= value <= _MAX_BIGINT else max(0, as_int(value)))
    session.jitter_ms = max(0.0, as_float(data.get("jitter_ms")))
    session.counters_seq = seq
    return True


def sessioncounters_apply(*, node: ProxyNode, data: dict, seq: int) -> StreamSession:
    session = session_locked(node=node, session_id=as_str(data.get("session_id"), 128))
    if counters_apply(session, data, seq):
        session.save()
    return session


def session_apply_ended(*, node: ProxyNode, data: dict, seq: int, at: dt.datetime) -> StreamSession:
    session = session_locked(node=node, session_id=as_str(data.get("session_id"), 128))
    ended_apply(session, data, seq, at)
    session.save()
    publish_after_commit("session.ended", live_payload(node, session))
    return session


def ended_apply(session: StreamSession, data: dict, seq: int, at: dt.datetime) -> None:
    counters_apply(session, data, seq)
    session.ended_at = at
    reason = data.get("end_reason")
    session.end_reason = reason if isinstance(reason, str) and reason in _END_REASONS else ""


def playlog_record(*, node: ProxyNode, data: dict, at: dt.datetime) -> PlayLog:
    session_id = as_str(data.get("session_id"), 128)
    session = session_locked(node=node, session_id=session_id) if session_id else None
    playlog = playlog_build(node, session, data, at, origins=None)
    playlog.save(force_insert=True)
    return playlog


def playlog_build(node: ProxyNode, session: StreamSession | None, data: dict, at: dt.datetime, *,
                  origins: list | None) -> PlayLog:
    """The unsaved PlayLog row of a playlog event."""
    return PlayLog(node=node, session=session,
                   **playlog_values(data, at, origin_id=playlog_origin_id(session, origins=origins)))


def playlog_origin_id(session, *, origins: list | None) -> int | None:
    """A play log's origin: its session's (a StreamSession or a session_rows.SessionRow), else matched
    from the session's origin URL."""
    if session is None:
        return None
    if session.origin_id:
        return session.origin_id
    origin = origin_for_url(session.origin_url, origins=origins) if session.origin_url else None
    return origin.pk if origin is not None else None


def playlog_values(data: dict, at: dt.datetime, *, origin_id: int | None) -> dict:
    """A playlog event's PlayLog columns but node_id and session_id ({column: value}; batch ingestion
    inserts them as they are, with the model's defaults for the [MS-WMLOG] columns the log lacks)."""
    fields = data.get("fields") if isinstance(data.get("fields"), dict) else {}
    columns = wmlog_columns(fields)
    logged_at = at
    if columns.get("log_date") and columns.get("log_time"):
        logged_at = dt.datetime.combine(columns["log_date"], columns["log_time"], tzinfo=dt.UTC)
    return {
        "origin_id": origin_id, "received_at": at, "logged_at": logged_at,
        "kind": as_str(data.get("kind"), 16), "log_type": as_str(data.get("log_type"), 16) or "unknown",
        "url": as_str(data.get("url"), 2000), "player_addr": as_str(data.get("player_addr"), 64),
        "user_agent": as_str(data.get("user_agent"), 512), "raw": as_str(data.get("raw"), 1 << 20),
        "parse_error": as_str(data.get("parse_error"), 2000), **columns,
    }


def session_terminate(*, session: StreamSession, actor: Actor) -> StreamSession:
    """Ask the session's node to end it; the node sees it in the next snapshot."""
    with transaction.atomic():
        session = StreamSession.objects.select_for_update().get(pk=session.pk)
        if session.ended_at is not None:
            raise ConflictError("The session has already ended.", code="session_ended")
        if session.terminate_requested_at is None:
            session.terminate_requested_at = timezone.now()
            session.save(update_fields=["terminate_requested_at", "updated_at"])
        audit_record(actor=actor, action="session.terminate", obj=session,
                     changes={"session_id": session.session_id, "node": session.node.name})
    return session


def live_payload(node: ProxyNode, session: StreamSession) -> dict:
    return {"node": node.name, "session_id": session.session_id, "url": session.url,
            "served_from": session.served_from, "player_addr": session.player_addr,
            "started_at": session.started_at.isoformat() if session.started_at else None,
            "ended_at": session.ended_at.isoformat() if session.ended_at else None,
            "bytes_out": session.bytes_out}


def sessions_close_lost(*, node: ProxyNode, now: dt.datetime) -> list[StreamSession]:
    """End the node's open sessions as `node_lost` (the node stopped reporting); returns them.
    Runs with the node row locked; a later session.ended from the node still sets its own reason."""
    sessions = list(StreamSession.objects.select_for_update().filter(node=node, ended_at__isnull=True))
    for session in sessions:
        session.ended_at, session.end_reason, session.updated_at = now, EndReason.NODE_LOST, now
    StreamSession.objects.bulk_update(sessions, ["ended_at", "end_reason", "updated_at"], batch_size=500)
    return sessions
