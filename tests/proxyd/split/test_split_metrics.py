"""proxyd's /metrics while two ffmpeg players share one split of a live GStreamer origin."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.peers.players import ffmpeg_play
from tests.peers.proxyd_proc import free_tcp_port
from tests.proxyd.metrics.scrape import total, value, wait_for

pytestmark = pytest.mark.peers


def test_split_players_and_bytes_are_scraped(live_origin, split_proxy):
    port = free_tcp_port()
    proxy = split_proxy("--metrics-listen", f"127.0.0.1:{port}", "--counters-interval", "0.5",
                        "--split-linger", "1")
    with ThreadPoolExecutor(2) as pool:
        players = [pool.submit(ffmpeg_play, proxy.url("/tv/live"), transport=t, duration=5, decode=False,
                               timeout=40) for t in ("udp", "tcp")]
        during = wait_for(port, lambda s: value(s, "proxyd_sessions", served_from="split",
                                                state="playing") == 2
                          and total(s, "proxyd_split_players") == 2, what="two split players")
        assert value(during, "proxyd_splits", state="live") == 1
        assert value(during, "proxyd_players", served_from="split") == 2
        assert value(during, "proxyd_split_players", url=live_origin.url("/live")) == 2
        results = [p.result() for p in players]
    assert all(r.ok for r in results), [r.describe() for r in results]
    after = wait_for(port, lambda s: value(s, "proxyd_splits_ended_total", end_reason="linger_expired") == 1,
                     what="the split ended after its linger")
    assert total(after, "proxyd_splits") == 0
    assert value(after, "proxyd_sessions_started_total", served_from="split") == 2
    assert value(after, "proxyd_sessions_ended_total", end_reason="teardown") == 2
    assert value(after, "proxyd_session_bytes_out_total", served_from="split") > 0
    assert value(after, "proxyd_split_bytes_in_total") > 0
    assert total(after, "proxyd_origin_responses_total", status="200") >= 3  # one DESCRIBE, SETUPs, PLAY
