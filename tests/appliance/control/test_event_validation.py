"""The fast path for well-formed report events gives what the field-by-field validation gives,
and anything unusual still goes through the fields (same errors, same coercions)."""
import pytest
from rest_framework import serializers

from appliance.control.schemas import ReportEventSerializer

EVENT = {"id": "0b6b8f4e-5f2a-4c1e-9a7b-3f1d2c4b5a69", "seq": 41, "at": "2026-11-25T12:00:01.250Z",
         "kind": "session.started", "data": {"session_id": "s1"}}


def field_by_field(data):
    return serializers.Serializer.run_validation(ReportEventSerializer(), data)


def test_fast_path_matches_field_validation():
    fast = ReportEventSerializer().run_validation(dict(EVENT))
    assert fast == dict(field_by_field(dict(EVENT)))


@pytest.mark.parametrize("change, field", [({"seq": True}, "seq"), ({"seq": -1}, "seq"), ({"id": "nope"}, "id"),
                                           ({"at": "yesterday"}, "at"), ({"kind": "x" * 33}, "kind"),
                                           ({"data": []}, "data")])
def test_bad_events_get_the_field_errors(change, field):
    with pytest.raises(serializers.ValidationError) as excinfo:
        ReportEventSerializer().run_validation({**EVENT, **change})
    assert field in excinfo.value.detail


def test_unusual_but_valid_events_are_coerced_as_before():
    validated = ReportEventSerializer().run_validation({**EVENT, "seq": "41"})
    assert validated["seq"] == 41


NODE = {"name": "edge-1", "version": "0.1.0", "listen": "127.0.0.1:8554",
        "load": {"sessions": 2, "bandwidth_bps": 1000, "cache_disk_full": False},
        "reporter": {"queued": 0, "spool_bytes": 10}}


def batch_field_by_field(data):
    from appliance.control.schemas import ReportBatchSerializer

    return serializers.Serializer.run_validation(ReportBatchSerializer(), data)


@pytest.mark.parametrize("node", [NODE, {}, {"name": "n"}, {**NODE, "load": {"sessions": 1}}])
def test_batch_fast_path_matches_field_validation(node):
    from appliance.control.schemas import ReportBatchSerializer, well_formed_batch

    batch = {"schema_version": 1, "node": node, "events": [dict(EVENT), {**EVENT, "seq": 42}]}
    assert well_formed_batch(batch) is not None  # the fast path takes it
    fast = ReportBatchSerializer().run_validation(batch)
    slow = batch_field_by_field(batch)
    assert fast["events"] == [dict(e) for e in slow["events"]]
    assert fast["node"] == {k: dict(v) if isinstance(v, dict) else v for k, v in slow["node"].items()}


@pytest.mark.parametrize("change", [{"schema_version": 2}, {"schema_version": True}, {"events": {}},
                                    {"node": {"load": {"sessions": -1}}}, {"node": {"name": None}},
                                    {"node": {"version": " padded "}}, {"node": []}, {"extra": 1}])
def test_unusual_batches_leave_the_fast_path_with_the_same_result_or_errors(change):
    from appliance.control.schemas import ReportBatchSerializer, well_formed_batch

    batch = {"schema_version": 1, "node": NODE, "events": [dict(EVENT)], **change}
    assert well_formed_batch(batch) is None
    try:
        expected = batch_field_by_field(batch)
    except serializers.ValidationError as exc:
        with pytest.raises(serializers.ValidationError) as excinfo:
            ReportBatchSerializer().run_validation(batch)
        assert excinfo.value.detail == exc.detail
    else:
        assert ReportBatchSerializer().run_validation(batch) == expected


@pytest.mark.parametrize("event_id", [EVENT["id"].upper(), "{" + EVENT["id"] + "}", EVENT["id"].replace("-", ""),
                                      "urn:uuid:" + EVENT["id"]])
def test_an_id_spelled_another_way_becomes_the_canonical_text_on_both_paths(event_id):
    event = {**EVENT, "id": event_id}
    assert ReportEventSerializer().run_validation(dict(event))["id"] == EVENT["id"]
    assert field_by_field(dict(event))["id"] == EVENT["id"]
