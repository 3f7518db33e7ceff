"""Forwarding logs upstream: WMSP 3.2.5.11 actions, legacy -> rendering (WMLOG 2.7), proxy rewrites
(WMLOG 2.1.8, 2.1.34, 2.1.41-2.1.43, 2.1.45, 2.1.47) and the XML form (2.4)."""

from hypothesis import given
from hypothesis import strategies as st

from proxyd.wm.wmlog import parse_log
from proxyd.wm.wmlog_fields import LOG_DATA52, XML_ELEMENTS
from proxyd.wm.wmlog_forward import (
    ProxyIdentity,
    apply_proxy_rewrites,
    forwarding_action,
    rendering_log_for_upstream,
    serialize_xml_log,
    to_rendering_fields,
    w3c_value,
)
from tests.proxyd.wm._fixtures import fixture_bytes

PROXY = ProxyIdentity(product="WMCacheProxy/0.1.0.0", ip="198.51.100.1", dns="proxy.example",
                      cpu_util=37, total_clients=201)


def test_forwarding_actions():
    assert forwarding_action("rendering") == "forward"
    assert forwarding_action("legacy") == "convert"
    for kept in ("streaming", "connect", "unknown"):
        assert forwarding_action(kept) == "keep"


def test_streaming_log_is_not_forwarded():
    log = parse_log(fixture_bytes("wmlog_3_3_streaming_xml.xml"))
    assert rendering_log_for_upstream(log, player_ip="192.0.2.7", proxy=PROXY) is None


def test_legacy_to_rendering_conversion():
    legacy = parse_log(fixture_bytes("wmlog_3_1_legacy_xml.xml"))
    fields = to_rendering_fields(legacy)
    assert list(fields) == list(LOG_DATA52)
    # rendering-log fixed values (2.7.1)
    assert (fields["protocol"], fields["transport"], fields["c-quality"]) == ("Cache", "-", "100")
    assert fields["c-pkts-received"] == "-" and fields["avgbandwidth"] == "-"
    assert fields["s-proxied"] == "0"
    # playback fields survive
    assert fields["x-duration"] == "42" and fields["videocodec"] == "Windows_Media_Video_9"
    assert fields["cs-media-name"] == "30MinTV_1200k_1s_1s_0Q.wmv"


def test_required_rewrites():
    fields = apply_proxy_rewrites(
        to_rendering_fields(parse_log(fixture_bytes("wmlog_3_4_rendering_xml.xml"))),
        player_ip="192.0.2.7", proxy=PROXY,
    )
    assert fields["c-ip"] == "192.0.2.7"
    assert fields["cs-User-Agent"] == "_via_HTTP/1.0_WMCacheProxy/0.1.0.0"
    assert fields["s-proxied"] == "1"
    assert (fields["s-ip"], fields["s-dns"]) == ("198.51.100.1", "proxy.example")
    assert (fields["s-cpu-util"], fields["s-totalclients"]) == ("37", "201")
    assert fields["c-playerid"] == "{3300AD50-2C39-46c0-AE0A-3E0B6EFB86DC}"


def test_unknown_proxy_values_become_dashes_and_cpu_is_clamped():
    fields = apply_proxy_rewrites({}, player_ip="", proxy=ProxyIdentity("P/1", None, None, 250, None))
    assert (fields["c-ip"], fields["s-ip"], fields["s-dns"]) == ("-", "-", "-")
    assert (fields["s-cpu-util"], fields["s-totalclients"]) == ("100", "-")


def test_forwarded_log_round_trips_through_the_parser():
    legacy = parse_log(fixture_bytes("rtsp_4_5_2_logplay_body.xml"))
    xml = rendering_log_for_upstream(legacy, player_ip="2001:db8::7", proxy=PROXY)
    again = parse_log(xml)
    assert (again.log_type, again.errors, again.summary_fields) == ("rendering", [], 52)
    assert again.fields["c-ip"] == "2001:db8::7" and again.fields["s-proxied"] == "1"
    assert again.fields["cs-User-Agent"].startswith("_via_")
    assert again.fields["c-playerversion"] == "9.0.0.2683"


def test_xml_shape_follows_the_schema():
    xml = serialize_xml_log({"cs-url": "rtsp://h/a?b=1&c=2", "c-os": "Windows XP"},
                            content_description={"WMS_CONTENT_DESCRIPTION_ROLE": "Ad", "bad name": "x"})
    assert xml.startswith("<XML><Summary>") and xml.endswith("</ContentDescription></XML>")
    positions = [xml.index(f"<{name}>") for name in XML_ELEMENTS]
    assert positions == sorted(positions)
    assert "<cs-url>rtsp://h/a?b=1&amp;c=2</cs-url>" in xml
    assert "<c-os>Windows_XP</c-os>" in xml  # spaces become "_" (2.2)
    assert "<s-proxied>" not in xml and "bad name" not in xml


@given(st.dictionaries(st.sampled_from(LOG_DATA52), st.text(max_size=20), max_size=52))
def test_serialized_values_read_back(fields):
    again = parse_log(serialize_xml_log(fields))
    for name in LOG_DATA52:
        assert again.fields[name] == w3c_value(fields.get(name))
