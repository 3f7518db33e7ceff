"""Faults, uplink: the Celery worker SIGKILLed in the middle of a SendEvent batch to the WM test origin,
then a new worker started. Nothing reaches the origin twice, nothing is lost: the events the dead
worker had claimed but not sent go out once its lease runs out; the one it was sending (it may have
reached the origin, and SendEvent has no key an origin could deduplicate on) is marked failed with
the reason, for an operator to retry."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from appliance.origins.models import Origin
from appliance.uplink.models import UplinkEvent, UplinkState
from appliance.uplink.task_services import MAYBE_SENT
from tests.appliance.tasks.worker_fixtures import WORKER_SETTINGS
from tests.appliance.tasks.harness import wait_until
from tests.appliance.tasks.test_uplink_worker import make_events, remote_body
from tests.wmorigin.fixtures import wm_origin  # noqa: F401 (fixture)

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

EVENTS = 5
LEASE_S = int(WORKER_SETTINGS["APPLIANCE_UPLINK_LEASE"])


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_loses_nothing(celery_worker_process, wm_origin):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="uplink")
    gate = wm_origin.send_event_gate = threading.Event()  # the origin holds its answers: the worker is mid-send
    origin = Origin.objects.create(name="wms", base_url=wm_origin.url(""), route_prefix="/wms")
    events = make_events(origin, wm_origin.url("/clip.wmv"), EVENTS)
    try:
        wait_until(lambda: wm_origin.send_events, timeout=30, what="the worker sending the first event")
        os.killpg(celery_worker_process.proc.pid, signal.SIGKILL)  # main process, pool and beat
        celery_worker_process.proc.wait(10)
    finally:
        gate.set()
    assert len(wm_origin.send_events) == 1
    in_flight = wm_origin.send_events[0].raw.decode()

    celery_worker_process.start()
    rows = UplinkEvent.objects.filter(pk__in=[e.pk for e in events])
    wait_until(lambda: not rows.filter(state__in=[UplinkState.PENDING, UplinkState.SENDING]).exists(),
               timeout=LEASE_S + 60, what="every claimed event settled after the lease")

    bodies = [e.raw.decode() for e in wm_origin.send_events]
    assert sorted(bodies) == sorted(remote_body(n) for n in range(EVENTS))  # each once, none twice
    failed = rows.get(state=UplinkState.FAILED)
    assert failed.body == in_flight and failed.last_error == MAYBE_SENT
    assert rows.filter(state=UplinkState.SENT).count() == EVENTS - 1
