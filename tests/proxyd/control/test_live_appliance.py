"""ControlPlane against the real Django control plane (pytest-django live_server, test database).

proxyd's urllib client talks HTTP to the actual /internal/v1 views: token auth, ETag/304, report
ingestion exactly once by id. The test itself may import Django; proxyd/ never does.
"""

import asyncio
import json
from pathlib import Path

import pytest

from tests.proxyd.control.conftest import eventually

pytest.importorskip("django")
pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(__file__).resolve().parent.parent.parent / "contract" / "fixtures"
KINDS = ("session.started", "session.counters", "session.ended", "cache.changed", "playlog", "sendevent",
         "split.changed")


def fixture_data(kind: str) -> dict:
    doc = json.loads((FIXTURES / f"report_{kind.replace('.', '_')}.json").read_text())
    return doc["events"][0]["data"]


def run_plane(config, scenario):
    from proxyd.control.plane import ControlPlane

    async def main():
        plane = ControlPlane(config)
        await plane.start()
        try:
            return await scenario(plane)
        finally:
            await plane.stop(deadline=5.0)

    return asyncio.run(main())


def make_config(url: str, token: str, state_dir, **overrides):
    from proxyd.control.plane import ControlConfig

    return ControlConfig(url=url, token=token, node_name="node-1", state_dir=state_dir, batch_max_events=4,
                         batch_max_delay=0.02, retry_initial=0.02, retry_max=0.1, **overrides)


def test_reports_are_ingested_once_and_snapshot_revalidates(live_server, tmp_path):
    from appliance.control.models import ReportEvent
    from tests.appliance.factories import ProxyNodeFactory

    node = ProxyNodeFactory(name="node-1")
    config = make_config(live_server.url, node.token, tmp_path)

    async def scenario(plane):
        assert plane.snapshot.current is not None and plane.snapshot.current.node_name == "node-1"
        assert await plane.snapshot.refresh() is False  # If-None-Match -> 304
        for kind in KINDS:
            plane.reporter.emit(kind, fixture_data(kind))
        await eventually(lambda: plane.delivery.delivered_events == len(KINDS))
        return plane.stats()

    stats = run_plane(config, scenario)
    assert stats["dropped"] == dict.fromkeys(stats["dropped"], 0)
    stored = list(ReportEvent.objects.filter(node=node).order_by("seq").values_list("kind", flat=True))
    assert stored == list(KINDS)
    assert json.loads((tmp_path / "snapshot.json").read_text())["node"]["name"] == "node-1"


def test_unknown_token_keeps_reports_until_it_is_fixed(live_server, tmp_path):
    from appliance.control.models import ReportEvent
    from tests.appliance.factories import ProxyNodeFactory

    node = ProxyNodeFactory(name="node-1")

    async def refused(plane):
        plane.reporter.emit("session.started", fixture_data("session.started"))
        await eventually(lambda: plane.delivery.last_error is not None and "401" in plane.delivery.last_error)

    run_plane(make_config(live_server.url, "not-the-token", tmp_path), refused)
    assert ReportEvent.objects.count() == 0

    async def fixed(plane):
        await eventually(lambda: plane.delivery.delivered_events == 1)

    run_plane(make_config(live_server.url, node.token, tmp_path), fixed)
    assert ReportEvent.objects.filter(node=node, kind="session.started").count() == 1
    assert not list((tmp_path / "spool" / "dead").iterdir())
