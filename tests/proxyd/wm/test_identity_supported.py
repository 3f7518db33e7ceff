"""Supported negotiation ([MS-RTSP] 2.2.6.10) and upstream identity headers (3.1.5.1; checklist 9)."""

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from proxyd.wm import supported as sup
from proxyd.wm.identity import proxy_client_agent, upstream_identity_headers, user_agent, via_value, wm_version

GUID = uuid.UUID("3300ad50-2c39-46c0-ae0a-c4d98694d7b4")
# 2.2.6.12: client-token "/" major "." minor [SP client-guid]
USER_AGENT_DATA = re.compile(
    r"^(WMPlayer|WMServer|WMCacheProxy)/\d{1,2}\.\d{1,2}(\.\d{1,4}\.\d{1,4})?"
    r" guid/[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$"
)


class TestSupported:
    def test_parse_spec_example_with_line_break(self):  # 2.2.6.10 example is folded over two lines
        tags = sup.parse_supported(
            "com.microsoft.wm.srvppair, com.microsoft.wm.sswitch,\r\n com.microsoft.wm.predstrm,"
            " com.microsoft.wm.startupprofile"
        )
        assert tags == {sup.SRVPPAIR, sup.SSWITCH, sup.PREDSTRM, sup.STARTUPPROFILE}

    def test_missing_header_keeps_the_set_present_header_replaces_it(self):
        current = frozenset({sup.EOSMSG, sup.FASTCACHE})
        assert sup.update_features(current, None) == current
        assert sup.update_features(current, "com.microsoft.wm.sswitch") == {sup.SSWITCH}

    def test_server_role_always_lists_eosmsg_and_sswitch(self):  # 3.2.5.2
        assert sup.server_role_features(honours_speed=False) == (sup.EOSMSG, sup.SSWITCH)
        assert sup.FASTCACHE in sup.server_role_features(honours_speed=True)

    def test_client_role_never_sends_locid(self):  # 3.1.5.1; checklist 9
        for predictive in (False, True):
            assert sup.LOCID not in sup.client_role_features(predictive_selection=predictive)

    def test_format_is_strict(self):
        value = sup.format_supported(["x-unknown", sup.EOSMSG.upper(), sup.SSWITCH])
        assert value == "com.microsoft.wm.sswitch, com.microsoft.wm.eosmsg"
        assert len(sup.format_supported(sup.KNOWN_FEATURES * 2).split(", ")) == 8

    def test_speed_needs_fastcache(self):  # 2.2.6.10.2
        assert not sup.may_send_speed(frozenset({sup.EOSMSG}))
        assert sup.may_send_speed(sup.parse_supported("com.microsoft.wm.fastcache"))

    @given(st.text(max_size=200))
    def test_parse_never_raises(self, value):
        sup.format_supported(sup.parse_supported(value))


class TestIdentity:
    def test_user_agent_matches_the_grammar(self):
        assert user_agent("0.1.0", GUID) == "WMCacheProxy/0.1.0.0 guid/3300AD50-2C39-46C0-AE0A-C4D98694D7B4"
        assert USER_AGENT_DATA.match(user_agent("2024.10.123456.7-dev", GUID))

    @given(st.text(max_size=40))
    def test_any_version_string_fits_the_grammar(self, version):
        assert USER_AGENT_DATA.match(user_agent(version, GUID))
        assert re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{1,4}\.\d{1,4}", wm_version(version))

    def test_relayed_player_request(self):  # 3.1.5.1
        headers = upstream_identity_headers(
            version="0.1.0", guid=GUID, proxy_host="proxy-1", player_method="describe",
            player_user_agent="WMPlayer/11.0.5721.5145 guid/3300AD50-2C39-46C0-AE0A-1234567890AB",
        )
        assert dict(headers) == {
            "User-Agent": "WMCacheProxy/0.1.0.0 guid/3300AD50-2C39-46C0-AE0A-C4D98694D7B4",
            "Via": "RTSP/1.0 proxy-1 (WMCacheProxy/0.1.0.0)",
            "X-Proxy-Client-Agent": "WMPlayer/11.0.5721.5145 guid/3300AD50-2C39-46C0-AE0A-1234567890AB",
            "X-Proxy-Client-Verb": "DESCRIBE",
        }

    def test_existing_proxy_client_agent_is_copied_unchanged(self):  # 2.2.6.24
        assert proxy_client_agent("WMCacheProxy/9.0.0.1 guid/X", "WMPlayer/9.0 guid/Y") == "WMPlayer/9.0 guid/Y"
        assert proxy_client_agent(None, None) is None
        assert proxy_client_agent("bad\r\nInjected: 1", None) == "badInjected: 1"

    def test_own_request_has_no_client_headers(self):
        names = [n for n, _ in upstream_identity_headers(version="1", guid=GUID, proxy_host="p")]
        assert names == ["User-Agent", "Via"]

    def test_via_appends_and_stays_bounded(self):
        assert via_value("me", "1.0", existing="RTSP/1.0 a") == "RTSP/1.0 a, RTSP/1.0 me (WMCacheProxy/1.0.0.0)"
        long_chain = ", ".join(f"RTSP/1.0 hop{i}" for i in range(50))
        assert len(via_value("me", "1", existing=long_chain).split(", ")) == 16
        assert via_value("bad host\r\n", "1") == "RTSP/1.0 badhost (WMCacheProxy/1.0.0.0)"
