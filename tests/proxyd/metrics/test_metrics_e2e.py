"""proxyd's /metrics, /healthz and /readyz scraped while real ffmpeg players play through it from a
GStreamer origin (proxyd as a subprocess, scraped over HTTP like Prometheus would)."""

from __future__ import annotations

import concurrent.futures
import os
import socket

import pytest

from proxyd.rtsp.oneshot import rtsp_request
from tests.peers.proxyd_proc import free_tcp_port
from tests.proxyd.metrics.scrape import get, ready, scrape, total, value, wait_for

pytestmark = pytest.mark.peers


def start_proxy(proxyd_process, origin, tmp_path, *extra: str):
    port = free_tcp_port()
    proxy = proxyd_process(routes={"/vod": origin.url("/")}, cache_dir=tmp_path / "cache",
                           extra_args=["--metrics-listen", f"127.0.0.1:{port}", "--cache-ttl", "300", *extra])
    return proxy, port


def test_values_move_while_ffmpeg_plays_then_a_cache_hit(gst_origin, proxyd_process, peer_players, tmp_path):
    proxy, port = start_proxy(proxyd_process, gst_origin, tmp_path)
    before = scrape(port)
    assert total(before, "proxyd_session_bytes_out_total") == 0
    assert value(before, "proxyd_cache_quota_bytes") == 1 << 30
    url = proxy.url("/vod/clip")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        playing = pool.submit(peer_players.ffmpeg_play, url, transport="tcp", decode=False)
        during = wait_for(port, lambda s: value(s, "proxyd_sessions", served_from="origin",
                                                state="playing") == 1
                          and value(s, "proxyd_session_bytes_out_total", served_from="origin") > 0,
                          what="one playing session with bytes out")
        assert value(during, "proxyd_player_connections") >= 1
        assert value(during, "proxyd_players", served_from="origin") == 1
        assert value(during, "proxyd_cache_fills_active") == 1
        seen = value(during, "proxyd_session_bytes_out_total", served_from="origin")
        wait_for(port, lambda s: value(s, "proxyd_session_bytes_out_total", served_from="origin") > seen,
                 what="bytes out growing while the player plays")
        first = playing.result()
    assert first.ok, first.describe()

    after = wait_for(port, lambda s: value(s, "proxyd_cache_fills_total", outcome="complete") == 1
                     and total(s, "proxyd_sessions") == 0, what="fill committed and session ended")
    sent = value(after, "proxyd_session_bytes_out_total", served_from="origin")
    assert sent >= seen  # the ended session's bytes stay counted
    assert value(after, "proxyd_cache_bytes_total", result="miss") == sent
    assert value(after, "proxyd_cache_filled_bytes_total") == value(after, "proxyd_cache_size_bytes") > 0
    assert value(after, "proxyd_sessions_started_total", served_from="origin") == 1
    assert value(after, "proxyd_sessions_ended_total", end_reason="teardown") == 1
    assert value(after, "proxyd_cache_requests_total", result="miss") == 1
    assert value(after, "proxyd_cache_fills_total", outcome="started") == 1
    assert value(after, "proxyd_cache_entries") == 1 and value(after, "proxyd_cache_size_bytes") > 0
    for method in ("DESCRIBE", "SETUP", "PLAY"):
        assert value(after, "proxyd_rtsp_responses_total", method=method, status="200") >= 1, method
    origin = gst_origin.url("/").split("/")[2]
    assert value(after, "proxyd_origin_request_seconds_count", origin=origin, method="DESCRIBE") >= 1
    assert value(after, "proxyd_origin_responses_total", origin=origin, status="200") >= 3

    second = peer_players.ffmpeg_play(url, transport="tcp", decode=False)
    assert second.ok, second.describe()
    hit = wait_for(port, lambda s: value(s, "proxyd_sessions_ended_total", end_reason="teardown") == 2,
                   what="second session ended")
    assert value(hit, "proxyd_cache_requests_total", result="hit") == 1
    assert value(hit, "proxyd_sessions_started_total", served_from="cache") == 1
    assert value(hit, "proxyd_cache_bytes_total", result="hit") > 0.9 * sent
    assert value(hit, "proxyd_cache_bytes_total", result="miss") == sent  # the origin was not asked again


def test_origin_errors_and_statuses_are_counted(gst_origin, proxyd_process, tmp_path):
    proxy, port = start_proxy(proxyd_process, gst_origin, tmp_path)
    assert rtsp_request(proxy.url("/vod/no-such-clip"), "DESCRIBE").status == 404
    gst_origin.stop()
    assert rtsp_request(proxy.url("/vod/clip"), "DESCRIBE").status == 502
    samples = scrape(port)
    origin = gst_origin.url("/").split("/")[2]
    assert value(samples, "proxyd_rtsp_responses_total", method="DESCRIBE", status="404") == 1
    assert value(samples, "proxyd_origin_responses_total", origin=origin, status="404") == 1
    assert value(samples, "proxyd_origin_errors_total", origin=origin, kind="connect_refused") >= 1
    assert value(samples, "proxyd_rtsp_responses_total", method="DESCRIBE", status="502") == 1


def test_health_and_readiness(gst_origin, proxyd_process, tmp_path):
    proxy, port = start_proxy(proxyd_process, gst_origin, tmp_path)
    status, body, _ = get(port, "/healthz")
    assert status == 200 and b"alive" in body
    status, answer = ready(port)
    assert status == 200 and answer["ready"], answer
    assert set(answer["checks"]) == {"listening", "cache_dir"}
    assert get(port, "/other")[0] == 404

    os.chmod(tmp_path / "cache", 0o500)  # as root a mode does not stop writes: replace the directory
    blocked = tmp_path / "cache-blocked"
    (tmp_path / "cache").rename(blocked)
    (tmp_path / "cache").write_text("a file where the cache directory should be")
    status, answer = ready(port)
    assert status == 503 and not answer["ready"]
    assert not answer["checks"]["cache_dir"]["ok"] and answer["checks"]["listening"]["ok"]


def test_unreachable_control_plane_is_not_ready(proxyd_process, gst_origin, peer_players, tmp_path, request):
    # A port bound for the whole test but never listening: connections to it are refused, and no
    # other process (a parallel test's server) can take it in the meantime.
    dead_socket = socket.socket()
    dead_socket.bind(("127.0.0.1", 0))
    request.addfinalizer(dead_socket.close)
    dead = dead_socket.getsockname()[1]
    proxy, port = start_proxy(proxyd_process, gst_origin, tmp_path, "--control-url", f"http://127.0.0.1:{dead}",
                              "--control-token", "t0ken", "--state-dir", str(tmp_path / "state"),
                              "--control-poll-interval", "60")
    status, answer = ready(port)
    assert status == 503
    assert answer["checks"]["snapshot"] == {"ok": False,
                                            "detail": "no snapshot fetched from the control plane yet"}
    assert answer["checks"]["spool"]["ok"]
    assert value(scrape(port), "proxyd_report_delivery_failing") == 0  # nothing sent yet
    played = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp", duration=2, decode=False)
    assert played.ok, played.describe()
    samples = wait_for(port, lambda s: value(s, "proxyd_report_post_failures_total") >= 1
                       and value(s, "proxyd_report_spool_bytes") > 0, what="reports failing and spooled")
    assert value(samples, "proxyd_report_delivery_failing") == 1
    assert value(samples, "proxyd_report_delivered_events_total") == 0
    assert ("proxyd_snapshot_age_seconds", ()) not in samples
