"""[MS-WMSP] 2.2.5 remote events (SendEvent bodies, [MS-RTSP] 2.2.7.11) and the subscription filter."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyd.wm.cache_control import parse_cache_control
from proxyd.wm.remote_event import (
    REMOTE_CLOSE,
    REMOTE_LOG,
    REMOTE_OPEN,
    build_remote_event,
    may_forward,
    parse_remote_event,
    parse_subscription,
    rebuild_with_log,
)
from proxyd.wm.wmlog import parse_log
from proxyd.wm.wmlog_forward import ProxyIdentity, rendering_log_for_upstream
from tests.proxyd.wm._fixtures import fixture_bytes

RENDERING = fixture_bytes("wmlog_3_4_rendering_xml.xml").decode()
UA = "WMPlayer/10.0.0.3802 guid/3300AD50-2C39-46C0-AE0A-3E0B6EFB86DC"
GUID = "{3300AD50-2C39-46C0-AE0A-3E0B6EFB86DC}"


def remote_log(log=RENDERING, url="rtsp://proxy/vod/content.wmv"):
    return build_remote_event(REMOTE_LOG, user_agent=UA, user_guid=GUID, url=url, rendering_log=log)


def test_open_and_close_have_no_descriptions():
    assert build_remote_event(REMOTE_OPEN) == b"1\r\n1,28,0\r\n"
    assert build_remote_event(REMOTE_CLOSE, reason=0x80070005) == b"1\r\n1,29,2147942405\r\n"
    event = parse_remote_event(b"1\r\n1,29,0\r\n")
    assert (event.name, event.descriptions, event.errors) == ("remote-close", (), [])


def test_remote_log_layout():
    body = remote_log()
    lines = body.split(b"\r\n")
    assert lines[:2] == [b"1", b"1,30,0"]
    assert lines[2] == (b"12,context-type,3,1,2,14,WMS_USER_AGENT,31,%d,%s,13,WMS_USER_GUID,31,38,%s"
                        % (len(UA), UA.encode(), GUID.encode()))
    assert lines[3].startswith(b"12,context-type,3,1,5,24,@WMS_COMMAND_CONTEXT_URL,31,28,rtsp://proxy/vod/content.wmv,"
                               b"12,@.REMOTE_LOG,31,%d,<XML>" % len(RENDERING.encode()))
    assert body.endswith(b"</XML>\n\r\n")


def test_round_trip_keeps_commas_and_line_breaks_in_values():
    event = parse_remote_event(remote_log())
    assert (event.event_type, event.errors) == (REMOTE_LOG, [])
    assert event.remote_log == RENDERING
    assert event.value("WMS_USER_GUID") == GUID
    assert [len(d) for d in event.descriptions] == [3, 3]


def test_lengths_are_utf8_bytes():
    log = "<XML><Summary>é,ü</Summary></XML>"
    body = remote_log(log=log, url="rtsp://h/caf\u00e9")
    assert b"31,%d,<XML>" % len(log.encode()) in body
    event = parse_remote_event(body)
    assert event.remote_log == log and event.value("@WMS_COMMAND_CONTEXT_URL") == "rtsp://h/café"


def test_wrong_length_is_recovered_to_the_end_of_the_xml():
    good = remote_log()
    declared = b"12,@.REMOTE_LOG,31,%d," % len(RENDERING.encode())
    bad = good.replace(declared, b"12,@.REMOTE_LOG,31,%d," % (len(RENDERING) - 40))
    event = parse_remote_event(bad)
    assert event.remote_log == RENDERING.rstrip("\n")
    assert any("does not end at a separator" in e for e in event.errors)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "unreadable"),
        (b"2\r\n1,30,0\r\n", "EncodingFormat"),
        (b"1\r\n1,31,0\r\n", "unknown EventType"),
        (b"1\r\n1,30,0\r\n", "expected 2"),
        (b"1\r\n1,28,0\r\n12,context-type,3,1,2\r\n", "other than remote-log"),
    ],
)
def test_malformed_bodies_are_reported(body, fragment):
    assert any(fragment in e for e in parse_remote_event(body).errors)


def test_builder_is_strict():
    with pytest.raises(ValueError):
        build_remote_event(31)
    with pytest.raises(ValueError):
        build_remote_event(REMOTE_OPEN, reason=-1)


def test_subscription_filter():  # 2.2.6.2.10, 2.2.7.11; checklist 39-41
    only_log = parse_cache_control('no-cache, x-wms-event-subscription="remote-log"').event_subscription
    assert may_forward(REMOTE_LOG, only_log)
    assert not may_forward(REMOTE_OPEN, only_log) and not may_forward(REMOTE_CLOSE, only_log)
    assert not may_forward(REMOTE_LOG, None)  # no subscription: nothing goes upstream
    everything = parse_cache_control('x-wms-event-subscription="remote-log,remote-open,remote-close"')
    assert parse_subscription(everything.event_subscription) == {28, 29, 30}
    assert not may_forward(None, everything.event_subscription)


def test_forwarding_a_players_remote_log_rewrites_the_embedded_log():  # checklist 39
    incoming = parse_remote_event(remote_log(url="rtsp://proxy/vod/content.wmv"))
    proxy = ProxyIdentity("WMCacheProxy/0.1.0.0", "198.51.100.1", "proxy.example", 5, 3)
    rewritten = rendering_log_for_upstream(parse_log(incoming.remote_log), player_ip="192.0.2.7", proxy=proxy)
    body = rebuild_with_log(incoming, rewritten, url="rtsp://origin/content.wmv")
    out = parse_remote_event(body)
    assert out.errors == [] and out.value("@WMS_COMMAND_CONTEXT_URL") == "rtsp://origin/content.wmv"
    log = parse_log(out.remote_log)
    assert (log.fields["c-ip"], log.fields["s-proxied"], log.fields["s-ip"]) == ("192.0.2.7", "1", "198.51.100.1")
    assert out.value("WMS_USER_AGENT") == UA


@settings(max_examples=300)
@given(st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"1", b"\r\n", b",", b"30", b"12", b"context-type", b"<XML>", b"</XML>",
                              b"9999999999", b"3", b"31"]), max_size=30).map(b"".join),
))
def test_parse_never_raises(body):
    event = parse_remote_event(body)
    assert event.event_type is None or isinstance(event.event_type, int)


@given(st.text(max_size=200), st.text(max_size=40), st.text(max_size=40))
def test_build_parse_round_trip(log, ua, url):
    event = parse_remote_event(build_remote_event(REMOTE_LOG, user_agent=ua, user_guid=GUID, url=url, rendering_log=log))
    assert event.errors == []
    assert (event.remote_log, event.value("WMS_USER_AGENT"), event.value("@WMS_COMMAND_CONTEXT_URL")) == (log, ua, url)
