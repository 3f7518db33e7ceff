"""Writes for live splits: split.changed report events, applied inside the ingestion transaction.

Each event carries a split's whole status, so per split only the newest (highest seq) matters: a batch
costs one locking read and one bulk insert/update whatever its number of split events, and an event
older than the stored one (a late redelivery, an `ended` that arrived first) changes nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.utils import timezone

from appliance.control.coerce import as_datetime, as_int, as_str
from appliance.nodes.models import ProxyNode
from appliance.origins.models import Origin
from appliance.origins.selectors import origin_for_url
from appliance.playback.models import LiveSplit, OriginTransport, SplitEndReason, SplitState

logger = logging.getLogger(__name__)

SPLIT_FIELDS = ("url", "player_url", "state", "players", "peak_players", "reconnects", "media_stalls",
                "origin_transport", "started_at", "ended_at", "end_reason", "packets_in", "bytes_in",
                "report_seq", "updated_at")
_COUNTS = ("players", "peak_players", "reconnects", "media_stalls")
_TOTALS = ("packets_in", "bytes_in")
BULK_BATCH = 500


def splits_apply(*, node: ProxyNode, events: list[dict], origins: Callable[[], list[Origin]],
                 moved: Callable[[dt.datetime, int, bool], None] | None = None) -> list[LiveSplit]:
    """Apply a batch's split.changed events (fresh, any order); returns the rows that changed.
    `origins` gives the preloaded origin list (asked only when a new split needs its origin);
    `moved(at, bytes_in_delta, ended_by_origin_error)` is told each applied change (traffic history)."""
    newest: dict[str, dict] = {}
    for event in events:
        split_id = as_str(event["data"].get("split_id"), 64)
        state = event["data"].get("state")
        if not split_id or state not in SplitState.values:
            logger.warning("split.changed from %s ignored: split_id=%r state=%r", node.name, split_id, state)
            continue
        if split_id not in newest or event["seq"] > newest[split_id]["seq"]:
            newest[split_id] = event
    if not newest:
        return []
    rows = {s.split_id: s for s in LiveSplit.objects.select_for_update().filter(node=node, split_id__in=newest)}
    for split in rows.values():
        split.node = node  # the locked node row: no query per split for its name
    created, updated = [], []
    for split_id, event in newest.items():
        split = rows.get(split_id)
        if split is None:
            split = LiveSplit(node=node, split_id=split_id)
            created.append(split)
        elif event["seq"] <= split.report_seq:
            continue
        else:
            updated.append(split)
        before = (split.bytes_in, split.state)
        _status_apply(split, event["data"], event["seq"], event["at"])
        if moved is not None:
            ended_now = split.state == SplitState.ENDED and before[1] != SplitState.ENDED
            by_origin_error = ended_now and split.end_reason == SplitEndReason.ORIGIN_ERROR
            moved(event["at"], split.bytes_in - before[0], by_origin_error)
        if split.pk is None and split.url:
            split.origin = origin_for_url(split.url, origins=origins())
    LiveSplit.objects.bulk_create(created, batch_size=BULK_BATCH)
    LiveSplit.objects.bulk_update(updated, SPLIT_FIELDS, batch_size=BULK_BATCH)
    return created + updated


def _status_apply(split: LiveSplit, data: dict, seq: int, at: dt.datetime) -> None:
    split.url = as_str(data.get("url"), 2000)
    split.player_url = as_str(data.get("player_url"), 2000) or split.player_url
    split.state = data["state"]
    for name in _COUNTS:
        setattr(split, name, max(0, min(as_int(data.get(name)), 2**31 - 1)))
    for name in _TOTALS:
        setattr(split, name, max(0, as_int(data.get(name))))
    transport = data.get("origin_transport")
    split.origin_transport = transport if transport in OriginTransport.values else ""
    split.started_at = as_datetime(data.get("started_at")) or split.started_at or at
    ended = split.state == SplitState.ENDED
    split.ended_at = at if ended else None
    reason = data.get("end_reason")
    split.end_reason = reason if ended and reason in SplitEndReason.values else ""
    split.report_seq = seq
    split.updated_at = timezone.now()  # bulk_update does not fill auto_now fields


def split_live_payload(split: LiveSplit) -> dict:
    """The dashboard's split.changed live event (appliance.playback.live.SplitStatus)."""
    return {"node": split.node.name, "split_id": split.split_id, "url": split.url,
            "player_url": split.player_url, "state": split.state, "players": split.players,
            "origin_transport": split.origin_transport, "reconnects": split.reconnects,
            "started_at": split.started_at.isoformat() if split.started_at else None,
            "ended_at": split.ended_at.isoformat() if split.ended_at else None,
            "end_reason": split.end_reason}


def splits_close_lost(*, node: ProxyNode, now: dt.datetime) -> list[LiveSplit]:
    """End the node's running splits as `node_lost`; a newer split.changed from the node still wins."""
    splits = list(LiveSplit.objects.select_for_update().filter(node=node).exclude(state=SplitState.ENDED))
    for split in splits:
        split.node = node
        split.state, split.ended_at, split.end_reason, split.players = SplitState.ENDED, now, SplitEndReason.NODE_LOST, 0
        split.updated_at = now
    LiveSplit.objects.bulk_update(splits, ["state", "ended_at", "end_reason", "players", "updated_at"],
                                  batch_size=BULK_BATCH)
    return splits
