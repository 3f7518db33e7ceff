"""Fixtures of the task tests; the Celery worker itself is tests.appliance.tasks.worker_fixtures (a plugin)."""

import pytest

from tests.appliance.tasks.rtsp_responder import RtspResponder


@pytest.fixture
def responder():
    server = RtspResponder().start()
    yield server
    server.stop()
