"""Reverse routes (longest prefix), forward allow-list (never an open relay), URL rewriting."""

import pytest

from proxyd.app.cli import config_from_args
from proxyd.routing import Router, RoutingError, rewrite_rtp_info, rewrite_sdp_controls

LOCAL = ("127.0.0.1", 8554)


@pytest.fixture
def router():
    return Router(config_from_args([
        "--route", "/vod=rtsp://origin.example:8600/media", "--route", "/vod/hd=rtsp://hd.example:9000",
        "--allow-origin", "cam.example:554"], env={}))


def test_reverse_route_maps_rest_of_path(router):
    t = router.resolve("rtsp://127.0.0.1:8554/vod/movies/a.mp4/trackID=1", *LOCAL)
    assert t.origin_url == "rtsp://origin.example:8600/media/movies/a.mp4/trackID=1"
    assert (t.origin_host, t.origin_port, t.forward) == ("origin.example", 8600, False)


def test_longest_prefix_wins_on_segment_boundary(router):
    assert router.resolve("rtsp://127.0.0.1:8554/vod/hd/x", *LOCAL).origin_url == "rtsp://hd.example:9000/x"
    hdx = router.resolve("rtsp://127.0.0.1:8554/vod/hdx", *LOCAL)
    assert hdx.origin_url == "rtsp://origin.example:8600/media/hdx"
    with pytest.raises(RoutingError) as err:
        router.resolve("rtsp://127.0.0.1:8554/video", *LOCAL)
    assert err.value.status == 404


def test_query_is_kept(router):
    assert router.resolve("rtsp://127.0.0.1:8554/vod/a?x=1", *LOCAL).origin_url == \
        "rtsp://origin.example:8600/media/a?x=1"


def test_paths_are_matched_in_normal_form(router):
    """proxyd.rtsp.uri.normalize_path: escapes of unreserved characters and dot segments."""
    assert router.resolve("rtsp://127.0.0.1:8554/%76od/a%2emp4", *LOCAL).origin_url == \
        "rtsp://origin.example:8600/media/a.mp4"
    for escape in ("/vod/../etc/passwd", "/vod/%2e%2e/etc/passwd"):  # no way out of the route's base
        with pytest.raises(RoutingError) as err:
            router.resolve(f"rtsp://127.0.0.1:8554{escape}", *LOCAL)
        assert err.value.status == 404
    t = router.resolve("rtsp://127.0.0.1:8554/vod/hd/../x", *LOCAL)
    assert t.origin_url == "rtsp://origin.example:8600/media/x"
    assert t.to_player("rtsp://origin.example:8600/media/x/track1") == "rtsp://127.0.0.1:8554/vod/x/track1"
    # an origin on the default port answering without it is still below the route's base
    camera = Router(config_from_args(["--route", "/cam=rtsp://cam.example:554/live"], env={}))
    t = camera.resolve("rtsp://127.0.0.1:8554/cam", *LOCAL)
    assert t.to_player("rtsp://CAM.example/live/track1") == "rtsp://127.0.0.1:8554/cam/track1"


def test_forward_proxy_only_for_allowed_origins(router):
    t = router.resolve("rtsp://CAM.example/stream1", *LOCAL)
    assert (t.forward, t.origin_url, t.origin_port) == (True, "rtsp://cam.example:554/stream1", 554)
    assert t.to_player("rtsp://cam.example:554/stream1/track1") == "rtsp://cam.example:554/stream1/track1"
    for uri in ("rtsp://evil.example:554/x", "rtsp://cam.example:8554/x", "rtsp://10.1.1.1/vod/a"):
        with pytest.raises(RoutingError) as err:
            router.resolve(uri, *LOCAL)
        assert err.value.status == 403


def test_not_an_rtsp_url_is_400(router):
    for uri in ("*", "/vod/a", "http://127.0.0.1:8554/vod/a", "rtsp://user:pw@127.0.0.1:8554/vod/a"):
        with pytest.raises(RoutingError) as err:
            router.resolve(uri, *LOCAL)
        assert err.value.status == 400


def test_rewrite_both_directions(router):
    t = router.resolve("rtsp://127.0.0.1:8554/vod/clip", *LOCAL)
    assert t.to_player("rtsp://origin.example:8600/media/clip/") == "rtsp://127.0.0.1:8554/vod/clip/"
    assert t.to_origin("rtsp://127.0.0.1:8554/vod/clip/stream=1") == \
        "rtsp://origin.example:8600/media/clip/stream=1"
    assert t.to_player("rtsp://elsewhere.example/clip") == "rtsp://elsewhere.example/clip"
    assert t.to_player("rtsp://origin.example:8600/mediaX") == "rtsp://origin.example:8600/mediaX"


def test_rtp_info_and_sdp_rewrite(router):
    t = router.resolve("rtsp://127.0.0.1:8554/vod/clip", *LOCAL)
    info = ("url=rtsp://origin.example:8600/media/clip/stream=0;seq=1;rtptime=2, "
            "url=rtsp://origin.example:8600/media/clip/stream=1;seq=5")
    assert rewrite_rtp_info(info, t.to_player) == (
        "url=rtsp://127.0.0.1:8554/vod/clip/stream=0;seq=1;rtptime=2,"
        "url=rtsp://127.0.0.1:8554/vod/clip/stream=1;seq=5")
    sdp = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=x\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\n"
           b"a=control:rtsp://origin.example:8600/media/clip/stream=0\r\nm=audio 0 RTP/AVP 97\r\n"
           b"a=control:stream=1\n")
    out = rewrite_sdp_controls(sdp, t.to_player)
    assert out == sdp.replace(b"rtsp://origin.example:8600/media/clip", b"rtsp://127.0.0.1:8554/vod/clip")


def test_forward_use_of_a_protected_routes_origin_needs_that_routes_credentials():
    """A protected route cannot be bypassed by naming its origin as a forward proxy."""
    import dataclasses

    from proxyd.config import Config, parse_route
    from proxyd.rtsp.player_auth import make_policy

    policy = make_policy("basic", "R", {"u": {"MD5": "0" * 32}})
    config = Config(routes=(dataclasses.replace(parse_route("/m=rtsp://origin.example:8600/members"),
                                                player_auth=policy),
                            parse_route("/o=rtsp://origin.example:8600/open")),
                    allow_origins=frozenset({("origin.example", 8600)}))
    router = Router(config)
    assert router.resolve("rtsp://127.0.0.1:8554/m/a", *LOCAL).player_auth is policy
    forward = router.resolve("rtsp://origin.example:8600/members/a", *LOCAL)
    assert forward.forward and forward.player_auth is policy
    assert router.resolve("rtsp://origin.example:8600/open/a", *LOCAL).player_auth is None
    assert router.resolve("rtsp://127.0.0.1:8554/o/a", *LOCAL).player_auth is None


def test_rtsps_routes_and_request_uris():
    router = Router(config_from_args(["--route", "/s=rtsps://secure.example/live",
                                      "--route", "/p=rtsp://[::1]:8600", "--allow-origin", "cam.example:322"],
                                     env={}))
    secure = router.resolve("rtsps://127.0.0.1:8322/s/ch1", "127.0.0.1", 8322)
    assert secure.origin_url == "rtsps://secure.example:322/live/ch1" and secure.origin_tls
    assert secure.transport == "tcp"  # media stays inside the origin's TLS connection by default
    player_url = secure.to_player("rtsps://secure.example:322/live/ch1/stream=0")
    assert player_url == "rtsps://127.0.0.1:8322/s/ch1/stream=0"
    plain = router.resolve("rtsps://127.0.0.1:8322/p/x", "127.0.0.1", 8322)  # a TLS player, a plain origin
    assert (plain.origin_url, plain.origin_tls, plain.transport) == ("rtsp://[::1]:8600/x", False, "")
    assert plain.to_player("rtsp://[::1]:8600/x/") == "rtsps://127.0.0.1:8322/p/x/"
    forward = router.resolve("rtsps://cam.example/live", "127.0.0.1", 8322)
    assert forward.forward and forward.origin_tls and forward.origin_url == "rtsps://cam.example:322/live"
