"""WMPlayer-style player -> in-process proxyd -> Windows Media test origin: logs and remote events.

Spec sources of the behaviours checked: LogConnect/LogPlay answered 200 with no body and passed to
the higher layer ([MS-RTSP] 3.2.5.9, 3.2.5.12); SendEvent answered without body or Supported and
without a session lookup (3.2.5.16, 3.2.5.1); forwarding only of subscribed event types (2.2.7.11,
2.2.6.2.10); legacy logs forwarded as rendering logs ([MS-WMSP] 3.2.5.11, [MS-WMLOG] 2.7); proxy
field rewrites ([MS-WMLOG] 2.1.8, 2.1.34, 2.1.42-45, 2.1.47); identity headers upstream (3.1.5.1).
"""

from __future__ import annotations

import pytest

from proxyd.wm.remote_event import parse_remote_event
from proxyd.wm.wmlog import parse_log
from tests.proxyd.wmext.harness import proxy_url, rtsp_exchange, running_proxy
from tests.wmorigin.content import EVENT_SUBSCRIPTION
from tests.wmorigin.player import FIXTURES, USER_AGENT_VERSION, WMPlayer, fixture

FIXTURES_WM = FIXTURES.parent / "wm"

LOGPLAY = "application/x-wms-Logplaystats;charset=UTF-8"


async def test_wmplayer_through_proxy_reports_logs_and_rewritten_events(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="logs", duration_ms=1000)
    async with running_proxy(wm_origin.url("")) as server:
        sink = server.context.reporter
        url = proxy_url(server, "/clip.wmv")
        result = await WMPlayer(url, speed=5).run()
        await sink.wait_for(lambda: len(sink.of("sendevent")) >= 2)
    assert result.error is None, result.error
    (entry,) = result.entries
    assert entry.streams[2].asf_packets  # media flowed through the relay
    assert result.status("LogConnect") == [200] and result.status("LogPlay") == [200]
    assert result.status("SendEvent") == [200]
    for kind, response in result.responses:
        if kind in ("LogConnect", "LogPlay", "SendEvent"):
            assert response.body == b""
    describe = result.describe  # the origin's subscription reaches the player, with fastcache (item 37)
    assert 'x-wms-event-subscription="remote-log' in describe.header("Cache-Control")
    assert "com.microsoft.wm.fastcache" in describe.header("Supported")
    send_event_response = dict(result.responses)["SendEvent"]
    assert send_event_response.header("Supported") is None
    assert "com.microsoft.wm.fastcache" in dict(result.responses)["LogPlay"].header("Supported")

    # Nothing log-like reached the origin directly: logs stay local, events go through the uplink.
    assert wm_origin.logs == [] and wm_origin.send_events == []

    connect, play = sink.of("playlog")
    session_id = sink.of("session.started")[0]["session_id"]
    assert (connect["kind"], connect["log_type"], connect["session_id"]) == ("logconnect", "connect", session_id)
    assert connect["fields"]["c-os"] and connect["user_agent"].startswith(USER_AGENT_VERSION)
    assert (play["kind"], play["log_type"]) == ("logplay", "legacy")
    assert play["fields"]["c-playerid"] == "{3300AD50-2C39-46c0-AE0A-C4D98694D7B4}"
    assert play["fields"]["cs-uri-stem"] == "rtsp://myserver.com/mycontent.wmv"
    assert play["raw"] == fixture("logplay_legacy_ms_rtsp_4_5_2.xml").decode()
    assert "malformed tag" in play["parse_error"]  # the spec's sample is malformed, still parsed
    assert play["player_addr"].startswith("127.0.0.1:") and play["url"] == url

    converted, forwarded = sink.of("sendevent")  # legacy LogPlay -> remote-log, then the player's own
    for event in (converted, forwarded):
        assert event["event_type"] == "remote-log" and event["subscribed"] is True
        assert event["origin_url"] == wm_origin.url("/clip.wmv")
        parsed = parse_remote_event(event["body"].encode())
        assert parsed.errors == [] and parsed.value("@WMS_COMMAND_CONTEXT_URL") == wm_origin.url("/clip.wmv")
        log = parse_log(parsed.remote_log)
        assert log.log_type == "rendering", log.errors
        assert log.fields["s-proxied"] == "1" and log.fields["c-ip"] == "127.0.0.1"
        assert log.fields["cs-User-Agent"].startswith("_via_HTTP/1.0_WMCacheProxy/")
        assert log.fields["protocol"] == "Cache" and log.fields["s-totalclients"].isdigit()
    assert converted["session_id"] == session_id
    assert parse_log(parse_remote_event(converted["body"].encode()).remote_log).fields["c-playerid"] == \
        "{3300AD50-2C39-46c0-AE0A-C4D98694D7B4}"


async def test_identity_and_supported_headers_reach_the_origin(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="id", duration_ms=500)
    async with running_proxy(wm_origin.url("")) as server:
        result = await WMPlayer(proxy_url(server, "/clip.wmv"), speed=5, send_event=False).run()
    assert result.error is None, result.error
    describe, setup = wm_origin.requests[0], next(r for r in wm_origin.requests if r.method == "SETUP")
    for request in (describe, setup):
        agent = request.header("User-Agent")
        assert agent.startswith("WMCacheProxy/0.1.0.0 guid/") and len(agent.split("guid/")[1]) == 36
        assert request.header("X-Proxy-Client-Agent").startswith(USER_AGENT_VERSION)
        assert request.header("X-Proxy-Client-Verb") == request.method
        assert request.header("Via").startswith("RTSP/1.0 ") and "(WMCacheProxy/0.1.0.0)" in request.header("Via")
        assert request.header("Supported") == "com.microsoft.wm.sswitch, com.microsoft.wm.eosmsg"
    agents = {r.header("User-Agent") for r in wm_origin.requests}
    assert len(agents) == 1  # one GUID for every request of the session
    assert "com.microsoft.wm.predstrm" not in result.describe.header("Supported")  # origin's list not leaked


async def test_unsubscribed_origin_gets_nothing_forwarded(wm_origin):
    wm_origin.set_entry("/quiet.wmv", seed="q", duration_ms=500,
                        cache_control="max-age=600, public, proxy-revalidate")
    async with running_proxy(wm_origin.url("")) as server:
        sink = server.context.reporter
        url = proxy_url(server, "/quiet.wmv")
        result = await WMPlayer(url, speed=5, send_event=False).run()
        # The player would not send it (not subscribed); a misbehaving one still gets 200, no forward.
        from tests.wmorigin.events import build_remote_log
        body = build_remote_log(user_agent="x", player_guid="00000000-0000-0000-0000-000000000000", url=url,
                                rendering_log=fixture("rendering_log.xml").decode())
        response = await rtsp_exchange(url, "SET_PARAMETER", [("Content-Type", "application/x-wms-sendevent")],
                                       body)
    assert result.error is None and response.status == 200
    (event,) = sink.of("sendevent")  # recorded, not subscribed; the legacy LogPlay is not converted
    assert event["subscribed"] is False
    assert [p["kind"] for p in sink.of("playlog")] == ["logconnect", "logplay"]


async def test_logs_are_answered_at_once_even_with_the_origin_down(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="down")
    async with running_proxy(wm_origin.url("")) as server:
        sink = server.context.reporter
        url = proxy_url(server, "/clip.wmv")
        await rtsp_exchange(url, "DESCRIBE", [])  # learns the subscription
        wm_origin.take_down()
        try:
            garbage = await rtsp_exchange(url, "SET_PARAMETER", [("Content-Type", LOGPLAY)], b"\x00not a log<<")
            legacy = await rtsp_exchange(url, "SET_PARAMETER", [("Content-Type", LOGPLAY)],
                                         fixture("logplay_legacy_ms_rtsp_4_5_2.xml"))
        finally:
            wm_origin.bring_up()
    assert (garbage.status, garbage.body, legacy.status) == (200, b"", 200)
    unparsed, parsed = sink.of("playlog")
    assert unparsed["log_type"] == "unknown" and unparsed["parse_error"] and unparsed["raw"].endswith("not a log<<")
    assert unparsed["session_id"] is None and parsed["log_type"] == "legacy"
    (converted,) = sink.of("sendevent")
    assert converted["subscribed"] is True and EVENT_SUBSCRIPTION


@pytest.mark.parametrize("session_header", ["12345", None])
async def test_sendevent_needs_no_session_but_a_log_with_an_unknown_one_is_454(wm_origin, session_header):
    wm_origin.set_entry("/clip.wmv", seed="s")
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/clip.wmv")
        extra = [("Session", session_header)] if session_header else []
        event = await rtsp_exchange(url, "SET_PARAMETER",
                                    [("Content-Type", "application/x-wms-sendevent"), *extra], b"1\r\n1,28,0\r\n")
        log = await rtsp_exchange(url, "SET_PARAMETER", [("Content-Type", LOGPLAY), *extra], b"<XML></XML>")
        unrouted = await rtsp_exchange(f"rtsp://127.0.0.1:{server.port}/elsewhere/x", "SET_PARAMETER",
                                       [("Content-Type", "application/x-wms-sendevent")], b"1\r\n1,28,0\r\n")
    assert event.status == 200
    assert log.status == (454 if session_header else 200)
    assert unrouted.status == 404


async def test_a_streaming_logplay_is_kept_local_as_the_player_sends_remote_log_itself(wm_origin):
    """[MS-WMSP] 3.2.5.11, 4.12: a streaming log comes with the player's own remote-log SendEvent, so
    only that one goes upstream; a converted copy of the LogPlay would count the play twice."""
    wm_origin.set_entry("/clip.wmv", seed="streaming-log", duration_ms=500)
    streaming = (FIXTURES_WM / "wmlog_3_3_streaming_xml.xml").read_bytes()
    async with running_proxy(wm_origin.url("")) as server:
        sink = server.context.reporter
        result = await WMPlayer(proxy_url(server, "/clip.wmv"), speed=5, logplay=streaming).run()
        await sink.wait_for(lambda: sink.of("sendevent"))
    assert result.error is None, result.error
    assert result.status("LogPlay") == [200] and result.status("SendEvent") == [200]
    assert [p["log_type"] for p in sink.of("playlog") if p["kind"] == "logplay"] == ["streaming"]
    (forwarded,) = sink.of("sendevent")  # the player's own; nothing built from the LogPlay
    assert (forwarded["event_type"], forwarded["subscribed"]) == ("remote-log", True)
    assert wm_origin.logs == []
