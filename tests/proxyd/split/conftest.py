"""Split tests: a fresh GStreamer live origin (small bitrate) and a proxyd with --live on it."""

from __future__ import annotations

import pytest

from tests.peers.origin import LiveOptions

LIVE = LiveOptions(width=160, height=120, fps=25, gop_frames=25, bitrate_kbps=200)


@pytest.fixture
def live_origin(gst_origin_factory):
    return gst_origin_factory(live="live", live_options=LIVE)


@pytest.fixture
def split_proxy(live_origin, proxyd_process):
    def start(*extra: str):
        return proxyd_process(routes={"/tv": live_origin.url("/")}, extra_args=["--live", "/tv", *extra])
    return start
