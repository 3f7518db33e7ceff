"""Contract, appliance side: every report fixture is accepted once and only once; our snapshot parses in proxyd.

Fixtures come from tests/contract/fixtures/ (written from proxyd's side) plus the appliance's own
tests/appliance/contract_fixtures/.
"""
import datetime as dt
import json
from pathlib import Path

import pytest
from django.utils import timezone

from appliance.control.models import ReportEvent
from appliance.playback.api.splits import LiveSplitSerializer
from appliance.playback.models import LiveSplit
from tests.appliance.conftest import node, node_client  # noqa: F401  (fixtures shared with tests/appliance)
from tests.appliance.factories import CachedContentFactory, OriginFactory, StreamSessionFactory

pytestmark = pytest.mark.django_db

TESTS = Path(__file__).resolve().parent.parent
FIXTURE_FILES = sorted((TESTS / "contract" / "fixtures").glob("*.json")) + sorted(
    (TESTS / "appliance" / "contract_fixtures").glob("*.json"))


def _report_batches():
    for path in FIXTURE_FILES:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "events" in doc:
            yield pytest.param(doc, id=path.name)


REPORT_BATCHES = list(_report_batches())


def test_there_are_report_fixtures():
    assert REPORT_BATCHES


@pytest.mark.parametrize("batch", REPORT_BATCHES)
def test_report_fixture_is_accepted_once(batch, node_client):
    unique_ids = {event["id"] for event in batch["events"]}
    first = node_client.post("/internal/v1/reports", batch, format="json")
    assert first.status_code == 200, first.content
    assert first.json() == {"accepted": len(unique_ids), "duplicates": len(batch["events"]) - len(unique_ids)}
    again = node_client.post("/internal/v1/reports", batch, format="json")
    assert again.json() == {"accepted": 0, "duplicates": len(batch["events"])}
    assert ReportEvent.objects.count() == len(unique_ids)


def test_snapshot_is_accepted_by_proxyd_parser(node, node_client):
    schema = pytest.importorskip("proxyd.control.schema")
    origin = OriginFactory(username="u", password="p", cache_policy="force_ttl", cache_ttl=60)
    CachedContentFactory(node=node, url=origin.base_url + "clip")
    session = StreamSessionFactory(node=node, terminate_requested_at=timezone.now())
    body = node_client.get("/internal/v1/snapshot").json()
    parsed = schema.parse_snapshot(body)
    assert parsed.node_name == node.name
    assert [o.name for o in parsed.origins] == [origin.name]
    assert parsed.terminate_sessions == (session.session_id,)
    assert parsed.etag == body["etag"]


def test_split_fixture_is_applied_with_every_field(node_client):
    doc = json.loads((TESTS / "contract" / "fixtures" / "report_split_changed.json").read_text(encoding="utf-8"))
    [event] = doc["events"]
    assert node_client.post("/internal/v1/reports", doc, format="json").status_code == 200
    shown = LiveSplitSerializer(LiveSplit.objects.get()).data
    data = event["data"]
    for key in set(data) - {"started_at", "end_reason"}:
        assert shown[key] == data[key], key
    assert dt.datetime.fromisoformat(shown["started_at"]) == dt.datetime.fromisoformat(data["started_at"])
    assert shown["end_reason"] == "" and data["end_reason"] is None


def test_mixed_fixture_becomes_traffic_history(node_client):
    """proxyd's own batch (written from its side) fills the history: session bytes, a relayed session's
    origin bytes, a split hub's bytes in, a completed fill; the node's reporter block is read."""
    from appliance.history.models import TrafficBucket

    doc = json.loads((TESTS / "contract" / "fixtures" / "report_mixed.json").read_text(encoding="utf-8"))
    doc = {**doc, "node": {**doc["node"], "reporter": {**doc["node"]["reporter"], "spool_bytes": 2048}}}
    assert node_client.post("/internal/v1/reports", doc, format="json").status_code == 200
    by_kind = {e["kind"]: e["data"] for e in doc["events"]}
    columns = ("bytes_out", "origin_bytes", "requests", "errors", "spool_bytes")
    totals = {grain: TrafficBucket.objects.filter(grain=grain).values_list(*columns)
              for grain in ("minute", "hour", "day")}
    expected = (by_kind["session.ended"]["bytes_out"],
                by_kind["session.ended"]["bytes_in"] + by_kind["split.changed"]["bytes_in"]
                + by_kind["cache.changed"]["size_bytes"], 1, 0, 2048)
    for grain, rows in totals.items():
        sums = tuple(sum(r[i] for r in rows) for i in range(4))
        assert sums + (max(r[4] for r in rows),) == expected, grain
