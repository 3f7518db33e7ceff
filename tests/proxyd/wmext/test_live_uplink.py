"""proxyd (real process, --control-url) -> live Django control plane -> Celery uplink worker -> WM origin.

A WMPlayer-style player plays through proxyd; its LogConnect/LogPlay become PlayLog rows visible in
/api/v1/playlogs/, and the origin receives exactly the events it subscribed to, rewritten by the
proxy ([MS-WMLOG] 2.1.x), once each: also when the control plane was unreachable while the player
played (reports spooled by proxyd, delivered after restart) and when the origin was down while the
uplink tried to deliver (retried with backoff by the worker).
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxyd.wm.remote_event import parse_remote_event
from proxyd.wm.wmlog import parse_log
from tests.appliance.conftest import viewer, viewer_client  # noqa: F401  (fixtures)
from tests.appliance.tasks.harness import wait_until
from tests.proxyd.wmext.harness import rtsp_exchange
from tests.wmorigin.player import WMPlayer, fixture

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def refused_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connections are refused
    return port


def control_args(url: str, node, state_dir) -> list[str]:
    return ["--control-url", url, f"--control-token={node.token}", "--node-name", node.name,
            "--state-dir", str(state_dir), "--control-poll-interval", "1"]


def received_remote_logs(wm_origin) -> list:
    return [e for e in wm_origin.send_events if e.parsed is not None and e.parsed.event_type == 30]


def assert_rewritten(event, wm_origin, path: str) -> None:
    assert event.error is None and event.url == wm_origin.url(path)
    mine = parse_remote_event(event.raw)
    assert mine.errors == [] and mine.value("@WMS_COMMAND_CONTEXT_URL") == wm_origin.url(path)
    log = parse_log(mine.remote_log)
    assert log.log_type == "rendering" and log.fields["s-proxied"] == "1"
    assert log.fields["c-ip"] == "127.0.0.1" and log.fields["cs-User-Agent"].startswith("_via_")
    agent = dict((k.lower(), v) for k, v in event.headers)["user-agent"]
    assert agent.startswith("WMCacheProxy/")


def test_playlogs_in_api_and_subscribed_events_reach_origin_once(
        live_server, celery_worker_process, viewer_client, wm_origin, proxyd_process, tmp_path):
    from appliance.uplink.models import UplinkEvent, UplinkState
    from tests.appliance.factories import ProxyNodeFactory

    node = ProxyNodeFactory(name="wm-node")
    wm_origin.set_entry("/clip.wmv", seed="live", duration_ms=1000)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("")},
                           extra_args=control_args(live_server.url, node, tmp_path / "state"))
    url = f"rtsp://127.0.0.1:{proxy.port}/wm/clip.wmv"
    result = asyncio.run(WMPlayer(url, speed=5).run())
    assert result.error is None, result.error

    def playlogs():
        return viewer_client.get("/api/v1/playlogs/", {"url": url}).json()["results"]

    wait_until(lambda: len(playlogs()) == 2, timeout=30, what="two play logs in the API")
    by_kind = {row["kind"]: row for row in playlogs()}
    assert by_kind["logconnect"]["log_type"] == "connect"
    play = by_kind["logplay"]
    assert play["log_type"] == "legacy" and play["c_playerid"] == "{3300AD50-2C39-46c0-AE0A-C4D98694D7B4}"
    assert play["cs_uri_stem"] == "rtsp://myserver.com/mycontent.wmv" and play["node"]
    assert play["session"] == by_kind["logconnect"]["session"] and play["session"]

    # Legacy LogPlay converted + the player's own remote-log: two subscribed events, sent once each.
    wait_until(lambda: UplinkEvent.objects.filter(state=UplinkState.SENT).count() == 2, timeout=45,
               what="two uplink events sent")
    assert wm_origin.wait_for(lambda: len(received_remote_logs(wm_origin)) == 2, timeout=10)
    for event in received_remote_logs(wm_origin):
        assert_rewritten(event, wm_origin, "/clip.wmv")
    assert len({e.raw for e in received_remote_logs(wm_origin)}) == 2

    # Origin down while the uplink tries: retried, then delivered exactly once.
    wm_origin.take_down()
    try:
        body = fixture("rendering_log.xml").decode()
        from tests.wmorigin.events import build_remote_log
        event_body = build_remote_log(user_agent="WMPlayer/11.0.5721.5145", url=url, rendering_log=body,
                                      player_guid="11111111-2222-3333-4444-555555555555")
        response = asyncio.run(rtsp_exchange(url, "SET_PARAMETER",
                                             [("Content-Type", "application/x-wms-sendevent")], event_body))
        assert response.status == 200  # answered at once, origin down or not
        wait_until(lambda: UplinkEvent.objects.filter(state=UplinkState.PENDING, attempts__gte=1)
                   .exclude(last_error="").exists(), timeout=30, what="a failed delivery attempt")
    finally:
        wm_origin.bring_up()
    wait_until(lambda: UplinkEvent.objects.filter(state=UplinkState.SENT).count() == 3, timeout=45,
               what="the third event sent after the origin came back")
    assert wm_origin.wait_for(lambda: len(received_remote_logs(wm_origin)) == 3, timeout=10)
    third = received_remote_logs(wm_origin)[2]
    assert_rewritten(third, wm_origin, "/clip.wmv")
    assert "11111111-2222-3333-4444-555555555555" in third.parsed.value("WMS_USER_GUID")


def test_events_made_while_the_control_plane_was_down_are_delivered_once(
        live_server, celery_worker_process, wm_origin, proxyd_process, tmp_path):
    from appliance.playback.models import PlayLog
    from appliance.uplink.models import UplinkEvent, UplinkState
    from tests.appliance.factories import ProxyNodeFactory

    node = ProxyNodeFactory(name="wm-node-2")
    wm_origin.set_entry("/clip.wmv", seed="spool", duration_ms=1000)
    state = tmp_path / "state"
    down = proxyd_process(routes={"/wm": wm_origin.url("")},
                          extra_args=control_args(f"http://127.0.0.1:{refused_port()}", node, state))
    result = asyncio.run(WMPlayer(f"rtsp://127.0.0.1:{down.port}/wm/clip.wmv", speed=5).run())
    assert result.error is None, result.error
    assert down.stop() == 0  # SIGTERM: undelivered reports go to the disk spool
    assert PlayLog.objects.count() == 0

    proxyd_process(routes={"/wm": wm_origin.url("")}, extra_args=control_args(live_server.url, node, state))
    wait_until(lambda: PlayLog.objects.filter(node=node).count() == 2, timeout=30, what="spooled play logs")
    wait_until(lambda: UplinkEvent.objects.filter(state=UplinkState.SENT).count() == 2, timeout=45,
               what="spooled events sent")
    assert wm_origin.wait_for(lambda: len(received_remote_logs(wm_origin)) == 2, timeout=10)
    for event in received_remote_logs(wm_origin):
        assert_rewritten(event, wm_origin, "/clip.wmv")


def test_cache_served_session_sends_remote_open_and_close_once_through_the_uplink(
        live_server, celery_worker_process, wm_origin, proxyd_process, tmp_path):
    from appliance.uplink.models import UplinkEvent, UplinkState
    from tests.appliance.factories import ProxyNodeFactory

    node = ProxyNodeFactory(name="wm-cache-node")
    wm_origin.set_entry("/clip.wmv", seed="cached", duration_ms=800, max_age=3600)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("")}, cache_dir=tmp_path / "cache",
                           extra_args=control_args(live_server.url, node, tmp_path / "state"))
    url = f"rtsp://127.0.0.1:{proxy.port}/wm/clip.wmv"
    for _ in range(2):  # a miss (filled), then a hit served from the cache
        result = asyncio.run(WMPlayer(url, speed=5, send_event=False).run())
        assert result.error is None, result.error
    assert wm_origin.count("PLAY", "/clip.wmv") == 1

    # Converted legacy LogPlay per play (2) + remote-open and remote-close of the cache-served play.
    wait_until(lambda: UplinkEvent.objects.filter(state=UplinkState.SENT).count() == 4, timeout=45,
               what="four uplink events sent")
    assert wm_origin.wait_for(lambda: len(wm_origin.send_events) == 4, timeout=10)
    by_type = sorted(e.parsed.event_type for e in wm_origin.send_events if e.parsed is not None)
    assert by_type == [28, 29, 30, 30]  # remote-open, remote-close once each ([MS-WMSP] 2.2.5)
    for event in wm_origin.send_events:
        assert event.error is None and event.url == wm_origin.url("/clip.wmv")
