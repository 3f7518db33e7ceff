import asyncio
import time

import pytest

from proxyd.control.plane import ControlConfig, ControlPlane
from tests.proxyd.control.fake_api import FakeControlPlane


def snapshot_doc(etag: str = "etag-1", **overrides) -> dict:
    doc = {
        "schema_version": 1, "etag": etag, "generated_at": "2026-11-25T12:00:00Z",
        "node": {"name": "node-1"},
        "origins": [{"id": 1, "name": "gst", "route_prefix": "/vod", "base_url": "rtsp://127.0.0.1:8600/",
                     "allowed": True, "cache_policy": "obey", "cache_ttl": 0, "stale_if_error": 0,
                     "transport": "auto", "live": False, "split": "auto", "username": "", "password": ""}],
        "purges": [{"id": 7, "url": "rtsp://127.0.0.1:8600/clip", "prefix": False}],
        "prestuff": [{"id": 3, "url": "rtsp://127.0.0.1:8600/new-clip"}],
        "revalidated": [], "terminate_sessions": [],
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def fake_api():
    fake = FakeControlPlane().start()
    fake.snapshot = snapshot_doc()
    yield fake
    fake.close()


@pytest.fixture
def make_config(fake_api, tmp_path):
    def make(**overrides) -> ControlConfig:
        values = dict(url=fake_api.url, token=fake_api.token, node_name="node-1",
                      state_dir=tmp_path / "state",
                      batch_max_events=50, batch_max_delay=0.02, poll_interval=60.0, request_timeout=2.0,
                      retry_initial=0.01, retry_max=0.05)
        values.update(overrides)
        return ControlConfig(**values)

    return make


@pytest.fixture
async def planes():
    """Start ControlPlanes through this list so each is stopped even when the test fails."""
    started: list[ControlPlane] = []
    yield started
    for plane in started:
        await plane.stop(deadline=2.0)


async def eventually(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Wait (with a deadline) for in-process state that has no event of its own to await."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.005)


def pytest_ignore_collect(collection_path, config):
    """The live-appliance test needs pytest-django; skip collecting it under `-p no:django`."""
    if collection_path.name == "test_live_appliance.py" and not config.pluginmanager.hasplugin("django"):
        return True
    return None
