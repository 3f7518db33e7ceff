"""Contract, proxyd side: what Reporter/ControlPlane put on the wire has exactly the fixtures' shape.

The same fixtures are posted to Django by test_reports_appliance.py. Event `data` keys are also
checked against the event table in docs/architecture.md, so doc, fixtures and code move together.
"""

import dataclasses
import json
import re
import uuid
from pathlib import Path

import pytest

from proxyd.control.plane import ControlConfig, ControlPlane
from proxyd.control.schema import OriginConfig, parse_snapshot

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KINDS = ("session.started", "session.counters", "session.ended", "cache.changed", "playlog", "sendevent",
         "split.changed")
AT_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def report_fixture(kind: str) -> dict:
    return load("report_" + kind.replace(".", "_") + ".json")


def shape(value):
    """Keys and JSON types, recursively (lists by the shapes of their items)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def documented_data_keys() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    keys = {}
    for kind, cell in re.findall(r"^\| `([a-z.]+)` \| (.+) \|$", text, re.MULTILINE):
        plain = re.sub(r"\([^)]*\)", "", cell)  # drop "(`origin`/`cache`)"-style value lists
        keys[kind] = set(re.findall(r"`([a-z_]+)`", plain))
        if plain.startswith("same as counters"):
            keys[kind] |= keys["session.counters"]
    return keys


@pytest.fixture
def plane(tmp_path):
    config = ControlConfig(url="http://127.0.0.1:9", token="t", node_name="node-1", state_dir=tmp_path,
                           listen="127.0.0.1:8554")
    return ControlPlane(config, node_load=lambda: {"sessions": 3, "bandwidth_bps": 4_000_000})


def produce(plane: ControlPlane, events: list[dict]) -> dict:
    """What the sender would POST for these events (without a network)."""
    for event in events:
        plane.reporter.emit(event["kind"], event["data"])
    [batch] = plane.reporter.cut_all()
    return json.loads(plane.delivery.envelope(batch.lines))


def test_there_is_a_fixture_for_every_documented_kind():
    assert set(documented_data_keys()) == set(KINDS)
    for kind in KINDS:
        assert [e["kind"] for e in report_fixture(kind)["events"]] == [kind]
    assert {e["kind"] for e in load("report_mixed.json")["events"]} == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_fixture_data_has_exactly_the_documented_keys(kind):
    [event] = report_fixture(kind)["events"]
    assert set(event["data"]) == documented_data_keys()[kind]


REPORT_FILES = [f"report_{k.replace('.', '_')}.json" for k in KINDS] + ["report_mixed.json"]


@pytest.mark.parametrize("name", REPORT_FILES)
def test_reporter_output_has_the_fixture_shape(plane, name):
    fixture = load(name)
    unique = list({e["id"]: e for e in fixture["events"]}.values())  # proxyd never repeats an id itself
    produced = produce(plane, unique)
    assert shape(produced["node"]) == shape(fixture["node"])
    assert set(produced) == set(fixture) == {"schema_version", "node", "events"}
    assert produced["schema_version"] == fixture["schema_version"] == 1
    assert [shape(e) for e in produced["events"]] == [shape(e) for e in unique]
    assert [e["data"] for e in produced["events"]] == [e["data"] for e in unique]
    for event in produced["events"] + fixture["events"]:
        assert uuid.UUID(event["id"]).version == 4
        assert AT_FORMAT.match(event["at"]), event["at"]
    seqs = [e["seq"] for e in produced["events"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_mixed_fixture_repeats_one_event_like_a_redelivery():
    ids = [e["id"] for e in load("report_mixed.json")["events"]]
    assert len(ids) - len(set(ids)) == 1


def test_snapshot_fixture_parses_and_every_field_is_read():
    doc = load("snapshot.json")
    snap = parse_snapshot(doc)
    assert snap.etag == doc["etag"] and snap.node_name == doc["node"]["name"]
    # through JSON: nested dataclasses (player_users) come back from asdict as tuples, JSON has lists
    assert [json.loads(json.dumps(dataclasses.asdict(o))) for o in snap.origins] == doc["origins"]
    assert {f.name for f in dataclasses.fields(OriginConfig)} == set(doc["origins"][0])
    assert [dataclasses.asdict(p) for p in snap.purges] == doc["purges"]
    assert [dataclasses.asdict(p) for p in snap.prestuff] == doc["prestuff"]
    assert [dataclasses.asdict(r) for r in snap.revalidated] == doc["revalidated"]
    assert list(snap.terminate_sessions) == doc["terminate_sessions"]
