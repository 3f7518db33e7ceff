"""Broadcast detection and split permission (proxyd.split.detect)."""

from __future__ import annotations

import pytest

from proxyd.split.detect import decide_split, operator_live, path_under

LIVE_SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=type:broadcast\r\na=range:npt=now-\r\n"
            b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n")
VOD_SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=range:npt=0-12.5\r\n"
           b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n")
NO_RANGE_SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
WM_BROADCAST_CC = 'no-cache, x-wms-stream-type="broadcast", x-wms-proxy-split'


@pytest.mark.parametrize(("path", "prefix", "expected"), [
    ("/live", "/live", True), ("/live/cam1", "/live", True), ("/live?x=1", "/live/", True),
    ("/lively", "/live", False), ("/vod/live", "/live", False), ("/anything", "/", True),
])
def test_path_under_is_segment_aware(path, prefix, expected):
    assert path_under(path, prefix) is expected


def test_operator_live_matches_any_prefix():
    assert operator_live("/tv/ch1", ("/radio", "/tv"))
    assert not operator_live("/vod/clip", ("/radio", "/tv"))


def test_origin_broadcast_with_proxy_split_is_split():
    d = decide_split(200, WM_BROADCAST_CC, VOD_SDP, operator_says_live=False)
    assert (d.split, d.live, d.reason) == (True, True, "proxy-split")


def test_live_sdp_without_permission_is_not_split():
    d = decide_split(200, None, LIVE_SDP, operator_says_live=False)
    assert (d.split, d.live, d.reason) == (False, True, "not-permitted")


def test_sdp_without_duration_counts_as_live():
    assert decide_split(200, None, NO_RANGE_SDP, operator_says_live=False, policy="always").split


def test_operator_live_permits_split_of_a_silent_origin():
    d = decide_split(200, None, LIVE_SDP, operator_says_live=True)
    assert (d.split, d.reason) == (True, "operator-live")


def test_operator_live_overrides_a_duration_but_not_private():
    assert decide_split(200, None, VOD_SDP, operator_says_live=True).split
    d = decide_split(200, "private", LIVE_SDP, operator_says_live=True)
    assert (d.split, d.reason) == (False, "private")


def test_on_demand_content_is_never_split_even_with_policy_always():
    d = decide_split(200, "public, max-age=60", VOD_SDP, operator_says_live=False, policy="always")
    assert (d.split, d.live, d.reason) == (False, False, "on-demand")


@pytest.mark.parametrize("status", [401, 407])
def test_auth_challenge_is_never_split(status):
    d = decide_split(status, WM_BROADCAST_CC, LIVE_SDP, operator_says_live=True)
    assert (d.split, d.reason) == (False, "auth-challenged")


def test_policy_never_wins_over_everything():
    assert decide_split(200, WM_BROADCAST_CC, LIVE_SDP, operator_says_live=True, policy="never").reason == \
        "policy-never"


@pytest.mark.parametrize(("status", "body", "reason"), [
    (404, b"", "origin-error"), (200, b"not sdp", "no-sdp"), (200, b"v=0\r\ns=x\r\n", "no-media"),
])
def test_unusable_answers_are_not_split(status, body, reason):
    d = decide_split(status, WM_BROADCAST_CC, body, operator_says_live=True)
    assert (d.split, d.reason) == (False, reason)
