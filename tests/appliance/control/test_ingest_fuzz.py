"""Whatever a (buggy or newer) proxyd puts in `data`, ingestion answers 200 or 400, never 500."""
import datetime as dt
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.control.schemas import EVENT_KINDS

pytestmark = pytest.mark.django_db

KEYS = ["session_id", "url", "origin_url", "player_addr", "user_agent", "transports", "served_from", "bytes_out",
        "packets_lost", "jitter_ms", "end_reason", "state", "sdp", "content_size", "expires_at", "fetched_at",
        "hits", "kind", "log_type", "raw", "fields", "parse_error", "event_type", "body", "subscribed"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True), st.text(max_size=40))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=12), inner, max_size=3)),
                      max_leaves=6)
data_dicts = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)
wmlog = st.dictionaries(st.sampled_from(["c-ip", "date", "time", "x-duration", "s-proxied", "c-playerid"]),
                        st.text(max_size=30), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(EVENT_KINDS), data=data_dicts, fields=wmlog, seq=st.integers(0, 2**40))
def test_arbitrary_event_data_never_causes_a_server_error(node_client, kind, data, fields, seq):
    if kind == "playlog":
        data = {**data, "fields": fields}
    event = {"id": str(uuid.uuid4()), "seq": seq, "at": dt.datetime(2026, 11, 25, tzinfo=dt.UTC).isoformat(),
             "kind": kind, "data": data}
    # json.dumps (not the test client's strict encoder) so NaN/Infinity reach the server too.
    body = json.dumps({"schema_version": 1, "events": [event]})
    response = node_client.post("/internal/v1/reports", body, content_type="application/json")
    assert response.status_code in (200, 400), response.content
