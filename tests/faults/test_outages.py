"""Faults, control plane: the web app, PostgreSQL and Redis each stopped while WMPlayer-style players
play through proxyd to the WM test origin. Streaming goes on; proxyd spools its reports and they
arrive exactly once afterwards (contiguous seqs, each session once); the uplink SendEvents (Celery)
reach the origin exactly once each.

The appliance here is a private one (tests/faults/stack.py: own PostgreSQL cluster and Redis on
other ports), so stopping its parts never touches the machine's shared services. The outage lasts
FAULTS_OUTAGE_SECONDS (20 s by default; the issue's 10 minutes: FAULTS_OUTAGE_SECONDS=600).
"""

from __future__ import annotations

import asyncio
import collections
import glob
import os
import shutil
import time

import pytest

from tests.appliance.tasks.harness import wait_until
from tests.faults.stack import Appliance
from tests.wmorigin.fixtures import wm_origin  # noqa: F401 (fixture)
from tests.wmorigin.player import WMPlayer

pytestmark = [pytest.mark.celery, pytest.mark.peers]

OUTAGE_S = float(os.environ.get("FAULTS_OUTAGE_SECONDS", "20"))
# proxyd's report retry backoff is capped at 30 s; then ingestion and the worker's 2 s uplink beat, for
# a backlog that grows with the outage.
DELIVERY_DEADLINE_S = 120.0 + OUTAGE_S
SUBSCRIBED_EVENTS_PER_PLAY = 2  # the converted legacy LogPlay and the player's remote-log

START_AND_CHECK_S = 300.0  # starting proxyd and the players before, checking after: pytest-timeout's budget

OUTAGES = {
    "web": (lambda a: a.web.stop(), lambda a: a.web.start()),
    "postgresql": (lambda a: a.postgres.stop(), lambda a: a.postgres.start()),
    "redis": (lambda a: a.redis.stop(), lambda a: a.redis.start()),
}


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    if shutil.which("redis-server") is None or not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("needs redis-server and PostgreSQL's initdb to run a private appliance")
    from django.conf import settings

    stack = Appliance(tmp_path_factory.mktemp("appliance"), ",".join(settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS))
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.mark.timeout(START_AND_CHECK_S + OUTAGE_S + DELIVERY_DEADLINE_S)
@pytest.mark.parametrize("part", list(OUTAGES))
def test_players_play_through_an_outage_and_reports_and_uplink_events_arrive_once(
        part, appliance, wm_origin, proxyd_process, tmp_path):  # noqa: F811
    node_name = f"outage-{part}"
    token = appliance.manage("proxyd_node_create", node_name).strip()
    wm_origin.set_entry("/clip.wmv", seed=part, duration_ms=1000)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("")}, extra_args=[
        "--control-url", appliance.url, f"--control-token={token}", "--node-name", node_name,
        "--state-dir", str(tmp_path / "state"), "--control-poll-interval", "1", "--counters-interval", "1"])
    url = f"rtsp://127.0.0.1:{proxy.port}/wm/clip.wmv"
    plays = []

    def play() -> None:
        plays.append(asyncio.run(WMPlayer(url, speed=5).run()))

    play()
    stop, start = OUTAGES[part]
    stop(appliance)
    try:
        ends = time.monotonic() + OUTAGE_S
        while time.monotonic() < ends:  # players keep coming for the whole outage
            play()
    finally:
        start(appliance)
    play()
    assert [p.error for p in plays if p.error] == []
    during = len(plays) - 2

    (node_id,), = appliance.query("SELECT id FROM nodes_proxynode WHERE name = %s", node_name)

    def ended_sessions() -> int:
        return appliance.query("SELECT count(*) FROM playback_streamsession WHERE node_id = %s "
                               "AND end_reason <> ''", node_id)[0][0]

    def uplink_sent() -> int:
        return appliance.query("SELECT count(*) FROM uplink_uplinkevent WHERE node_id = %s AND state = 'sent'",
                               node_id)[0][0]

    wait_until(lambda: ended_sessions() >= len(plays), timeout=DELIVERY_DEADLINE_S,
               what=f"{len(plays)} sessions reported ({during} during the {part} outage)")
    expected_events = SUBSCRIBED_EVENTS_PER_PLAY * len(plays)
    wait_until(lambda: uplink_sent() >= expected_events, timeout=DELIVERY_DEADLINE_S,
               what=f"{expected_events} uplink events sent")
    assert wm_origin.wait_for(lambda: len(wm_origin.send_events) >= expected_events, timeout=10)

    seqs = [seq for seq, in appliance.query(
        "SELECT seq FROM control_reportevent WHERE node_id = %s ORDER BY seq", node_id)]
    assert len(seqs) == len(set(seqs)) == seqs[-1] - seqs[0] + 1  # nothing lost, nothing twice
    assert ended_sessions() == len(plays)
    rows = appliance.query("SELECT state, body FROM uplink_uplinkevent WHERE node_id = %s", node_id)
    assert collections.Counter(state for state, _ in rows) == {"sent": expected_events}
    received = collections.Counter(e.raw.decode() for e in wm_origin.send_events)
    assert received == collections.Counter(body for _, body in rows)  # each event reached the origin once
    print(f"\n{part} stopped {OUTAGE_S:.0f} s: {len(plays)} plays ({during} during the outage), "
          f"{len(seqs)} report events, {expected_events} uplink events, each once")
