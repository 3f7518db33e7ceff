"""insert_rows/update_rows (rows as one JSON parameter) store exactly what the ORM would."""
import datetime as dt

import pytest
from django.forms.models import model_to_dict

from appliance.core.bulk import insert_rows, update_rows
from appliance.playback.models import PlayLog, StreamSession
from tests.appliance.factories import OriginFactory, ProxyNodeFactory

pytestmark = [pytest.mark.django_db]

AT = dt.datetime(2026, 8, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


def session(node, origin, sid: str, **extra) -> StreamSession:
    values = {"url": "rtsp://p/ü'\"\\x", "player_addr": "[::1]:5", "player_ip": "2001:db8::1",
              "transports": ["udp", "tcp"], "started_at": AT, "bytes_out": 2**62, "jitter_ms": 2.5}
    return StreamSession(node=node, origin=origin, session_id=sid, **{**values, **extra})


def stored(objs) -> list[dict]:
    return [model_to_dict(type(o).objects.get(pk=o.pk), exclude=["updated_at"]) for o in objs]


def test_insert_rows_sets_keys_in_order_and_stores_every_value():
    node, origin = ProxyNodeFactory(), OriginFactory()
    rows = [session(node, origin, f"s{i}") for i in range(3)]
    rows.append(session(node, None, "inf", jitter_ms=float("inf")))
    insert_rows(StreamSession, rows)
    assert [r.session_id for r in StreamSession.objects.order_by("pk")] == ["s0", "s1", "s2", "inf"]
    assert all(r.pk is not None and not r._state.adding for r in rows)
    expected = [model_to_dict(r, exclude=["updated_at"]) for r in rows]
    assert stored(rows) == expected  # text with quotes and non-ASCII, inet, JSON list, microseconds, inf
    assert all(r.updated_at is not None for r in StreamSession.objects.all())  # auto_now applied
    log = PlayLog(node=node, session=rows[0], origin=origin, received_at=AT, logged_at=AT, kind="logplay",
                  log_type="streaming", c_ip="10.0.0.1", log_date=AT.date(), log_time=AT.time(), x_duration=7)
    insert_rows(PlayLog, [log])
    assert stored([log]) == [model_to_dict(log, exclude=["updated_at"])]


def test_update_rows_changes_only_the_named_fields():
    node = ProxyNodeFactory()
    rows = [session(node, None, f"s{i}") for i in range(2)]
    insert_rows(StreamSession, rows)
    rows[0].bytes_out, rows[0].ended_at, rows[0].end_reason = 5, AT, "teardown"
    rows[1].bytes_out, rows[1].url = 6, "not saved"
    update_rows(StreamSession, rows, ["bytes_out", "ended_at", "end_reason"])
    first, second = (StreamSession.objects.get(pk=r.pk) for r in rows)
    assert (first.bytes_out, first.ended_at, first.end_reason) == (5, AT, "teardown")
    assert (second.bytes_out, second.url, second.ended_at) == (6, "rtsp://p/ü'\"\\x", None)
