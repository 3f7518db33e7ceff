"""Splitting a live origin on the default port 554 whose Content-Base omits the port: the hub's
stream URLs (rtsp://H/live/stream=N) and the players' SETUPs (rtsp://H:554/live/stream=N) name the
same streams (proxyd.rtsp.uri); compared as strings the players' SETUPs found no hub stream."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.proxyd.default_port_origin import portless_origin_on_554
from tests.proxyd.split.conftest import LIVE
from tests.proxyd.split.players import play_many

pytestmark = pytest.mark.peers


def test_players_udp_and_tcp_share_one_origin_session(proxyd_process, peer_players, tmp_path):
    with portless_origin_on_554(live="live", live_options=LIVE, stderr_path=tmp_path / "gst-origin.log") \
            as origin:
        # TCP to the origin: over UDP gst-rtsp-server sends RTP from 127.0.0.1, not from 127.0.0.N,
        # and the hub accepts media only from the origin's address (then falls back to TCP)
        proxy = proxyd_process(routes={"/tv": f"rtsp://{origin.host}:554/"},
                               extra_args=["--live", "/tv", "--origin-transport", "tcp"])
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = [f.result() for f in play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], duration=4)]
        for r in results:
            assert r.ok and r.video_frames >= 0.9 * 4 * LIVE.fps, r.describe()
        assert origin.session_count("/live") == 1  # one split session at the origin for both players
