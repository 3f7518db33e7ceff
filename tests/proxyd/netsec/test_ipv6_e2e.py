"""IPv6 end to end on ::1: a GStreamer origin bound to ::1, proxyd listening on [::1] (and dual-stack
[::]), ffmpeg players over UDP and TCP; relay, cache hit and split."""

from __future__ import annotations

import pytest

from tests.proxyd.cache.helpers import wait_for_log
from tests.proxyd.split.conftest import LIVE

pytestmark = pytest.mark.peers

V6 = "::1"
COMMITTED = r"cache: committed rtsp://\[::1\]:\d+/clip "


@pytest.fixture
def v6_origin(gst_origin_factory, test_clips):
    return gst_origin_factory(host=V6, vod={"clip": test_clips.main.path}, live="live", live_options=LIVE)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_relay_over_ipv6(v6_origin, proxyd_process, peer_players, test_clips, transport):
    proxy = proxyd_process(host=V6, routes={"/vod": v6_origin.url("/")})
    played = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=transport)
    assert played.ok, played.describe()
    assert played.video_frames >= 0.95 * test_clips.main.spec.video_frames, played.describe()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_cache_hit_over_ipv6(v6_origin, proxyd_process, peer_players, test_clips, tmp_path, transport):
    proxy = proxyd_process(host=V6, routes={"/vod": v6_origin.url("/")}, cache_dir=tmp_path / "cache",
                           extra_args=["--cache-ttl", "300", "--log-level", "DEBUG"])
    first = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=transport)
    assert first.ok, first.describe()
    wait_for_log(proxy.log_path, COMMITTED)
    v6_origin.stop()
    second = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=transport)
    assert second.ok, second.describe()
    assert second.first_video_crcs[:3] == first.first_video_crcs[:3]


def test_split_over_ipv6_udp_and_tcp_players_share_one_origin_session(v6_origin, proxyd_process,
                                                                      peer_players):
    from concurrent.futures import ThreadPoolExecutor

    proxy = proxyd_process(host=V6, routes={"/tv": v6_origin.url("/")}, extra_args=["--live", "/tv"])
    mark = v6_origin.mark()
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda t: peer_players.ffmpeg_play(proxy.url("/tv/live"), transport=t,
                                                                   video_span=3, decode=False, timeout=40),
                                ["udp", "tcp", "udp"]))
    for r in results:  # stopped by SIGINT once 3 s of video arrived
        assert r.returncode in (0, 255) and not r.timed_out, r.describe()
        assert r.video_frames >= 0.9 * 3 * LIVE.fps, r.describe()
    assert v6_origin.session_count("/live", after=mark) == 1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dual_stack_listener_serves_ipv4_and_ipv6_players(v6_origin, proxyd_process, peer_players,
                                                          free_port, transport):
    proxy = proxyd_process(host="::", port=free_port, routes={"/vod": v6_origin.url("/")})
    for url in (f"rtsp://127.0.0.1:{free_port}/vod/clip", f"rtsp://[::1]:{free_port}/vod/clip"):
        played = peer_players.ffmpeg_play(url, transport=transport)
        assert played.ok, played.describe()


@pytest.fixture
def v4_origin(gst_origin_factory, test_clips):
    return gst_origin_factory(vod={"clip": test_clips.main.path}, live="live", live_options=LIVE)


def test_ipv6_udp_player_of_an_ipv4_origin_keeps_udp_media(v4_origin, proxyd_process, peer_players,
                                                           free_port):
    """The relay's port pair receives the origin's IPv4 media and sends to the player's IPv6 address."""
    proxy = proxyd_process(host="::", port=free_port, routes={"/vod": v4_origin.url("/")},
                           extra_args=["--origin-transport", "udp"])
    played = peer_players.ffmpeg_play(f"rtsp://[::1]:{free_port}/vod/clip", transport="udp")
    assert played.ok, played.describe()
    assert "TCP fallback" not in proxy.log_path.read_text()


def test_split_mixes_ipv4_and_ipv6_udp_players_whatever_the_origin_family(v4_origin, v6_origin,
                                                                          proxyd_process, peer_players,
                                                                          free_port):
    from concurrent.futures import ThreadPoolExecutor

    proxy = proxyd_process(host="::", port=free_port,
                           routes={"/v4": v4_origin.url("/"), "/v6": v6_origin.url("/")},
                           extra_args=["--live", "/v4", "--live", "/v6", "--origin-transport", "udp"])
    urls = [f"rtsp://{host}:{free_port}/{prefix}/live"
            for prefix in ("v4", "v6") for host in ("127.0.0.1", "[::1]")]
    direct = [v4_origin.url("/live"), v6_origin.url("/live")]  # the same load, for what a busy machine loses
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda url: peer_players.ffmpeg_play(url, transport="udp", video_span=3,
                                                                     decode=False, timeout=40),
                                urls + direct))
    baseline = min(r.video_frames for r in results[4:])
    for r in results:
        assert r.returncode in (0, 255) and not r.timed_out, r.describe()
        assert r.video_frames >= 0.9 * baseline, r.describe() + f"\ndirect: {baseline}"
    # one origin session each for proxyd and the direct player
    assert v4_origin.session_count("/live") == 2 and v6_origin.session_count("/live") == 2
    assert "TCP" not in proxy.log_path.read_text()
