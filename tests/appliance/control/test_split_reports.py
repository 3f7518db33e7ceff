"""split.changed ingestion: one LiveSplit per (node, split_id), the newest report by seq wins, exactly once."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from appliance.control.models import ReportEvent
from appliance.core import live
from appliance.playback.models import LiveSplit
from tests.appliance.factories import OriginFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db

SPLIT = "5d0c9a1e-7b2f-4c3d-9e8a-1f2b3c4d5e6f"


def split_changed(make_event, seq=None, **values):
    data = {"split_id": SPLIT, "url": "rtsp://127.0.0.1:8600/live", "player_url": "rtsp://proxy/tv/live",
            "state": "live", "players": 3, "peak_players": 3, "reconnects": 0, "media_stalls": 0,
            "origin_transport": "udp", "started_at": "2026-11-25T11:58:00.125Z", "end_reason": None,
            "packets_in": 1000, "bytes_in": 1_300_000, **values}
    return make_event("split.changed", seq=seq, **data)


def test_reports_build_one_split_row_and_a_redelivery_changes_nothing(node, make_event, post_batch):
    origin = OriginFactory(base_url="rtsp://127.0.0.1:8600/")
    starting = split_changed(make_event, state="starting", players=0, peak_players=0, player_url=None,
                             packets_in=0, bytes_in=0)
    running = split_changed(make_event, players=42, peak_players=57, reconnects=1, media_stalls=1)
    assert post_batch([starting, running]).json() == {"accepted": 2, "duplicates": 0}
    assert post_batch([running, starting]).json() == {"accepted": 0, "duplicates": 2}
    split = LiveSplit.objects.get()
    assert (split.node, split.origin, split.split_id, split.url, split.player_url) == (
        node, origin, SPLIT, "rtsp://127.0.0.1:8600/live", "rtsp://proxy/tv/live")
    assert (split.state, split.players, split.peak_players, split.reconnects, split.media_stalls) == (
        "live", 42, 57, 1, 1)
    assert (split.origin_transport, split.packets_in, split.bytes_in) == ("udp", 1000, 1_300_000)
    assert split.started_at == dt.datetime(2026, 11, 25, 11, 58, 0, 125000, tzinfo=dt.UTC)
    assert split.ended_at is None and split.end_reason == "" and split.live
    assert ReportEvent.objects.filter(kind="split.changed").count() == 2


def test_stale_reports_are_ignored_by_seq(make_event, post_batch):
    post_batch([split_changed(make_event, seq=10, players=5, packets_in=900)])
    post_batch([split_changed(make_event, seq=5, players=1, packets_in=400, state="reconnecting")])
    split = LiveSplit.objects.get()
    assert (split.state, split.players, split.packets_in, split.report_seq) == ("live", 5, 900, 10)


def test_ended_applied_before_started_stays_ended_and_complete(make_event, post_batch):
    ended = split_changed(make_event, seq=9, state="ended", players=0, end_reason="origin_error",
                          origin_transport="tcp", reconnects=2)
    assert post_batch([ended]).json()["accepted"] == 1
    assert post_batch([split_changed(make_event, seq=1, state="starting", players=0),
                       split_changed(make_event, seq=2, players=4)]).json()["accepted"] == 2
    split = LiveSplit.objects.get()
    assert (split.state, split.end_reason, split.players, split.reconnects, split.origin_transport) == (
        "ended", "origin_error", 0, 2, "tcp")
    assert split.ended_at == dt.datetime.fromisoformat(ended["at"])
    assert split.started_at is not None and not split.live


def test_the_newest_report_in_a_batch_wins_whatever_its_position(make_event, post_batch):
    events = [split_changed(make_event, seq=3, players=7), split_changed(make_event, seq=1, state="starting"),
              split_changed(make_event, seq=2, players=2)]
    post_batch(events)
    assert LiveSplit.objects.get().players == 7


def test_splits_are_kept_per_node(make_event, post_batch):
    other = ProxyNodeFactory(name="node-2")
    post_batch([split_changed(make_event, players=1)])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other.token}")
    post_batch([split_changed(make_event, players=2)], client=client, name="node-2")
    assert sorted(LiveSplit.objects.values_list("node__name", "players")) == [("node-1", 1), ("node-2", 2)]


def test_bad_split_reports_are_stored_but_not_applied(make_event, post_batch):
    response = post_batch([split_changed(make_event, state="exploded", split_id="bad-state"),
                           split_changed(make_event, split_id=""),
                           split_changed(make_event, players=2, origin_transport="carrier-pigeon")])
    assert response.json() == {"accepted": 3, "duplicates": 0}
    split = LiveSplit.objects.get()  # the good one only
    assert (split.split_id, split.players, split.origin_transport) == (SPLIT, 2, "")


def test_a_batch_of_many_splits_costs_the_queries_of_a_few(make_event, post_batch):
    def cost(prefix: str, count: int, seq0: int) -> int:
        events = [split_changed(make_event, seq=seq0 + i, split_id=f"{prefix}-{i}", players=i) for i in range(count)]
        with CaptureQueriesContext(connection) as queries:
            assert post_batch(events).status_code == 200
        return len(queries)

    post_batch([])  # the node's first report sets its listen address (a snapshot change)
    cost("warm", 1, 1000)  # warm per-node caches and the per-process origin list
    assert cost("a", 3, 1) == cost("b", 40, 100)  # new rows
    assert cost("a", 3, 200) == cost("b", 40, 300)  # updates
    assert LiveSplit.objects.count() == 44


@pytest.fixture
def published(monkeypatch):
    sent: list = []
    real = live._publisher("publish_many")  # validates payloads against appliance.playback.live

    def record_many(events):
        real(events)
        sent.extend(events)

    monkeypatch.setattr(live, "_publisher", lambda name="publish": record_many if name == "publish_many"
                        else (lambda kind, payload: sent.append((kind, payload))))
    return sent


def test_changed_splits_are_published_after_commit(published, make_event, post_batch,
                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_batch([split_changed(make_event, seq=1, state="starting", players=0),
                    split_changed(make_event, seq=2, players=4)])
        assert published == []
    splits = [payload for kind, payload in published if kind == "split.changed"]
    assert len(splits) == 1  # the newest status of the batch, once
    assert splits[0]["node"] == "node-1" and splits[0]["split_id"] == SPLIT
    assert (splits[0]["state"], splits[0]["players"], splits[0]["origin_transport"]) == ("live", 4, "udp")
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        post_batch([split_changed(make_event, seq=1, state="starting")])  # stale: nothing to show
    assert [kind for kind, _ in published] == ["node.bandwidth"]
