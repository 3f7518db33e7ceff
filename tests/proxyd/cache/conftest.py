"""Fixtures of the cache tests."""

from __future__ import annotations

import pytest

from tests.peers.tcp_forward import CountingForwarder


@pytest.fixture
def counted_origin(gst_origin):
    """The origin as proxyd sees it: every byte it sends is counted (fills are RTP over TCP)."""
    with CountingForwarder(0, (gst_origin.host, gst_origin.port)) as forwarder:
        yield forwarder
