"""[MS-WMLOG] parsing of the spec's own samples (sections 3.1-3.6, MS-RTSP 4.5) and malformed input."""

from hypothesis import given, settings
from hypothesis import strategies as st

from proxyd.wm.wmlog import map_summary, parse_log, summary_tokens
from proxyd.wm.wmlog_fields import LOG_DATA44, LOG_DATA47, LOG_DATA52
from tests.proxyd.wm._fixtures import fixture_bytes


def parsed(name: str, **kwargs):
    return parse_log(fixture_bytes(name), **kwargs)


def test_field_orders():  # 2.2.1, 2.2.2
    assert len(LOG_DATA44) == 44 and len(LOG_DATA47) == 47 and len(LOG_DATA52) == 52
    assert LOG_DATA44.index("s-ip") == 40 and LOG_DATA52[-1] == "s-proxied"


def test_legacy_w3c_line_3_1():
    log = parsed("wmlog_3_1_legacy_w3c.txt")
    assert (log.log_type, log.form, log.summary_fields, log.errors) == ("legacy", "w3c", 44, [])
    assert log.fields["c-playerid"] == "{3300AD50-2C39-46c0-AE0A-B4C904C7848E}"
    assert log.fields["c-playerversion"] == "9.0.0.2980"
    assert log.fields["c-bytes"] == "6321233" and log.fields["c-buffercount"] == "1"
    assert log.fields["s-cpu-util"] == "-"


def test_legacy_xml_3_1():
    log = parsed("wmlog_3_1_legacy_xml.xml", hint="logplay")
    assert (log.log_type, log.summary_fields, log.errors) == ("legacy", 47, [])
    assert log.fields["c-ip"] == "0.0.0.0"
    assert log.fields["cs-User-Agent"] == "WMFSDK/9.0.0.2980_WMPlayer/9.0.0.3008"
    assert log.fields["audiocodec"] == "Windows_Media_Audio_9"
    assert log.fields["cs-url"] == "http://10.194.20.175/mcast1200K?WMBitrate=6000000"
    assert log.fields["cs-media-name"] == "30MinTV_1200k_1s_1s_0Q.wmv"  # summary only: no element
    assert log.content_description["WMS_CONTENT_DESCRIPTION_PLAYLIST_ENTRY_DURATION"] == "1800501"
    assert len(log.content_description) == 5


def test_web_server_forms_3_1_3_3_3_4():
    legacy = parsed("wmlog_3_1_legacy_web.txt")
    assert legacy.log_type == "legacy" and legacy.fields["s-ip"] == "172.29.237.102"
    # the GUID is wrapped over two lines in the sample
    assert legacy.fields["c-playerid"] == "{35301A88-93D3-4F3A-A284-30F7A611CD23}"
    streaming = parsed("wmlog_3_3_streaming_web.txt")
    assert streaming.summary_fields == 47 and streaming.fields["cs-url"] == "mmsu://server.example.com/testfile.wma"
    rendering = parsed("wmlog_3_4_rendering_web.txt")
    assert rendering.log_type == "rendering" and rendering.fields["protocol"] == "Cache"


def test_streaming_xml_3_3_with_damaged_summary():
    # The sample's summary wraps the GUID and the user agent and has "-0" for "- 0" (46 values).
    log = parsed("wmlog_3_3_streaming_xml.xml")
    assert log.log_type == "streaming"
    assert log.errors == ["summary has 46 fields, expected 44, 47 or 52"]
    assert log.fields["c-playerid"] == "{3300AD50-2C39-46c0-AE0A-3E0B6EFB86DC}"
    assert log.fields["cs-User-Agent"] == (
        "Mozilla/4.0_(compatible;_MSIE_6.0;_Windows_NT_5.1)_(WMFSDK/10.0.0.3802)_WMPlayer/10.0.0.4019"
    )
    assert log.fields["sc-bytes"] == "-" and log.fields["c-bytes"] == "0"  # elements win over "-0"
    # recovered from the summary tail although the line is one value short
    assert log.fields["cs-media-name"] == "-" and log.fields["cs-media-role"] == "-"


def test_rendering_xml_3_4():
    log = parsed("wmlog_3_4_rendering_xml.xml", hint="sendevent")
    assert (log.log_type, log.summary_fields, log.errors) == ("rendering", 52, [])
    assert log.fields["s-proxied"] == "0" and log.fields["protocol"] == "Cache"
    # element value wrapped over two lines in the sample
    assert log.fields["cs-User-Agent"].endswith(")_(WMFSDK/10.0.0.3802)_WMPlayer/10.0.0.4019")
    assert log.fields["c-max-bandwidth"] == "-"


def test_connect_time_logs_3_5_and_rtsp_4_5_1():
    log = parsed("wmlog_3_5_connect_xml.xml")
    assert log.log_type == "connect" and log.errors == []
    assert log.fields == {
        "c-dns": "-", "c-ip": "0.0.0.0", "c-os": "Windows", "c-osversion": "6.0.0.6000",
        "date": "2006-08-30", "time": "13:18:44", "c-cpu": "Pentium", "transport": "TCP",
    }
    rtsp = parsed("rtsp_4_5_1_logconnect_body.xml", hint="logconnect")
    assert rtsp.log_type == "connect"
    assert (rtsp.fields["c-os"], rtsp.fields["c-osversion"], rtsp.fields["date"]) == ("Windows_XP", "5.1.0.2600", "2002-07-30")


def test_malformed_logplay_sample_rtsp_4_5_2():
    log = parsed("rtsp_4_5_2_logplay_body.xml", hint="logplay")
    assert log.log_type == "legacy"
    assert log.fields["c-ip"] == "0.0.0.0"
    assert log.fields["c-playerversion"] == "9.0.0.2683"
    assert log.fields["c-playerid"] == "{3300AD50-2C39-46c0-AE0A-C4D98694D7B4}"
    assert log.fields["time"] == "23:31:24"  # from "<time:23:31:24</time>"
    assert log.fields["date"] == "2002-04-22"  # first occurrence; the stray "22</date>" is reported
    assert log.fields["transport"] == "UPD"  # kept as sent
    assert log.fields["cs-media-name"] == "mycontent.wmv"
    assert len(log.fields) == 47
    assert any("malformed tag <time" in e for e in log.errors)
    assert any("stray" in e for e in log.errors)


def test_abnf_typos_and_duplicated_tags():
    # WMLOG 2.4 ABNF closes c-playerid and cs-Referer with openers; note <8> duplicates c-channelURL.
    log = parsed("wmlog_2_4_abnf_typos.xml")
    assert log.errors == []
    assert log.fields["c-playerid"] == "{3300AD50-2C39-46c0-AE0A-B4C904C7848E}"
    assert log.fields["cs-Referer"] == "http://www.adventure-works.com/default.htm"
    assert log.fields["c-channelURL"] == "-" and log.fields["c-hostexe"] == "wmplayer.exe"


def test_vendor_namespace_3_2():
    log = parsed("wmlog_3_2_vendor_namespace.xml")
    assert log.vendor["VendorNameSpace"] == {"vendor-field1": "Value1", "vendor-field2": "Value2"}
    assert log.fields["time"] == "00:27:24"
    assert log.log_type == "unknown"  # the sample elides everything that says what was played


def test_web_post_example_3_6_keeps_the_bad_c_ip():
    log = parsed("wmlog_3_6_web_post.txt")
    assert log.fields["c-ip"] == ".0.0.0.0" and log.fields["s-ip"] == "239.192.50.29"
    assert log.fields["c-channelURL"] == "http://WebServer:8080/multicast.nsc"


def test_entities_and_case_insensitive_field_names():
    log = parse_log(b"<XML><Summary></Summary><CS-URL>rtsp://h/a?x=1&amp;y=2</CS-URL></XML>")
    assert log.fields["cs-url"] == "rtsp://h/a?x=1&y=2"


def test_empty_and_garbage():
    assert parse_log(b"").log_type == "unknown" and parse_log(b"").errors == ["empty body"]
    junk = parse_log(b"\xff\xfe<<<>>></")
    assert junk.log_type == "unknown" and junk.fields == {}


def test_size_limit():
    log = parse_log(b"<XML>" + b"<c-ip>1</c-ip>" * 100, max_bytes=64)
    assert log.errors[0].startswith("body longer than 64 bytes")
    many = parse_log(b"<a>x</a>" * 50, max_tags=10)
    assert any("more than 10 tags" in e for e in many.errors)


def test_summary_wrap_rules():
    assert summary_tokens("a {1-\n2}\nb") == ["a", "{1-2}", "b"]
    assert summary_tokens("x_(y)\n_z w") == ["x_(y)_z", "w"]
    assert summary_tokens("100\n_via_HTTP/1.0_X") == ["100", "_via_HTTP/1.0_X"]


def test_misaligned_summary_without_elements_keeps_the_head():
    errors: list[str] = []
    mapped = map_summary(["1.2.3.4", "2020-01-01"], {}, errors)
    assert mapped == {"c-ip": "1.2.3.4", "date": "2020-01-01"} and errors


xml_fragments = st.lists(
    st.one_of(
        st.sampled_from(["<XML>", "</XML>", "<Summary>", "</Summary>", "<c-ip>", "</c-ip>", "<time:",
                         "<ContentDescription>", "</ContentDescription>", "<X/>", "</", "<", ">", "&amp;",
                         "\r\n", " ", "-", "{", "_"]),
        st.text(max_size=12),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=400), xml_fragments))
def test_parse_never_raises(body):
    log = parse_log(body)
    assert log.log_type in {"legacy", "streaming", "rendering", "connect", "unknown"}
    assert all(isinstance(v, str) for v in log.fields.values())


w3c_values = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="<"),
                     min_size=1, max_size=8).filter(lambda v: not v.startswith("MX_STATS"))


@given(st.lists(w3c_values, min_size=52, max_size=52))
def test_full_rendering_line_maps_by_position(values):
    log = parse_log(" ".join(values))
    assert log.form == "w3c" and log.log_type == "rendering"
    assert [log.fields[name] for name in LOG_DATA52] == values
