"""Live dashboard events: publish after commit to the channel-layer group "live".

Services call `publish(event_type, payload)` inside their transaction; nothing is sent if it rolls back.
A broken channel layer (Redis down) must never fail the write that triggered it, so send errors are logged.
"""

import asyncio
import logging
import os
import weakref
from collections.abc import Mapping
from typing import Any, TypedDict

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

LIVE_GROUP = "live"
# Consumer method that receives the message: "live.event" -> LiveConsumer.live_event.
MESSAGE_TYPE = "live.event"
# Several events in one channel-layer message (a report batch's): LiveConsumer.live_batch.
BATCH_MESSAGE_TYPE = "live.batch"


class SessionState(TypedDict):
    """session.started and session.ended (built by appliance.playback.services)."""

    node: str
    session_id: str
    url: str
    served_from: str
    player_addr: str
    started_at: str | None  # ISO 8601
    ended_at: str | None
    bytes_out: int


class SplitStatus(TypedDict):
    """split.changed (built by appliance.playback.split_services): a row of the live splits table."""

    node: str
    split_id: str
    url: str
    player_url: str
    state: str  # starting | live | reconnecting | ended
    players: int
    origin_transport: str  # udp | tcp | ""
    reconnects: int
    started_at: str | None  # ISO 8601
    ended_at: str | None
    end_reason: str


class NodeBandwidth(TypedDict):
    node: str
    sessions: int
    bandwidth_bps: int


class CacheHitRatio(TypedDict):
    ratio: float  # 0.0-1.0; bytes sent from the cache / all bytes sent to players in the window
    ratio_requests: float  # sessions started from the cache / all sessions started
    cache_bytes_out: int
    bytes_out: int
    window_seconds: int


class ActiveSessions(TypedDict):
    """Every live session (the dashboard card; its table shows only the newest rows)."""

    count: int


EVENT_PAYLOADS: dict[str, type] = {
    "sessions.active": ActiveSessions,
    "session.started": SessionState,
    "session.ended": SessionState,
    "split.changed": SplitStatus,
    "node.bandwidth": NodeBandwidth,
    "cache.hit_ratio": CacheHitRatio,
}


def publish(event_type: str, payload: Mapping[str, Any]) -> None:
    """Queue one live event; it is sent when the current transaction commits (at once outside one)."""
    message = _message(event_type, payload)
    transaction.on_commit(lambda: _send(message))


def publish_many(events: list[tuple[str, Mapping[str, Any]]]) -> None:
    """Like publish() for a batch: one channel-layer round of sends instead of one per event."""
    messages = [_message(event_type, payload) for event_type, payload in events]
    if messages:
        transaction.on_commit(lambda: _send_all(messages))


def _message(event_type: str, payload: Mapping[str, Any]) -> dict:
    expected = EVENT_PAYLOADS.get(event_type)
    if expected is None:
        raise ValueError(f"unknown live event type {event_type!r}")
    missing = set(expected.__annotations__) - set(payload)
    if missing:
        raise ValueError(f"live event {event_type} lacks {sorted(missing)}")
    return {"type": MESSAGE_TYPE, "event": event_type, "payload": dict(payload)}


def _send(message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(LIVE_GROUP, message)
    except Exception:  # the write is committed already; a lost live update is only cosmetic
        logger.warning("live event %s not delivered to the channel layer", message["event"], exc_info=True)


def _send_all(messages: list[dict]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    events = [{"event": m["event"], "payload": m["payload"]} for m in messages]
    loop = _server_loop()
    if loop is not None:
        # In the ASGI server: the worker's event loop sends them, coalesced with the other requests'
        # (Django runs a worker's sync views in one thread, which would otherwise wait on Redis).
        loop.call_soon_threadsafe(_coalesce, layer, events)
        return
    # One group_send for the lot: a report batch's events cost one channel-layer round trip, not one each.
    try:
        async_to_sync(layer.group_send)(LIVE_GROUP, {"type": BATCH_MESSAGE_TYPE, "events": events})
    except Exception:  # committed already; lost live updates are only cosmetic
        logger.warning("%d live events not delivered to the channel layer", len(messages), exc_info=True)


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop of the ASGI server this sync thread serves (asgiref records it for the
    threads of sync_to_async), or None: a plain sync caller (Celery task, test client, shell)."""
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is None or getattr(local, "main_event_loop_pid", None) != os.getpid() or not loop.is_running():
        return None
    return loop


class _Outbox:
    """Live events waiting in one event loop for its next channel-layer send (loop thread only)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.layer = None
        self.tasks: set[asyncio.Task] = set()


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox] = weakref.WeakKeyDictionary()


def _coalesce(layer, events: list[dict]) -> None:
    """In the loop: queue `events`; the first queued since the last send schedules the next send, at most
    APPLIANCE_LIVE_COALESCE_MS later (sooner once APPLIANCE_LIVE_COALESCE_EVENTS are waiting)."""
    loop = asyncio.get_running_loop()
    box = _outboxes.get(loop)
    if box is None:
        box = _outboxes[loop] = _Outbox()
    first = not box.events
    box.events.extend(events)
    box.layer = layer
    if len(box.events) >= settings.APPLIANCE_LIVE_COALESCE_EVENTS:
        _flush(box)
    elif first:
        loop.call_later(settings.APPLIANCE_LIVE_COALESCE_MS / 1000, _flush, box)


def _flush(box: _Outbox) -> None:
    if not box.events:
        return  # sent already (the size limit came first)
    events, box.events = box.events, []
    task = asyncio.get_running_loop().create_task(_group_send(box.layer, events))
    box.tasks.add(task)  # a strong reference until it is done
    task.add_done_callback(box.tasks.discard)


async def _group_send(layer, events: list[dict]) -> None:
    try:
        await layer.group_send(LIVE_GROUP, {"type": BATCH_MESSAGE_TYPE, "events": events})
    except Exception:  # committed already; lost live updates are only cosmetic
        logger.warning("%d live events not delivered to the channel layer", len(events), exc_info=True)
