"""Suite-wide fixtures. Real-peer fixtures (GStreamer origin, ffmpeg players) live in tests.peers."""

import uuid

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.peers.fixtures", "tests.appliance.tasks.worker_fixtures"]

# Property tests check results, not speed: on a loaded machine (xdist workers beside real-time peers)
# a deadline or "generation is slow" health check fails tests whose results are right.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.fixture(autouse=True)
def _private_cache():
    # Failed-login/token counters and API throttles live in the cache; each test starts with none,
    # instead of inheriting another test's (or an earlier run's, in Redis) lockouts.
    from django.test import override_settings

    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                               "LOCATION": f"test-{uuid.uuid4().hex}"}}):
        yield
