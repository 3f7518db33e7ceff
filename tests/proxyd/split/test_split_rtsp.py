"""Split sessions at the RTSP level with a scripted player: RTP-Info matches the first packet, PAUSE
stops only that player, counters and Transport answers are per player."""

from __future__ import annotations

import re
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest

from proxyd.rtsp.headers import parse_rtp_info, parse_transport
from proxyd.rtsp.uri import content_base, join_control_url
from tests.peers.players import ffmpeg_play
from tests.proxyd.split.players import RecordingPlayer

pytestmark = pytest.mark.peers
SEQ_TS = struct.Struct("!HI")


async def play(proxy, path: str = "/tv/live") -> tuple[RecordingPlayer, list[str], object]:
    player = await RecordingPlayer.connect(proxy.host, proxy.port)
    url = proxy.url(path)
    desc = await player.request("DESCRIBE", url, ("Accept", "application/sdp"))
    assert desc.status == 200, desc
    base = content_base(desc.headers, url)
    media = [join_control_url(base, c) for c in re.findall(r"(?m)^a=control:(\S+)\s*$", desc.body.decode())
             if c != "*"]
    for i, stream_url in enumerate(media):
        resp = await player.request("SETUP", stream_url,
                                    ("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"))
        assert resp.status == 200, resp
        assert parse_transport(resp.headers.get("Transport"))[0].interleaved == (2 * i, 2 * i + 1)
        player.session = resp.headers.get("Session").split(";")[0]
    resp = await player.request("PLAY", base)
    assert resp.status == 200, resp
    return player, media, resp


async def test_rtp_info_matches_the_first_packet_each_player_receives(live_origin, split_proxy):
    proxy = split_proxy()
    first, media, resp1 = await play(proxy)
    await first.wait_packets(0, 30)  # the hub is running and past a key frame or two
    late, _, resp2 = await play(proxy)
    await late.wait_packets(0, 5)
    await late.wait_packets(2, 1)
    for player, resp in ((first, resp1), (late, resp2)):
        entries = {e.url: e for e in parse_rtp_info(resp.headers.get("RTP-Info"))}
        # A stream the hub has not received anything on yet has no entry (nothing to promise).
        assert media[0] in entries and set(entries) <= set(media)
        for i, url in enumerate(media):
            if url not in entries:
                continue
            seq, ts = SEQ_TS.unpack_from(player.packets[2 * i][0], 2)
            assert entries[url].seq == seq
            if entries[url].rtptime is not None:
                assert entries[url].rtptime == ts
    assert resp2.headers.get("Range") == "npt=now-"
    await first.close()
    await late.close()


async def test_pause_stops_only_that_player_and_play_resumes_it(live_origin, split_proxy):
    proxy = split_proxy()
    paused, media, _ = await play(proxy)
    await paused.wait_packets(0, 10)
    resp = await paused.request("PAUSE", proxy.url("/tv/live"))
    assert resp.status == 200
    before = len(paused.packets[0])
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(ffmpeg_play, proxy.url("/tv/live"), transport="udp", duration=3, decode=False,
                            timeout=20).result()
    assert other.ok and other.video_frames >= 0.9 * 3 * 25, other.describe()
    assert len(paused.packets[0]) == before  # nothing while paused, although the split kept going
    last_seq = SEQ_TS.unpack_from(paused.packets[0][-1], 2)[0]
    resp = await paused.request("PLAY", proxy.url("/tv/live"))
    assert resp.status == 200
    await paused.wait_packets(0, before + 5)
    entry = next(e for e in parse_rtp_info(resp.headers.get("RTP-Info")) if e.url == media[0])
    resumed_seq = SEQ_TS.unpack_from(paused.packets[0][before], 2)[0]
    assert entry.seq == resumed_seq and resumed_seq != (last_seq + 1) & 0xFFFF
    await paused.close()


async def test_declined_content_falls_back_to_the_relay(live_origin, proxyd_process):
    """Without --live (the GStreamer origin sends no x-wms-proxy-split) each player has its own
    origin session."""
    proxy = proxyd_process(routes={"/tv": live_origin.url("/")})
    mark = live_origin.mark()
    a, _, _ = await play(proxy)
    b, _, _ = await play(proxy)
    await a.wait_packets(0, 5)
    await b.wait_packets(0, 5)
    assert live_origin.session_count("/live", after=mark) == 2
    assert "joins split" not in proxy.log_path.read_text()
    await a.close()
    await b.close()


class ListSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def emit(self, kind: str, data: dict) -> None:
        self.events.append((kind, data))


async def test_split_sessions_report_served_from_split_with_their_own_counters(live_origin):
    from proxyd.config import Config, parse_route
    from proxyd.app.server import ProxyServer

    sink = ListSink()
    server = ProxyServer(Config(listen_port=0, routes=(parse_route(f"/tv={live_origin.url('/')}"),),
                                live_prefixes=("/tv",)), reporter=sink)
    await server.start()
    proxy = type("Proxy", (), {"host": "127.0.0.1", "port": server.port,
                               "url": lambda self, p: f"rtsp://127.0.0.1:{server.port}/{p.lstrip('/')}"})()
    try:
        a, _, _ = await play(proxy)
        await a.wait_packets(0, 20)
        b, _, _ = await play(proxy)
        await b.wait_packets(0, 5)
        received = []
        for player in (a, b):
            assert (await player.request("TEARDOWN", proxy.url("/tv/live"))).status == 200
            received.append(sum(len(player.packets.get(c, ())) for c in (0, 2)))  # RTP channels
            await player.close()
    finally:
        await server.stop()
    started = [d for k, d in sink.events if k == "session.started"]
    ended = {d["session_id"]: d for k, d in sink.events if k == "session.ended"}
    assert len(started) == 2 and all(d["served_from"] == "split" for d in started)
    assert all(d["transports"] == ["tcp", "tcp"] for d in started)
    assert {d["session_id"] for d in started} == set(ended)
    assert all(d["end_reason"] == "teardown" and d["packets_out"] > 0 for d in ended.values()), ended
    # Each player counts what it was sent (key-frame replay included), not the hub's total.
    assert [ended[d["session_id"]]["packets_out"] for d in started] == received
