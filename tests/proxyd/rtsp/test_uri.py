"""URL identity (RFC 3986 §6.2 normal form) and stream-control resolution (RFC 2326 C.1.1), over
the forms real servers send."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxyd.rtp.sdp import parse_sdp
from proxyd.rtsp.errors import HeaderParseError
from proxyd.rtsp.events import Headers
from proxyd.rtsp.uri import (
    content_base,
    is_within,
    join_control_url,
    normalize_path,
    same_resource,
    split_rtsp_url,
    url_key,
    url_prefix_key,
)


def test_split_rtsp_url() -> None:
    url = split_rtsp_url("rtsp://user:pw@[::1]:8554/vod/clip.wmv?x=1")
    assert (url.scheme, url.host, url.port, url.userinfo) == ("rtsp", "::1", 8554, "user:pw")
    assert url.path == "/vod/clip.wmv?x=1"
    assert split_rtsp_url("RTSP://Origin.Example").host == "origin.example"
    assert split_rtsp_url("RTSP://Origin.example").port == 554
    assert split_rtsp_url("rtsps://h/x").port == 322
    assert split_rtsp_url("rtsp://h").path == "/"
    assert split_rtsp_url("rtsp://h?q=1").path == "/?q=1"
    assert split_rtsp_url("rtsp://h:8554/x").origin == "rtsp://h:8554"
    assert split_rtsp_url("rtsp://[::1]/x").authority == "[::1]:554"
    for bad in ("http://h/", "rtsp://", "rtsp://h:99999/", "rtsp://h:0/", "rtsp://h:x/", "*", ""):
        with pytest.raises(HeaderParseError):
            split_rtsp_url(bad)


# (a, b): each pair names the same resource
SAME = [
    # servers on the default port omit it: Content-Base for a request to rtsp://host:554/clip.mkv
    ("rtsp://host:554/clip.mkv", "rtsp://host/clip.mkv/"),
    ("rtsp://host:554/clip.mkv/track1", "rtsp://host/clip.mkv/track1"),
    ("rtsps://host:322/clip", "rtsps://host/clip"),
    ("rtspu://host:554/clip", "rtspu://host/clip"),
    # scheme and host case
    ("RTSP://Camera.Example.COM/Live", "rtsp://camera.example.com/Live"),
    # empty path
    ("rtsp://h", "rtsp://h/"),
    ("rtsp://h:8554", "rtsp://h:8554/"),
    # trailing slash of a presentation or a control
    ("rtsp://h:8554/clip/", "rtsp://h:8554/clip"),
    ("rtsp://h:8554/clip/stream=0/", "rtsp://h:8554/clip/stream=0"),
    ("rtsp://h/clip/?token=1", "rtsp://h/clip?token=1"),
    # percent-encoding: unreserved characters decoded, hex case, raw characters lax servers send
    ("rtsp://h/%7Euser/clip%2emkv", "rtsp://h/~user/clip.mkv"),
    ("rtsp://h/a%2fb", "rtsp://h/a%2Fb"),
    ("rtsp://h/my%20clip.mkv", "rtsp://h/my clip.mkv"),
    ("rtsp://h/caf%c3%a9.mkv", "rtsp://h/café.mkv"),
    ("rtsp://h/clip?name=a%3ab", "rtsp://h/clip?name=a%3Ab"),
    # dot segments
    ("rtsp://h/vod/./a/../clip.mkv", "rtsp://h/vod/clip.mkv"),
    # IPv6 literals: case, zero compression, default port
    ("rtsp://[2001:DB8::1]:554/clip", "rtsp://[2001:db8:0:0:0:0:0:1]/clip"),
    ("rtsp://[::1]:8554/x", "rtsp://[0:0:0:0:0:0:0:1]:8554/x/"),
    # userinfo is a credential, never part of the identity
    ("rtsp://user:secret@h/clip", "rtsp://h/clip"),
    ("rtsp://a@h/clip", "rtsp://b:c@h:554/clip"),
    # fragments are never sent to a server
    ("rtsp://h/clip#t=10", "rtsp://h/clip"),
]

# (a, b): different resources
DIFFERENT = [
    ("rtsp://h:8554/clip", "rtsp://h/clip"),
    ("rtsp://h/clip", "rtsp://h/Clip"),  # paths are case-sensitive
    ("rtsp://h/clip", "rtsps://h/clip"),
    ("rtsps://h:554/clip", "rtsps://h/clip"),  # 554 is not rtsps' default
    ("rtsp://h/clip", "rtsp://h2/clip"),
    ("rtsp://h/clip?a=1", "rtsp://h/clip?a=2"),
    ("rtsp://h/clip?a=1", "rtsp://h/clip"),
    ("rtsp://h/a%2Fb", "rtsp://h/a/b"),  # an escaped "/" is data, not a separator
    ("rtsp://h/clip/track1", "rtsp://h/clip/track2"),
    ("rtsp://[::1]/x", "rtsp://127.0.0.1/x"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_resource(a: str, b: str) -> None:
    assert same_resource(a, b)
    assert url_key(a) == url_key(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_resources(a: str, b: str) -> None:
    assert not same_resource(a, b)


@pytest.mark.parametrize(("url", "key"), [
    ("RTSP://Host:554/clip.mkv/", "rtsp://host/clip.mkv"),
    ("rtsp://h", "rtsp://h/"),
    ("rtsp://u:p@H:8554/a/./b/../c/?x=%3a", "rtsp://h:8554/a/c?x=%3A"),
    ("rtsps://h:322/x", "rtsps://h/x"),
    ("rtsp://[0:0::1]:554/x", "rtsp://[::1]/x"),
    ("rtsp://[fe80::1%25eth0]:8554/x", "rtsp://[fe80::1%25eth0]:8554/x"),
    # not an rtsp URL: kept (stripped) so "*" and garbage still compare with themselves only
    ("*", "*"),
    (" not a url/ ", "not a url"),
])
def test_url_key_is_the_normal_form(url: str, key: str) -> None:
    assert url_key(url) == key
    assert url_key(key) == key  # idempotent


@pytest.mark.parametrize(("url", "presentation", "within"), [
    ("rtsp://host:554/clip.mkv/track1", "rtsp://host/clip.mkv/", True),
    ("rtsp://host/clip.mkv/track1", "rtsp://host:554/clip.mkv", True),
    ("rtsp://host/clip.mkv", "rtsp://host:554/clip.mkv/", True),
    ("rtsp://h:8554/clip/stream=0", "rtsp://h:8554/clip", True),
    ("rtsp://h/vod/clip.wmv/audio", "rtsp://h/vod", True),
    ("rtsp://h/anything", "rtsp://h", True),  # the server root
    ("rtsp://h/clip/track1", "rtsp://h/clip?token=1", True),  # controls resolve below the path
    ("rtsp://h/clip?token=1/track1", "rtsp://h/clip?token=1", True),  # live555 keeps the query
    ("rtsp://h/clip2/track1", "rtsp://h/clip", False),  # a segment boundary, not a string prefix
    ("rtsp://h:8554/clip/track1", "rtsp://h/clip", False),
    ("rtsp://h/other", "rtsp://h/clip", False),
    ("rtsp://h/clip", "rtsp://h/clip/track1", False),
])
def test_is_within(url: str, presentation: str, within: bool) -> None:
    assert is_within(url, presentation) is within


@pytest.mark.parametrize(("prefix", "key"), [
    ("rtsp://O:554/vod/", "rtsp://o/vod/"),  # the "/" boundary stays
    ("rtsp://o:554/vod", "rtsp://o/vod"),  # a string prefix: also rtsp://o/vodka
    ("rtsp://O:554", "rtsp://o"),  # no path: gains none
    ("rtsp://o:8554", "rtsp://o:8554"),
    ("rtsp://o/a%7e/", "rtsp://o/a~/"),
])
def test_url_prefix_key(prefix: str, key: str) -> None:
    assert url_prefix_key(prefix) == key


@pytest.mark.parametrize(("path", "normal"), [
    ("", "/"),
    ("/vod/clip/", "/vod/clip/"),  # trailing "/" kept: forwarded as the player wrote it
    ("/vod/../etc/passwd", "/etc/passwd"),  # dot segments cannot leave a route
    ("/%2e%2e/x", "/x"),
    ("/a/b/..", "/a/"),
    ("/%7euser/a%2fb?x=%3a/../", "/~user/a%2Fb?x=%3A/../"),  # the query is not a path
])
def test_normalize_path(path: str, normal: str) -> None:
    assert normalize_path(path) == normal


@pytest.mark.parametrize(("base", "control", "expected"), [
    ("rtsp://h:8554/test/", "stream=0", "rtsp://h:8554/test/stream=0"),
    ("rtsp://h:8554/test", "stream=0", "rtsp://h:8554/test/stream=0"),  # base without trailing slash
    ("rtsp://h/clip.wmv/", "audio", "rtsp://h/clip.wmv/audio"),
    ("rtsp://h/clip.wmv", "*", "rtsp://h/clip.wmv"),
    ("rtsp://h/clip.wmv", "", "rtsp://h/clip.wmv"),
    ("rtsp://h/clip.wmv", "rtsp://other/x/audio", "rtsp://other/x/audio"),
    ("rtsp://u@h:554/a/b", "/c/d", "rtsp://u@h:554/c/d"),
    ("rtsp://h/a?token=1", "trackID=2", "rtsp://h/a/trackID=2"),
])
def test_join_control_url(base: str, control: str, expected: str) -> None:
    assert join_control_url(base, control) == expected


def test_content_base_precedence() -> None:
    request_url = "rtsp://h/clip"
    assert content_base(Headers([("Content-Base", "rtsp://h/clip/"), ("Content-Location", "rtsp://h/x/")]),
                        request_url) == "rtsp://h/clip/"
    assert content_base(Headers([("Content-Location", "rtsp://h/x/")]), request_url) == "rtsp://h/x/"
    assert content_base(Headers([("Content-Base", "  ")]), request_url) == request_url
    assert content_base(Headers(), request_url) == request_url
    # a relative value resolves against the request URL (RFC 3986 §5.2)
    assert content_base(Headers([("Content-Location", "clip.mkv/")]), "rtsp://h/vod/clip.mkv") \
        == "rtsp://h/vod/clip.mkv/"


def sdp(session_control: str | None, *media_controls: str | None) -> bytes:
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=clip", "t=0 0"]
    if session_control is not None:
        lines.append(f"a=control:{session_control}")
    for i, control in enumerate(media_controls):
        lines += [f"m=video 0 RTP/AVP {96 + i}", f"a=rtpmap:{96 + i} H264/90000"]
        if control is not None:
            lines.append(f"a=control:{control}")
    return ("\r\n".join(lines) + "\r\n").encode()


# What real servers answer a DESCRIBE with, the request URL the player used, and the stream URLs
# a player (or the proxy) SETUPs: each must be the same resource as the URL the proxy keys it by.
SERVER_FORMS = [
    pytest.param("rtsp://h:8554/clip", [("Content-Base", "rtsp://h:8554/clip/")],
                 sdp(None, "stream=0", "stream=1"),
                 ["rtsp://h:8554/clip/stream=0", "rtsp://h:8554/clip/stream=1"], id="gst-rtsp-server"),
    pytest.param("rtsp://h/clip.mkv", [("Content-Base", "rtsp://h/clip.mkv/")], sdp("*", "track1", "track2"),
                 ["rtsp://h/clip.mkv/track1", "rtsp://h/clip.mkv/track2"], id="live555"),
    pytest.param("rtsp://h:554/clip.mkv", [("Content-Base", "rtsp://h/clip.mkv/")], sdp("*", "track1"),
                 ["rtsp://h:554/clip.mkv/track1"], id="default-port-omitted"),
    pytest.param("rtsp://h:1935/vod/mp4:clip.mp4", [("Content-Base", "rtsp://h:1935/vod/mp4:clip.mp4/")],
                 sdp("*", "trackID=1", "trackID=2"),
                 ["rtsp://h:1935/vod/mp4:clip.mp4/trackID=1", "rtsp://h:1935/vod/mp4:clip.mp4/trackID=2"],
                 id="wowza"),
    pytest.param("rtsp://h/sample.mov", [],
                 sdp("rtsp://h/sample.mov", "rtsp://h/sample.mov/trackID=3"),
                 ["rtsp://h:554/sample.mov/trackID=3"], id="darwin-absolute"),
    pytest.param("rtsp://h/file.wmv", [("Content-Base", "rtsp://h/file.wmv/")],
                 sdp("rtsp://h/file.wmv", "rtsp://h/file.wmv/audio", "rtsp://h/file.wmv/video"),
                 ["rtsp://h/file.wmv/audio", "rtsp://h/file.wmv/video"], id="ms-wms-absolute"),
    pytest.param("rtsp://h/file.wmv", [("Content-Base", "rtsp://h/file.wmv")], sdp("*", "audio"),
                 ["rtsp://h/file.wmv/audio"], id="base-without-trailing-slash"),
    pytest.param("rtsp://h/My%20Clip.mkv", [("Content-Base", "rtsp://h/My Clip.mkv/")], sdp(None, "track1"),
                 ["rtsp://h/My%20Clip.mkv/track1"], id="percent-encoded-path"),
    pytest.param("rtsp://h/live?token=abc", [("Content-Base", "rtsp://h/live?token=abc/")],
                 sdp("*", "track1"),
                 ["rtsp://h/live/track1"], id="query-string"),
    pytest.param("rtsp://c/Streaming/Channels/101",
                 [("Content-Base", "rtsp://c:554/Streaming/Channels/101/")],
                 sdp(None, "rtsp://c:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=P1"),
                 ["rtsp://c/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=P1"],
                 id="camera-absolute-control-with-query"),
    pytest.param("rtsp://cam/axis-media/media.amp?videocodec=h264",
                 [("Content-Base", "rtsp://cam/axis-media/media.amp/")],
                 sdp("*", "rtsp://cam/axis-media/media.amp/trackID=1?videocodec=h264"),
                 ["rtsp://CAM:554/axis-media/media.amp/trackID=1?videocodec=h264"], id="axis"),
    pytest.param("rtsp://[2001:DB8::1]:554/clip", [("Content-Base", "rtsp://[2001:db8:0:0::1]/clip/")],
                 sdp(None, "stream=0"), ["rtsp://[2001:db8::1]:554/clip/stream=0"], id="ipv6-origin"),
    pytest.param("rtsps://h/clip", [("Content-Base", "rtsps://h:322/clip/")], sdp(None, "track1"),
                 ["rtsps://h/clip/track1"], id="rtsps-default-port"),
    pytest.param("rtsp://h/clip", [("Content-Location", "rtsp://h/real/clip/")], sdp(None, "track1"),
                 ["rtsp://h/real/clip/track1"], id="content-location"),
    pytest.param("rtsp://h/clip", [], sdp(None, "track1"), ["rtsp://h/clip/track1"], id="request-url"),
]


@pytest.mark.parametrize(("request_url", "headers", "body", "setup_urls"), SERVER_FORMS)
def test_server_forms_resolve_to_the_urls_players_set_up(request_url, headers, body, setup_urls) -> None:
    parsed = parse_sdp(body)
    resolved = parsed.media_urls(content_base(Headers(headers), request_url))
    assert [url_key(u) for u in resolved] == [url_key(u) for u in setup_urls]
    for url in resolved:
        assert is_within(url, parsed.aggregate_url(content_base(Headers(headers), request_url)))


URLISH = st.text(alphabet=st.sampled_from("rtsp:/RTSP@[]:.%2eE7f?#=&~ abcé0123456554"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(URLISH, URLISH)
@example("0 /", "")  # a trailing "/" hid a space: the key was "0 ", whose key is "0"
def test_identity_never_raises_and_is_stable(a: str, b: str) -> None:
    key = url_key(a)
    assert url_key(key) == key  # the normal form is a fixed point
    assert same_resource(a, b) == same_resource(b, a)
    assert is_within(a, a)
    url_prefix_key(a), normalize_path("/" + a)  # noqa: B018 - must not raise


@pytest.mark.parametrize("header, request_url, expected", [
    # gst-rtsp-server writes rtsp:// in Content-Base over TLS: the same authority keeps rtsps
    ("rtsp://127.0.0.1:8322/live/", "rtsps://127.0.0.1:8322/live", "rtsps://127.0.0.1:8322/live/"),
    ("rtsp://[::1]:8322/live/", "rtsps://[0:0::1]:8322/live", "rtsps://[::1]:8322/live/"),
    # another port or host is another server: left alone
    ("rtsp://127.0.0.1:554/live/", "rtsps://127.0.0.1:8322/live", "rtsp://127.0.0.1:554/live/"),
    ("rtsp://other:8322/live/", "rtsps://origin:8322/live", "rtsp://other:8322/live/"),
    ("rtsp://h:8322/live/", "rtsp://h:8322/live", "rtsp://h:8322/live/"),
])
def test_content_base_keeps_tls_for_the_authority_reached_over_tls(header, request_url, expected):
    assert content_base(Headers([("Content-Base", header)]), request_url) == expected


def test_absolute_controls_keep_tls_for_the_base_authority():
    base = "rtsps://127.0.0.1:8322/live/"
    joined = join_control_url(base, "rtsp://127.0.0.1:8322/live/stream=0")
    assert joined == "rtsps://127.0.0.1:8322/live/stream=0"
    assert join_control_url(base, "rtsp://127.0.0.1:9000/x") == "rtsp://127.0.0.1:9000/x"
    assert join_control_url("rtsp://h/live/", "rtsp://h/live/stream=0") == "rtsp://h/live/stream=0"
