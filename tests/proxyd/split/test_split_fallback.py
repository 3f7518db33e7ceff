"""A split whose origin's UDP never arrives (a firewall drops it) sets its origin session up again
over TCP and stays there; the players only see the delay (origin transport "auto")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.proxyd.split.players import play_many
from tests.proxyd.split.udp_firewall import UdpDroppingGateway

pytestmark = pytest.mark.peers

FPS = 25
FALLBACK_S = 1.5


def test_split_origin_session_falls_back_to_tcp_when_udp_media_is_dropped(live_origin, proxyd_process):
    with UdpDroppingGateway(("127.0.0.1", live_origin.port)) as gateway:
        proxy = proxyd_process(routes={"/tv": gateway.url()},
                               extra_args=["--live", "/tv", "--udp-fallback-timeout", str(FALLBACK_S)])
        mark = live_origin.mark()
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = [f.result() for f in play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], duration=4,
                                                     timeout=40)]
        dropped = gateway.dropped_datagrams()
        transports = list(gateway.setup_transports)
    for r in results:
        assert r.ok and r.video_frames >= 0.95 * 4 * FPS, r.describe()
    assert dropped > 0  # the origin did send over UDP; none of it reached proxyd
    # Every stream set up over UDP once, then over TCP, and never over UDP again.
    udp = [t for t in transports if "client_port=" in t]
    tcp = [t for t in transports if t.startswith("RTP/AVP/TCP")]
    assert len(udp) == len(tcp) == 2 and transports == udp + tcp, transports
    log = proxy.log_path.read_text()
    assert log.count("no UDP media from the origin") == 1, log[-3000:]
    assert "reconnect" not in log, log[-3000:]  # the same origin connection, no reconnect
    # The UDP origin session was released; one TCP session replaced it.
    assert len(live_origin.requests("TEARDOWN", after=mark)) >= 1
    assert live_origin.session_count("/live", after=mark) == 2
