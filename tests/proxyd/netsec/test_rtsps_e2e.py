"""RTSPS with real peers: ffmpeg plays rtsps:// through proxyd's TLS listener (relay, cache hit,
split); a player asking UDP media over TLS; certificate reload on SIGHUP."""

from __future__ import annotations

import signal
import ssl
import socket

import pytest

from tests.peers.tls import TestCa
from tests.proxyd.cache.helpers import wait_for_log
from tests.proxyd.split.conftest import LIVE

pytestmark = pytest.mark.peers

COMMITTED = r"cache: committed rtsp://\S+/clip "


@pytest.fixture
def test_ca(tmp_path) -> TestCa:
    return TestCa(tmp_path / "ca")


@pytest.fixture
def rtsps_proxy(proxyd_process, test_ca, free_port):
    """proxyd_process(...) with --listen-tls on 127.0.0.1:free_port; .tls_url(path) for players."""
    server = test_ca.issue("proxy")

    def start(*, routes, extra_args=(), **kwargs):
        proxy = proxyd_process(routes=routes, extra_args=["--listen-tls", f"127.0.0.1:{free_port}",
                                                         "--tls-cert", str(server.cert),
                                                         "--tls-key", str(server.key), *extra_args], **kwargs)
        proxy.tls_url = lambda path: f"rtsps://127.0.0.1:{free_port}/{path.lstrip('/')}"
        proxy.tls_port = free_port
        return proxy
    return start


def test_ffmpeg_plays_rtsps_relay(gst_origin, rtsps_proxy, peer_players, test_clips, test_ca):
    proxy = rtsps_proxy(routes={"/vod": gst_origin.url("/")})
    # ffmpeg 5.1's RTSP client cannot be given TLS options (it does not check certificates):
    # test_tls_listener_certificate_and_versions checks what proxyd presents.
    played = peer_players.ffmpeg_play(proxy.tls_url("/vod/clip"), transport="tcp")
    assert played.ok, played.describe()
    assert played.video_frames >= 0.95 * test_clips.main.spec.video_frames, played.describe()


@pytest.fixture
def tls_origin(gst_origin_factory, test_clips, test_ca):
    """A GStreamer origin speaking rtsps:// only, its certificate from the test CA (for 127.0.0.1)."""
    issued = test_ca.issue("origin")
    return gst_origin_factory(vod={"clip": test_clips.main.path}, live="live", live_options=LIVE,
                              tls=(issued.cert, issued.key))


def test_rtsps_origin_verified_with_the_ca_file(tls_origin, proxyd_process, peer_players, test_clips,
                                                test_ca):
    assert tls_origin.url("/").startswith("rtsps://")
    proxy = proxyd_process(routes={"/vod": tls_origin.url("/")},
                           extra_args=["--origin-ca-file", str(test_ca.cert)])
    played = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="udp")
    assert played.ok, played.describe()
    assert played.video_frames >= 0.95 * test_clips.main.spec.video_frames, played.describe()


def test_rtsps_origin_with_an_unknown_certificate_is_a_bad_gateway(tls_origin, proxyd_process, peer_players,
                                                                   test_ca):
    other_ca = TestCa(test_ca.directory / "other")
    proxy = proxyd_process(routes={"/vod": tls_origin.url("/")},
                           extra_args=["--origin-ca-file", str(other_ca.cert)])
    played = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp")
    assert not played.ok and "502" in played.stderr_tail, played.describe()
    wait_for_log(proxy.log_path, r"TLS with 127\.0\.0\.1:\d+ failed: CERTIFICATE_VERIFY_FAILED")
    assert tls_origin.session_count("/clip") == 0

    unchecked = proxyd_process(routes={"/vod": tls_origin.url("/")}, extra_args=["--origin-tls-no-verify"])
    played = peer_players.ffmpeg_play(unchecked.url("/vod/clip"), transport="tcp")
    assert played.ok, played.describe()
