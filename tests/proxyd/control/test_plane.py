"""ControlConfig validation, token handling and ControlPlane lifecycle details."""

import asyncio
import logging

import pytest

from proxyd.control.plane import ControlConfig, ControlPlane, read_token_file
from tests.proxyd.control.conftest import eventually


def config(tmp_path, **overrides) -> ControlConfig:
    values = dict(url="http://127.0.0.1:8000", token="tok-123", node_name="node-1", state_dir=tmp_path)
    values.update(overrides)
    return ControlConfig(**values)


def test_token_is_not_in_the_repr(tmp_path):
    assert "tok-123" not in repr(config(tmp_path))


@pytest.mark.parametrize("overrides, message", [
    ({"token": ""}, "token"), ({"token": "a b"}, "token"), ({"token": "a\r\nX: y"}, "token"),
    ({"node_name": ""}, "node_name"), ({"batch_max_events": 0}, "batch_max_events"),
    ({"spool_max_bytes": 0}, "spool_max_bytes"), ({"poll_interval": 0}, "poll_interval"),
    ({"request_timeout": -1}, "request_timeout"), ({"url": "ftp://x"}, "control URL"),
])
def test_bad_config_is_rejected_with_the_field_name(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **overrides)


def test_read_token_file_strips_whitespace(tmp_path):
    path = tmp_path / "token"
    path.write_text("  secret-token\n")
    assert read_token_file(path) == "secret-token"


def test_state_dir_is_created_private(tmp_path):
    plane = ControlPlane(config(tmp_path / "state"))
    assert (tmp_path / "state").stat().st_mode & 0o077 == 0
    assert plane.reporter.next_seq == 1


def control_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("control-") and not t.done()]


async def test_stop_twice_is_harmless(tmp_path):
    plane = ControlPlane(config(tmp_path, url="http://127.0.0.1:9", request_timeout=0.5))
    await plane.start()
    assert control_tasks(), "start() runs the control loops as control-* tasks"
    await plane.stop(deadline=1.0)
    assert control_tasks() == []
    await plane.stop(deadline=1.0)
    assert control_tasks() == []


async def test_failing_load_callback_does_not_stop_reports(make_config, fake_api, planes):
    plane = ControlPlane(make_config(), node_load=lambda: 1 / 0)
    planes.append(plane)
    await plane.start()
    plane.reporter.emit("session.started", {"session_id": "s1"})
    await fake_api.wait_for_events(1)
    assert fake_api.report_bodies[0]["node"]["load"] == {"sessions": 0, "bandwidth_bps": 0, "cache_disk_full": False}


async def test_a_crashed_loop_is_restarted(make_config, fake_api, planes, caplog):
    plane = ControlPlane(make_config(retry_max=0.01))
    planes.append(plane)
    outbox = plane.delivery._outbox
    real_put = outbox.put
    failures = []

    async def put_once_broken(batch):
        if not failures:
            failures.append(batch)
            raise RuntimeError("simulated bug")
        await real_put(batch)

    outbox.put = put_once_broken
    await plane.start()
    with caplog.at_level(logging.ERROR, logger="proxyd.control"):
        plane.reporter.emit("a", {"n": 1})
        await eventually(lambda: failures, what="first put")
        plane.reporter.emit("a", {"n": 2})
        await fake_api.wait_for_events(1)
    assert [e["data"] for e in fake_api.events.values()] == [{"n": 2}]
    assert any("pump loop failed" in r.getMessage() for r in caplog.records)


def snapshot_with(**extra):
    from proxyd.control.schema import parse_snapshot

    return parse_snapshot({"schema_version": 1, "etag": "e", "node": {"name": "node-1"}, **extra})


def test_the_control_plane_sets_batch_delay_and_poll_interval_and_their_absence_restores_ours(tmp_path):
    plane = ControlPlane(config(tmp_path, batch_max_delay=1.0, poll_interval=10.0))
    plane.apply_reporting(snapshot_with(reporting={"batch_delay": 5}, polling={"interval": 30}))
    assert (plane.reporter.batch_max_delay, plane.snapshot.poll_interval) == (5.0, 30.0)
    plane.apply_reporting(snapshot_with())
    assert (plane.reporter.batch_max_delay, plane.snapshot.poll_interval) == (1.0, 10.0)


@pytest.mark.parametrize("extra,where", [
    *(({"reporting": {"batch_delay": bad}}, "reporting") for bad in (0, -1, 61, "5", True)),
    *(({"polling": {"interval": bad}}, "polling") for bad in (0, 301, "10", False)),
])
def test_a_bad_batch_delay_or_poll_interval_rejects_the_snapshot(extra, where):
    from proxyd.control.schema import SnapshotError

    with pytest.raises(SnapshotError, match=where):
        snapshot_with(**extra)
