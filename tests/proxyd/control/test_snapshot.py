"""SnapshotStore via ControlPlane: conditional polling, last-known-good on disk, bad input ignored."""

import json
import logging

import pytest

from proxyd.control.plane import ControlPlane
from proxyd.control.schema import OriginConfig, SnapshotError, parse_snapshot
from tests.proxyd.control.conftest import snapshot_doc


async def test_start_fetches_parses_and_persists_the_snapshot(make_config, fake_api, planes):
    plane = ControlPlane(make_config())
    planes.append(plane)
    await plane.start()
    snap = plane.snapshot.current
    assert snap.etag == "etag-1" and snap.node_name == "node-1"
    assert snap.origins[0] == OriginConfig(
        id=1, name="gst", route_prefix="/vod", base_url="rtsp://127.0.0.1:8600/", allowed=True,
        cache_policy="obey", cache_ttl=0, stale_if_error=0, transport="auto", live=False, split="auto",
        username="", password="")
    assert snap.purges[0].url == "rtsp://127.0.0.1:8600/clip" and snap.purges[0].prefix is False
    assert [(p.id, p.url) for p in snap.prestuff] == [(3, "rtsp://127.0.0.1:8600/new-clip")]
    saved = plane.snapshot.path
    assert json.loads(saved.read_bytes())["etag"] == "etag-1"
    assert saved.stat().st_mode & 0o077 == 0  # holds origin passwords


async def test_unchanged_snapshot_is_a_304_and_notifies_nobody(make_config, fake_api, planes):
    plane = ControlPlane(make_config())
    planes.append(plane)
    await plane.start()
    seen = []
    plane.snapshot.subscribe(seen.append)
    assert await plane.snapshot.refresh() is False
    assert fake_api.requests[-1][2]["if-none-match"] == '"etag-1"'
    assert seen == []


async def test_changed_snapshot_replaces_the_current_one_and_notifies(make_config, fake_api, planes):
    plane = ControlPlane(make_config())
    planes.append(plane)
    await plane.start()
    seen = []
    unsubscribe = plane.snapshot.subscribe(seen.append)
    fake_api.snapshot = snapshot_doc("etag-2", terminate_sessions=["node-1:abc"])
    assert await plane.snapshot.refresh() is True
    assert [s.etag for s in seen] == ["etag-2"]
    assert plane.snapshot.current.terminate_sessions == ("node-1:abc",)
    unsubscribe()
    fake_api.snapshot = snapshot_doc("etag-3")
    await plane.snapshot.refresh()
    assert len(seen) == 1


async def test_poll_loop_picks_up_changes(make_config, fake_api, planes):
    plane = ControlPlane(make_config(poll_interval=0.02))
    planes.append(plane)
    await plane.start()
    plane.snapshot.changed.clear()
    fake_api.snapshot = snapshot_doc("etag-9")
    await plane.snapshot.changed.wait()
    assert plane.snapshot.current.etag == "etag-9"


async def test_last_known_good_is_used_when_the_api_is_down_at_start(make_config, fake_api, planes, caplog):
    first = ControlPlane(make_config())
    await first.start()
    await first.stop()
    fake_api.refuse()
    second = ControlPlane(make_config())
    planes.append(second)
    with caplog.at_level(logging.INFO, logger="proxyd.control"):
        await second.start()
    assert second.snapshot.current == first.snapshot.current
    assert any("last-known-good" in r.getMessage() for r in caplog.records)
    assert any("cannot fetch config snapshot" in r.getMessage() for r in caplog.records)


async def test_last_known_good_etag_is_revalidated_with_304(make_config, fake_api, planes):
    first = ControlPlane(make_config())
    await first.start()
    await first.stop()
    second = ControlPlane(make_config())
    planes.append(second)
    await second.start()
    method, path, headers = fake_api.requests[-1]
    assert headers["if-none-match"] == '"etag-1"'
    assert second.snapshot.current.etag == "etag-1"


async def test_corrupt_snapshot_file_is_ignored_with_a_log_line(make_config, fake_api, planes, caplog):
    config = make_config()
    config.state_dir.mkdir(parents=True)
    (config.state_dir / "snapshot.json").write_text('{"schema_version": 1, "etag": ')
    fake_api.refuse()
    plane = ControlPlane(config)
    planes.append(plane)
    with caplog.at_level(logging.WARNING, logger="proxyd.control"):
        await plane.start()
    assert plane.snapshot.current is None
    assert any("corrupt last-known-good snapshot" in r.getMessage() for r in caplog.records)


async def test_unsupported_schema_version_keeps_last_known_good(make_config, fake_api, planes, caplog):
    plane = ControlPlane(make_config())
    planes.append(plane)
    await plane.start()
    fake_api.snapshot = snapshot_doc("etag-2", schema_version=2)
    with caplog.at_level(logging.WARNING, logger="proxyd.control"):
        assert await plane.snapshot.refresh() is False
    assert plane.snapshot.current.etag == "etag-1"
    assert json.loads(plane.snapshot.path.read_bytes())["etag"] == "etag-1"
    assert any("unsupported version 2" in r.getMessage() for r in caplog.records)


async def test_server_error_keeps_current_snapshot(make_config, fake_api, planes):
    plane = ControlPlane(make_config())
    planes.append(plane)
    await plane.start()
    fake_api.snapshot_status = 500
    assert await plane.snapshot.refresh() is False
    assert plane.snapshot.current.etag == "etag-1"


async def test_subscriber_error_is_logged_and_does_not_stop_others(make_config, fake_api, planes, caplog):
    plane = ControlPlane(make_config())
    planes.append(plane)
    await plane.start()
    seen = []
    plane.snapshot.subscribe(lambda s: 1 / 0)
    plane.snapshot.subscribe(seen.append)
    fake_api.snapshot = snapshot_doc("etag-2")
    await plane.snapshot.refresh()
    assert [s.etag for s in seen] == ["etag-2"]
    assert any("subscriber" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["origins"][0].update(cache_policy="sometimes"), "origins[0].cache_policy"),
    (lambda d: d["origins"][0].update(cache_ttl=-1), "origins[0].cache_ttl"),
    (lambda d: d["origins"][0].update(allowed=1), "origins[0].allowed"),
    (lambda d: d["origins"][0].update(id=True), "origins[0].id"),
    (lambda d: d["origins"][0].pop("base_url"), "origins[0].base_url: missing"),
    (lambda d: d["purges"].append("x"), "purges[1]: expected object"),
    (lambda d: d.update(terminate_sessions=[1]), "terminate_sessions"),
    (lambda d: d.pop("etag"), "snapshot.etag: missing"),
    (lambda d: d.update(node=[]), "snapshot.node"),
])
def test_parse_rejects_bad_fields_by_name(mutate, message):
    doc = snapshot_doc()
    mutate(doc)
    with pytest.raises(SnapshotError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_snapshot(doc)


def test_parse_ignores_unknown_keys_and_fills_defaults():
    doc = snapshot_doc(extra_future_key={"x": 1})
    doc["origins"][0] = {"id": 2, "name": "o", "route_prefix": "/live", "base_url": "rtsp://h/",
                         "new_knob": True}
    origin = parse_snapshot(doc).origins[0]
    defaults = (origin.cache_policy, origin.transport, origin.split, origin.allowed)
    assert defaults == ("obey", "auto", "auto", True)


def test_origin_repr_hides_password():
    doc = snapshot_doc()
    doc["origins"][0]["password"] = "hunter2"
    assert "hunter2" not in repr(parse_snapshot(doc))
