"""Suite-wide fixtures. Real-peer fixtures (GStreamer origin, ffmpeg players) live in tests.peers."""

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.peers.fixtures"]

# Property tests check results, not speed: on a loaded machine (xdist workers beside real-time peers)
# a deadline or "generation is slow" health check fails tests whose results are right.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")
