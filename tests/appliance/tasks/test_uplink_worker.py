"""Uplink outbox delivered by a real Celery worker (beat-driven) to a real RTSP responder."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from appliance.origins.models import Origin
from appliance.uplink.models import UplinkEvent, UplinkState
from tests.appliance.tasks.worker_fixtures import PROXY_GUID
from tests.appliance.tasks.harness import wait_until
from tests.appliance.tasks.rtsp_responder import Reply, free_port_is_refusing

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

SENDEVENT = "application/x-wms-sendevent"


def remote_body(n: int) -> str:
    # MS-WMSP 2.2.5 remote-open (EventType 28) body; the reason field makes each one unique.
    return f"1\r\n1,28,{n}\r\n"


def make_events(origin: Origin, url: str, count: int, start: int = 0) -> list[UplinkEvent]:
    return [UplinkEvent.objects.create(origin=origin, url=url, event_type="remote-open", body=remote_body(start + i))
            for i in range(count)]


def state_of(event: UplinkEvent) -> UplinkEvent:
    return UplinkEvent.objects.get(pk=event.pk)


def sent_bodies(responder) -> list[str]:
    return [r.body.decode() for r in responder.requests_matching("SET_PARAMETER", SENDEVENT)]


@pytest.fixture
def origin(responder):
    return Origin.objects.create(name="wms", base_url=responder.url(""), route_prefix="/wms")


def test_each_event_is_sent_exactly_once_and_never_again(celery_worker_process, responder, origin):
    events = make_events(origin, responder.url("vod/clip.wmv"), 3)

    wait_until(lambda: all(state_of(e).state == UplinkState.SENT for e in events), timeout=30,
               what="three events sent")
    # A later event is only picked up by a later run; by then the first three must not have been resent.
    (later,) = make_events(origin, responder.url("vod/clip.wmv"), 1, start=100)
    wait_until(lambda: state_of(later).state == UplinkState.SENT, timeout=30, what="later event sent")

    bodies = sent_bodies(responder)
    assert sorted(bodies) == sorted(remote_body(n) for n in (0, 1, 2, 100))
    first = responder.requests_matching("SET_PARAMETER", SENDEVENT)[0]
    assert first.uri == responder.url("vod/clip.wmv")
    assert first.headers["user-agent"].startswith("WMCacheProxy/")
    assert first.headers["user-agent"].endswith(f"guid/{PROXY_GUID}")
    for event in events:
        row = state_of(event)
        assert row.attempts == 1 and row.sent_at is not None and row.last_error == ""


def test_event_is_retried_after_a_5xx_and_then_not_resent(celery_worker_process, responder, origin):
    answers = iter([Reply(503, "Service Unavailable")])
    responder.handler = lambda request: next(answers, Reply())
    (event,) = make_events(origin, responder.url("vod/clip.wmv"), 1)

    wait_until(lambda: state_of(event).state == UplinkState.SENT, timeout=40, what="event sent after a 503")
    (later,) = make_events(origin, responder.url("vod/clip.wmv"), 1, start=1)
    wait_until(lambda: state_of(later).state == UplinkState.SENT, timeout=30, what="later event sent")

    assert sent_bodies(responder).count(remote_body(0)) == 2  # the 503 and the success, nothing after
    row = state_of(event)
    assert row.attempts == 2 and row.last_error == ""


def test_event_waits_for_an_origin_that_is_down_then_is_sent_once(celery_worker_process, responder, origin):
    url = responder.url("vod/clip.wmv")
    responder.stop()
    assert free_port_is_refusing(responder.port)
    (event,) = make_events(origin, url, 1)

    failed = wait_until(lambda: (row := state_of(event)).attempts >= 1 and row.state == UplinkState.PENDING
                        and row.last_error and row, timeout=30, what="a failed attempt recorded")
    assert "Connect" in failed.last_error
    responder.start()  # same port
    wait_until(lambda: state_of(event).state == UplinkState.SENT, timeout=40, what="event sent once origin is up")

    assert sent_bodies(responder) == [remote_body(0)]


def test_origin_refusing_the_event_marks_it_failed_without_retrying(celery_worker_process, responder, origin):
    responder.handler = lambda request: Reply(404, "Not Found")
    (event,) = make_events(origin, responder.url("gone.wmv"), 1)
    (probe,) = make_events(origin, responder.url("gone.wmv"), 1, start=1)

    # Both refused before the origin changes its mind (the probe is sent right after the event).
    wait_until(lambda: state_of(event).state == state_of(probe).state == UplinkState.FAILED, timeout=30,
               what="event and probe failed")
    responder.handler = lambda request: Reply()
    (later,) = make_events(origin, responder.url("vod/ok.wmv"), 1, start=2)
    wait_until(lambda: state_of(later).state == UplinkState.SENT, timeout=30, what="later event sent")

    row = state_of(event)
    assert row.attempts == 1 and "404" in row.last_error
    assert sent_bodies(responder).count(remote_body(0)) == 1
    assert state_of(probe).state == UplinkState.FAILED


def test_row_stuck_in_sending_is_reclaimed_after_its_lease(celery_worker_process, responder, origin):
    # A worker died after claiming this row: it is 'sending' with a lease that has run out.
    stuck = UplinkEvent.objects.create(
        origin=origin, url=responder.url("vod/clip.wmv"), event_type="remote-close", body=remote_body(7),
        state=UplinkState.SENDING, attempts=1, next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    leased = UplinkEvent.objects.create(
        origin=origin, url=responder.url("vod/clip.wmv"), event_type="remote-close", body=remote_body(8),
        state=UplinkState.SENDING, attempts=1, next_attempt_at=timezone.now() + dt.timedelta(hours=1))

    wait_until(lambda: state_of(stuck).state == UplinkState.SENT, timeout=30, what="stuck row sent")
    (later,) = make_events(origin, responder.url("vod/clip.wmv"), 1, start=9)
    wait_until(lambda: state_of(later).state == UplinkState.SENT, timeout=30, what="later event sent")

    assert state_of(stuck).attempts == 2
    assert state_of(leased).state == UplinkState.SENDING  # its lease still runs: nobody else may send it
    assert remote_body(8) not in sent_bodies(responder)
