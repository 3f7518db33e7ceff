"""Request classification ([MS-RTSP] 2.2.6.3, 2.2.7; checklist 1-4) and response rules (3.2.5.2)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxyd.wm.classify import (
    RequestKind,
    classify_request,
    media_type,
    response_carries_supported,
    response_has_no_body,
)
from tests.proxyd.wm._fixtures import fixture_bytes, split_message

K = RequestKind


@pytest.mark.parametrize(
    ("method", "ctype", "body", "stream", "kind"),
    [
        ("SET_PARAMETER", "application/x-wms-Logplaystats;charset=UTF-8", True, False, K.LOG_PLAY),
        ("SET_PARAMETER", "APPLICATION/X-WMS-LOGPLAYSTATS", True, False, K.LOG_PLAY),
        ("SET_PARAMETER", "application/x-wms-logplaystats ; charset=utf-8", True, False, K.LOG_PLAY),
        ("SET_PARAMETER", "application/x-wms-Logconnectstats;charset=UTF-8", True, False, K.LOG_CONNECT),
        ("SET_PARAMETER", "application/x-wms-sendevent", True, False, K.SEND_EVENT),
        ("SET_PARAMETER", "application/x-wms-streamswitch", True, True, K.SELECT_STREAM),
        ("SET_PARAMETER", "application/x-rtsp-udp-packetpair", True, False, K.UDP_PACKET_PAIR),
        ("SET_PARAMETER", "application/x-wms-extension-cmd", True, False, K.END_OF_STREAM),
        ("SET_PARAMETER", "text/parameters", True, False, K.PLAIN_PARAMETER),
        ("SET_PARAMETER", None, False, False, K.KEEP_ALIVE),
        ("GET_PARAMETER", "application/x-wms-getcontentinfo", True, False, K.GET_CONTENT_INFO),
        ("GET_PARAMETER", "application/x-rtsp-packetpair", False, False, K.TCP_PACKET_PAIR),
        ("GET_PARAMETER", None, False, False, K.KEEP_ALIVE),
        ("GET_PARAMETER", None, True, False, K.PLAIN_PARAMETER),
        ("GET_PARAMETER", "text/parameters", True, False, K.PLAIN_PARAMETER),
        ("GET_PARAMETER", "application/x-wms-Logplaystats", True, False, K.PLAIN_PARAMETER),
        ("SETUP", None, False, True, K.SELECT_STREAM),
        ("TEARDOWN", None, False, True, K.SELECT_STREAM),  # checklist 4: stream URL
        ("TEARDOWN", None, False, False, K.TEARDOWN),  # checklist 4: aggregate URL
        ("describe", None, False, False, K.DESCRIBE),
        ("ANNOUNCE", "application/sdp", True, False, K.ANNOUNCE),
        ("PLAY", None, False, False, K.PLAY),
        ("PAUSE", None, False, False, K.PAUSE),
        ("OPTIONS", None, False, False, K.OPTIONS),
        ("RECORD", None, False, False, K.UNKNOWN),
    ],
)
def test_classification(method, ctype, body, stream, kind):
    assert classify_request(method, ctype, body, stream_url=stream) is kind


def test_spec_getcontentinfo_example_is_gci():  # checklist 1, 2.2.7.4
    start, headers, body = split_message(fixture_bytes("rtsp_2_2_7_4_getcontentinfo.rtsp"))
    ctype = dict((n.lower(), v) for n, v in headers)["content-type"]
    assert classify_request(start.split()[0], ctype, bool(body)) is K.GET_CONTENT_INFO
    assert body == b"\x00"


def test_spec_endofstream_example():
    start, headers, body = split_message(fixture_bytes("rtsp_2_2_7_3_endofstream.rtsp"))
    ctype = dict((n.lower(), v) for n, v in headers)["content-type"]
    assert classify_request(start.split()[0], ctype, bool(body)) is K.END_OF_STREAM


def test_response_rules():  # 3.2.5.2 and 2.2.7.x
    assert not response_carries_supported(K.GET_CONTENT_INFO)
    assert not response_carries_supported(K.SEND_EVENT)
    assert response_carries_supported(K.DESCRIBE)
    assert response_has_no_body(K.LOG_PLAY) and response_has_no_body(K.SEND_EVENT)
    assert not response_has_no_body(K.DESCRIBE)


def test_media_type():
    assert media_type(" Application/X-WMS-SendEvent ; charset=UTF-8") == "application/x-wms-sendevent"
    assert media_type(None) == media_type("") == ""


@given(st.text(max_size=20), st.one_of(st.none(), st.text(max_size=60)), st.booleans(), st.booleans())
def test_classification_is_total(method, ctype, body, stream):
    assert isinstance(classify_request(method, ctype, body, stream_url=stream), RequestKind)
