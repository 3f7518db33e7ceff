"""[MS-RTSP] 3.2.5.1 / 3.2.5.2 common request and response rules through the in-process proxyd in
front of the WM test origin: KeepAlive (2.2.7.5), Content-Type dispatch of SET_PARAMETER (2.2.6.3),
454 for unknown or over-long session ids, the 240-transactions-per-heartbeat limit (503), and the
announced `;timeout=` a few seconds below the Idle-Timeout with Supported on every response."""

from __future__ import annotations

import asyncio
import socket

from proxyd.serving.timers import TransactionCounter
from tests.proxyd.cache.test_e2e_playlist import RawPlayer
from tests.proxyd.wmext.harness import proxy_url, running_proxy
from tests.wmorigin.player import fixture

TCP = "RTP/AVP/TCP;unicast;interleaved={}-{}"
EOSMSG_SSWITCH = {"com.microsoft.wm.eosmsg", "com.microsoft.wm.sswitch"}


def supported(response) -> set[str]:
    return {t.strip() for t in (response.header("Supported") or "").split(",") if t.strip()}


async def ready_session(player: RawPlayer, url: str) -> None:
    describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
    assert describe.status == 200
    await player.setup_all(describe.body, describe.header("X-Playlist-Gen-Id") or "0")


async def test_keepalive_with_a_session_is_200_without_a_body(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="ka")
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/clip.wmv")
        async with RawPlayer(url) as player:
            await ready_session(player, url)
            keepalive = await player.request("GET_PARAMETER", url)
    assert (keepalive.status, keepalive.body) == (200, b"")
    assert keepalive.header("Session").split(";")[0] == player.session


async def test_set_parameter_is_dispatched_by_content_type_in_any_case_and_charset(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="ct")
    async with running_proxy(wm_origin.url("")) as server:
        sink = server.context.reporter
        url = proxy_url(server, "/clip.wmv")
        async with RawPlayer(url) as player:
            await ready_session(player, url)

            async def set_parameter(content_type: str, body: bytes):
                return await player.request("SET_PARAMETER", url, [("Content-Type", content_type)], body)

            log_play = await set_parameter("APPLICATION/X-WMS-LOGPLAYSTATS; charset=utf-8",
                                           fixture("logplay_legacy_ms_rtsp_4_5_2.xml"))
            log_connect = await set_parameter("application/x-wms-logconnectstats;Charset=UTF-8",
                                              fixture("logconnect_ms_rtsp_4_5_1.xml"))
            event = await set_parameter("Application/X-WMS-SendEvent;charset=UTF-8", b"1\r\n1,28,0\r\n")
            switch = await set_parameter("application/X-WMS-StreamSwitch", b"Stream-Switch-Entry: 1:ffff:0\r\n")
            packet_pair = await set_parameter("application/X-RTSP-UDP-PacketPair;charset=UTF-8", b"\x00")
    assert [r.status for r in (log_play, log_connect, event, switch)] == [200] * 4
    assert [p["kind"] for p in sink.of("playlog")] == ["logplay", "logconnect"]  # LogPlay, LogConnect
    assert "remote-open" in [e["event_type"] for e in sink.of("sendevent")]  # SendEvent (EventType 28)
    assert event.header("Supported") is None
    assert wm_origin.count("StreamSwitch", "/clip.wmv") == 1  # SelectStream: the origin's session switches
    assert wm_origin.counts("/clip.wmv")["LogPlay"] == 0  # logs stay at the proxy
    # UdpPacketPair: answered here (we never list srvppair), never sent to the origin
    assert packet_pair.status == 451 and wm_origin.count("unknown", "/clip.wmv") == 0


async def test_unknown_or_over_long_session_ids_are_454_except_for_sendevent(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="454")
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/clip.wmv")
        async with RawPlayer(url) as player:
            await ready_session(player, url)
            own = player.session
            answers = {}
            for name, session in (("unknown", "0123456789"), ("long", own + "0" * (21 - len(own)))):
                player.session = session
                answers[name] = [(await player.request(method, url)).status for method in ("GET_PARAMETER", "PLAY")]
                answers[name + " sendevent"] = (await player.request(
                    "SET_PARAMETER", url, [("Content-Type", "application/x-wms-sendevent")], b"1\r\n1,28,0\r\n")).status
            player.session = own
            still = await player.request("GET_PARAMETER", url)
    assert len(own) <= 20  # the proxy's own ids fit the 20-character rule
    assert answers == {"unknown": [454, 454], "unknown sendevent": 200, "long": [454, 454], "long sendevent": 200}
    assert still.status == 200


async def test_transactions_over_the_heartbeat_limit_are_503(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="503")
    async with running_proxy(wm_origin.url(""), "--session-max-transactions", "4") as server:
        url = proxy_url(server, "/clip.wmv")
        async with RawPlayer(url) as player:
            await ready_session(player, url)  # two SETUPs: one transaction
            statuses = [(await player.request("GET_PARAMETER", url)).status for _ in range(4)]
            other = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])  # no session: not counted
    assert statuses == [200, 200, 200, 503]
    assert other.status == 200


def test_a_new_heartbeat_starts_a_new_count_and_setup_bursts_count_once():
    counter = TransactionCounter(0.0, limit=3, heartbeat=30.0)
    assert [counter.admit(m, 1.0) for m in ("SETUP", "SETUP", "SETUP", "PLAY", "TEARDOWN", "TEARDOWN")] == \
        [True] * 6
    assert counter.admit("GET_PARAMETER", 2.0) is False
    assert counter.admit("GET_PARAMETER", 30.0) is True  # the heartbeat reset the count


async def test_announced_timeout_is_below_the_idle_timeout_and_every_response_lists_supported(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="idle")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        async with running_proxy(wm_origin.url(""), "--session-timeout", "2", "--session-idle-margin", "1.5") as server:
            sink = server.context.reporter
            url = proxy_url(server, "/clip.wmv")
            async with RawPlayer(url) as player:
                describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
                setup = await player.request("SETUP", f"{url}/audio",
                                             [("Transport", f"RTP/AVP/UDP;unicast;client_port={port}-{port + 1}")])
                keepalive = await player.request("GET_PARAMETER", url)
                play = await player.request("PLAY", url, [("Range", "npt=0-")])  # a UDP player sends no RTCP
                idle_from = loop.time()
                await sink.wait_for(lambda: sink.of("session.ended"), timeout=10)
                reaped_after = loop.time() - idle_from
    finally:
        udp.close()
    for response in (setup, keepalive, play):
        assert response.header("Session").endswith(";timeout=2")
    for response in (describe, setup, keepalive, play):
        assert EOSMSG_SSWITCH <= supported(response)
    assert sink.of("session.ended")[0]["end_reason"] == "timeout"
    assert reaped_after > 3.0  # the Idle-Timeout: announced 2 s + 1.5 s margin, not the announced value
