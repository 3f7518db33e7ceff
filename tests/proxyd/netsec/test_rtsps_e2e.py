"""RTSPS with real peers: ffmpeg plays rtsps:// through proxyd's TLS listener (relay, cache hit,
split); a player asking UDP media over TLS; certificate reload on SIGHUP."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import warnings

import pytest

from tests.peers.proxyd_proc import REPO_ROOT
from tests.peers.tls import TestCa
from tests.proxyd.runtime.rawplayer import RawPlayer
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


def test_rtsps_cache_hit_with_the_origin_stopped(gst_origin, rtsps_proxy, peer_players, test_clips, tmp_path):
    proxy = rtsps_proxy(routes={"/vod": gst_origin.url("/")}, cache_dir=tmp_path / "cache",
                        extra_args=["--cache-ttl", "300", "--log-level", "DEBUG"])
    first = peer_players.ffmpeg_play(proxy.tls_url("/vod/clip"), transport="tcp")
    assert first.ok, first.describe()
    wait_for_log(proxy.log_path, COMMITTED)
    gst_origin.stop()
    second = peer_players.ffmpeg_play(proxy.tls_url("/vod/clip"), transport="tcp")
    assert second.ok, second.describe()
    assert second.video_frames >= 0.95 * test_clips.main.spec.video_frames, second.describe()
    assert second.first_video_crcs[:3] == first.first_video_crcs[:3]


def test_rtsps_and_plain_players_share_one_split(gst_origin_factory, rtsps_proxy, peer_players):
    from concurrent.futures import ThreadPoolExecutor

    origin = gst_origin_factory(live="live", live_options=LIVE)
    proxy = rtsps_proxy(routes={"/tv": origin.url("/")}, extra_args=["--live", "/tv"])
    # the direct player: what a busy machine's players receive in the same 3 s of video
    urls = [proxy.tls_url("/tv/live"), proxy.tls_url("/tv/live"), proxy.url("/tv/live"), origin.url("/live")]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda url: peer_players.ffmpeg_play(url, transport="tcp", video_span=3,
                                                                     decode=False, timeout=40), urls))
    baseline = results[-1].video_frames
    for r in results:  # stopped by SIGINT once 3 s of video arrived
        assert r.returncode in (0, 255) and not r.timed_out, r.describe()
        assert r.video_frames >= 0.9 * baseline, r.describe() + f"\ndirect: {baseline}"
    assert origin.session_count("/live") == 2  # proxyd's one, the direct player's


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


def client_context(ca: TestCa) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert))


def tls11_client(ca: TestCa) -> ssl.SSLContext:
    """A client that can only speak TLS 1.0/1.1 (it succeeds against a server that allows them)."""
    context = client_context(ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version, context.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def test_udp_setup_over_tls_gets_461_and_tcp_in_the_same_request_is_chosen(gst_origin, rtsps_proxy, test_ca):
    proxy = rtsps_proxy(routes={"/vod": gst_origin.url("/")})

    async def scenario():
        player = await RawPlayer.connect("127.0.0.1", proxy.tls_port, ssl=client_context(test_ca))
        try:
            url = proxy.tls_url("/vod/clip")
            desc = await player.request("DESCRIBE", url, ("Accept", "application/sdp"))
            assert desc.status == 200, desc
            # URLs handed back keep the scheme the player used
            assert desc.headers.get("Content-Base").startswith(f"rtsps://127.0.0.1:{proxy.tls_port}/vod/clip")
            stream = url + "/stream=0"
            udp_only = "RTP/AVP;unicast;client_port=5000-5001"
            udp = await player.request("SETUP", stream, ("Transport", udp_only))
            udp_or_tcp = udp_only + ",RTP/AVP/TCP;unicast;interleaved=0-1"
            both = await player.request("SETUP", stream, ("Transport", udp_or_tcp))
            return udp, both
        finally:
            await player.close()

    udp, both = asyncio.run(scenario())
    assert udp.status == 461, udp
    assert both.status == 200 and "RTP/AVP/TCP" in both.headers.get("Transport"), both
    wait_for_log(proxy.log_path, r"461 .*over TLS \(TCP only\)")


def test_tls_allow_udp_lets_a_tls_player_take_udp(gst_origin, rtsps_proxy, test_ca):
    proxy = rtsps_proxy(routes={"/vod": gst_origin.url("/")}, extra_args=["--tls-allow-udp"])

    async def scenario():
        player = await RawPlayer.connect("127.0.0.1", proxy.tls_port, ssl=client_context(test_ca))
        try:
            url = proxy.tls_url("/vod/clip")
            assert (await player.request("DESCRIBE", url, ("Accept", "application/sdp"))).status == 200
            return await player.request("SETUP", url + "/stream=0",
                                        ("Transport", "RTP/AVP;unicast;client_port=5000-5001"))
        finally:
            await player.close()

    resp = asyncio.run(scenario())
    assert resp.status == 200 and "client_port=5000-5001" in resp.headers.get("Transport"), resp


def test_tls_listener_certificate_and_versions(gst_origin, rtsps_proxy, test_ca):
    proxy = rtsps_proxy(routes={"/vod": gst_origin.url("/")})
    with socket.create_connection(("127.0.0.1", proxy.tls_port)) as raw:
        with client_context(test_ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            assert tls.recv(4096).startswith(b"RTSP/1.0 200 OK")
    with socket.create_connection(("127.0.0.1", proxy.tls_port)) as raw:
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|UNEXPECTED_EOF"):  # the server refuses
            tls11_client(test_ca).wrap_socket(raw, server_hostname="127.0.0.1")


def test_plain_rtsp_and_stalled_handshakes_on_the_tls_port_are_dropped_quietly(gst_origin, rtsps_proxy,
                                                                                test_ca):
    proxy = rtsps_proxy(routes={"/vod": gst_origin.url("/")}, extra_args=["--request-timeout", "1"])
    with socket.create_connection(("127.0.0.1", proxy.tls_port), timeout=10) as plain:
        plain.sendall(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        assert not plain.recv(4096).startswith(b"RTSP/1.0")  # a TLS alert or a close, never an answer
    with socket.create_connection(("127.0.0.1", proxy.tls_port), timeout=10) as stalled:
        assert stalled.recv(4096) == b""  # closed at --request-timeout without a ClientHello
    with socket.create_connection(("127.0.0.1", proxy.tls_port)) as raw:  # still serving
        with client_context(test_ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            assert tls.recv(4096).startswith(b"RTSP/1.0 200 OK")
    assert "Traceback" not in proxy.log_path.read_text()


def peer_certificate_name(port: int, ca: TestCa) -> str:
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with client_context(ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            subject = dict(item[0] for item in tls.getpeercert()["subject"])
    return subject["commonName"]


def test_sighup_reloads_the_certificate_and_a_bad_one_keeps_the_old(gst_origin, proxyd_process, test_ca,
                                                                    free_port, tmp_path):
    first = test_ca.issue("first")
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    cert.write_bytes(first.cert.read_bytes())
    key.write_bytes(first.key.read_bytes())
    proxy = proxyd_process(routes={"/vod": gst_origin.url("/")},
                           extra_args=["--listen-tls", f"127.0.0.1:{free_port}", "--tls-cert", str(cert),
                                       "--tls-key", str(key)])
    assert peer_certificate_name(free_port, test_ca) == "first"

    second = test_ca.issue("second")
    cert.write_bytes(second.cert.read_bytes())
    key.write_bytes(second.key.read_bytes())
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for_log(proxy.log_path, "TLS certificate reloaded")
    assert peer_certificate_name(free_port, test_ca) == "second"

    key.write_bytes(first.key.read_bytes())  # does not match the certificate
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for_log(proxy.log_path, "TLS certificate not reloaded, the previous one stays in use")
    assert peer_certificate_name(free_port, test_ca) == "second"


def test_unreadable_certificate_stops_the_start_with_one_line(tmp_path, free_port):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "proxyd", "--listen", "127.0.0.1:0", "--listen-tls",
                           f"127.0.0.1:{free_port}", "--tls-cert", str(tmp_path / "missing.crt"), "--tls-key",
                           str(tmp_path / "missing.key")], capture_output=True, text=True, timeout=30,
                          cwd=REPO_ROOT)
    assert done.returncode == 2, done
    assert "configuration error: cannot read" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_split_of_an_rtsps_origin_reconnects_over_tls_after_an_origin_restart(tls_origin, proxyd_process,
                                                                               peer_players, test_ca):
    from concurrent.futures import ThreadPoolExecutor

    proxy = proxyd_process(routes={"/tv": tls_origin.url("/")},
                           extra_args=["--live", "/tv", "--origin-ca-file", str(test_ca.cert)])
    with ThreadPoolExecutor(1) as pool:
        play = pool.submit(peer_players.ffmpeg_play, proxy.url("/tv/live"), transport="tcp", duration=14,
                           decode=False, timeout=60)
        wait_for_log(proxy.log_path, "joins split")  # playing, not still setting up
        mark = tls_origin.mark()
        tls_origin.restart()
        # the hub's reconnect is a TLS connection again: a new origin session at the restarted origin
        tls_origin.wait_for(lambda e: e["event"] == "session-created", 20, after=mark)
        result = play.result()
    assert result.ok, result.describe()


def test_one_shot_client_speaks_tls_to_an_rtsps_origin(tls_origin):
    """The control plane's probes, revalidations and SendEvents (proxyd.rtsp.oneshot) reach rtsps origins."""
    from proxyd.rtsp.oneshot import RtspConnectError, rtsp_request

    assert rtsp_request(tls_origin.url("/clip"), "OPTIONS", tls_verify=False).status == 200
    with pytest.raises(RtspConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the test CA is not trusted
        rtsp_request(tls_origin.url("/clip"), "OPTIONS")
