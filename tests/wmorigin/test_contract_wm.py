"""Contract: what the test origin and player put on the wire is read the same way by proxyd.wm.

The origin keeps its own independent parsers (it is the oracle for proxy tests); these tests make sure
the two sides agree on the formats, so a disagreement shows up here rather than as a puzzling
end-to-end failure.
"""

from __future__ import annotations

import pytest

from proxyd.wm import cache_control as wm_cache_control
from proxyd.wm import remote_event as wm_remote_event
from proxyd.wm import wmlog as wm_wmlog
from tests.wmorigin.content import Entry
from tests.wmorigin.events import build_remote_log, parse_remote_event
from tests.wmorigin.player import fixture


def test_default_cache_control_is_cacheable_and_subscribes_to_all_events():
    entry = Entry("/clip.wmv", "contract")
    cc = wm_cache_control.parse_cache_control(entry.cache_control_value())
    assert not cc.errors and cc.public and cc.proxy_revalidate and cc.max_age == 86399
    assert cc.content_size == entry.items[0].asf.size
    assert set(cc.event_subscription) == {"remote-log", "remote-open", "remote-close"}
    assert not cc.is_broadcast


def test_broadcast_cache_control_is_splittable_live():
    cc = wm_cache_control.parse_cache_control(Entry("/live", "contract", broadcast=True).cache_control_value())
    assert not cc.errors and cc.is_broadcast and cc.proxy_split and cc.content_size is None


def test_player_remote_log_is_read_identically_by_both_parsers():
    log = fixture("rendering_log.xml").decode()
    body = build_remote_log(user_agent="WMPlayer/11.0.5721.5145 guid/AB", player_guid="AB",
                            url="rtsp://o/clip.wmv", rendering_log=log)
    ours, error = parse_remote_event(body)
    theirs = wm_remote_event.parse_remote_event(body)
    assert error is None and theirs.errors == []
    assert theirs.event_type == ours.event_type == 30
    assert theirs.value("@.REMOTE_LOG") == ours.value("@.REMOTE_LOG") == log
    assert theirs.value("WMS_USER_AGENT") == ours.value("WMS_USER_AGENT")


@pytest.mark.parametrize("name, hint, log_type", [
    ("logconnect_ms_rtsp_4_5_1.xml", "logconnect", "connect"),
    ("logplay_legacy_ms_rtsp_4_5_2.xml", "logplay", "legacy"),
    ("rendering_log.xml", "sendevent", "rendering"),
])
def test_player_logs_parse_as_their_kind(name, hint, log_type):
    parsed = wm_wmlog.parse_log(fixture(name), hint=hint)
    assert parsed.log_type == log_type
    assert parsed.fields.get("c-ip") == "0.0.0.0"
