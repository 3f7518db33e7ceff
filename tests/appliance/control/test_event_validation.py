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
