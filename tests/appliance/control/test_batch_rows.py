"""Batch ingestion writes sessions and play logs as plain rows (no model instances): the rows must be the
ones the model path writes (the single-event services, save() on model instances) for the same events."""
import datetime as dt

import pytest
from django.db import transaction
from django.forms.models import model_to_dict

from appliance.control.models import ReportEvent
from appliance.nodes.models import ProxyNode
from appliance.playback import services as playback
from appliance.playback.models import PlayLog, StreamSession
from tests.appliance.control.test_reports import WMLOG_FIELDS, counters, playlog, started
from tests.appliance.factories import OriginFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db


def _apply_one_by_one(node: ProxyNode, events: list[dict]) -> None:
    """The model path: each event through its single-event service, in seq order."""
    with transaction.atomic():
        for event in sorted(events, key=lambda e: e["seq"]):
            data, seq, at = event["data"], event["seq"], dt.datetime.fromisoformat(event["at"])
            if event["kind"] == "session.started":
                playback.session_apply_started(node=node, data=data, at=at)
            elif event["kind"] == "session.counters":
                playback.sessioncounters_apply(node=node, data=data, seq=seq)
            elif event["kind"] == "session.ended":
                playback.session_apply_ended(node=node, data=data, seq=seq, at=at)
            elif event["kind"] == "playlog":
                playback.playlog_record(node=node, data=data, at=at)


def _sessions(node: ProxyNode) -> dict:
    return {s.session_id: {k: v for k, v in model_to_dict(s).items() if k not in ("id", "node")}
            for s in StreamSession.objects.filter(node=node)}


def _playlogs(node: ProxyNode) -> list:
    rows = []
    for log in PlayLog.objects.filter(node=node).select_related("session").order_by("id"):
        row = {k: v for k, v in model_to_dict(log).items() if k not in ("id", "node", "session")}
        rows.append({**row, "session": log.session.session_id if log.session else None})
    return rows


def test_a_batch_writes_the_rows_the_model_path_writes(make_event, post_batch, node):
    OriginFactory(base_url="rtsp://127.0.0.1:8600/")
    # an earlier batch: s3 exists before (the batch then locks and updates a stored row)
    earlier = [started(make_event, session_id="s3", served_from="origin", url="rtsp://proxy/vod/three"),
               counters(make_event, session_id="s3", bytes_out=10, bytes_in=10)]
    ended_first = counters(make_event, kind="session.ended", session_id="s2", bytes_out=7, end_reason="timeout",
                           jitter_ms="inf")
    # (its seq is below s2's started: applied first)
    events = [
        started(make_event, session_id="s1"),
        counters(make_event, session_id="s1", bytes_out=500, packets_out="12", bytes_in=-4, jitter_ms="inf",
                 packets_lost=2**70),
        counters(make_event, seq=1, session_id="s3", bytes_out=3),  # older than s3's stored counters
        started(make_event, session_id="s2", transports="udp", served_from="nonsense", player_addr="[::1]:9"),
        ended_first,
        playlog(make_event, session_id="s1"),
        playlog(make_event, session_id=None, fields={**WMLOG_FIELDS, "x-duration": "9" * 40, "date": "bad"}),
        playlog(make_event, session_id="s3", kind="logconnect", fields={"c-ip": "2001:db8::1"}),
        counters(make_event, session_id="s3", bytes_out=99, jitter_ms="nan"),
        counters(make_event, kind="session.ended", session_id="s1", bytes_out=900, end_reason="teardown"),
        counters(make_event, kind="session.ended", session_id="s3", bytes_out=100, end_reason="bogus"),
        counters(make_event, session_id=None, bytes_out=5),  # no session: ignored by both paths
        make_event("future.kind", anything=1),
    ]
    assert post_batch(earlier).status_code == 200
    response = post_batch(events + events[:2])  # two duplicates in the batch
    assert response.json() == {"accepted": len(events), "duplicates": 2}
    assert post_batch(events).json() == {"accepted": 0, "duplicates": len(events)}  # exactly once

    other = ProxyNodeFactory(name="node-2")
    _apply_one_by_one(other, earlier)
    _apply_one_by_one(other, [e for e in events if e["kind"] == "playlog" or e["data"].get("session_id")])

    assert ReportEvent.objects.filter(node=node).count() == len(earlier) + len(events)
    batch, model = _sessions(node), _sessions(other)
    assert set(batch) == {"s1", "s2", "s3"} and batch == model
    assert batch["s2"]["jitter_ms"] == float("inf") and batch["s2"]["ended_at"] is not None
    assert batch["s3"]["origin"] is not None and batch["s3"]["bytes_out"] == 100
    assert _playlogs(node) == _playlogs(other) and len(_playlogs(node)) == 3
