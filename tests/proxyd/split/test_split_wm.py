"""Splitting a Windows Media broadcast: the origin says x-wms-stream-type=broadcast and
x-wms-proxy-split, so proxyd splits it without any --live policy (MS-RTSP 4.6.2)."""

from __future__ import annotations

import asyncio
import time

import pytest

from proxyd.rtsp.headers import parse_rtp_info
from proxyd.wm.messages import parse_end_of_stream_body
from tests.proxyd.cache.helpers import committed_urls
from tests.proxyd.cache.test_e2e_content_info import known_wm_origin
from tests.proxyd.cache.test_e2e_playlist import RawPlayer
from tests.wmorigin import asfpf
from tests.wmorigin.fixtures import wm_origin  # noqa: F401 - fixture
from tests.wmorigin.player import PlayResult, WMPlayer

pytestmark = pytest.mark.peers
VIDEO = 2  # ASF stream number of the test origin's video (a=stream:2)


async def test_two_wm_players_share_one_origin_session(wm_origin, proxyd_process):  # noqa: F811
    wm_origin.set_entry("/live", seed="split", broadcast=True)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    first = asyncio.create_task(WMPlayer(url, stop_after_s=3.0, send_event=False).run())
    second = asyncio.create_task(WMPlayer(url, stop_after_s=1.5, transport="udp", send_event=False).run())
    results = await asyncio.gather(first, second)
    for result in results:
        assert result.error is None, result.error
        assert result.entries and any(s.packets > 0 for s in result.entries[0].streams.values())
        assert result.status("PAUSE") == [200] and result.status("TEARDOWN") == [200]
    assert wm_origin.count("PLAY", "/live") == 1
    assert "joins split" in proxy.log_path.read_text()


async def test_wm_broadcast_without_proxy_split_is_relayed_per_player(
        wm_origin, proxyd_process):  # noqa: F811
    wm_origin.set_entry("/live", seed="nosplit", broadcast=True,
                        cache_control='no-cache, x-wms-stream-type="broadcast"')
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    results = await asyncio.gather(*(WMPlayer(url, stop_after_s=1.0, send_event=False).run()
                                     for _ in range(2)))
    for result in results:
        assert result.error is None, result.error
    assert wm_origin.count("PLAY", "/live") == 2
    assert "joins split" not in proxy.log_path.read_text()


def assert_starts_at_a_key_frame(result: PlayResult, entry_index: int = 0) -> None:
    """The first video RTP packet (of the entry) starts a key frame (S bit, whole ASF packet or first
    fragment), the first ASF packet reassembled from it starts a key media object, and RTP-Info
    names the first packet of every stream."""
    assert result.error is None, result.error
    entry = result.entries[entry_index]
    video = entry.streams[VIDEO]
    head = video.first_payload_header
    assert len(head) == 4 and head[0] & 0x80, f"first video packet is not a key frame: {head.hex()}"
    assert head[0] & 0x40 or head[1:] == b"\0\0\0", f"first video packet is a continuation: {head.hex()}"
    info = asfpf.packet_info(video.asf_packets[0])
    assert info.key and info.object_offset == 0, info
    rtp_info = {e.url: e for e in parse_rtp_info(entry.play.header("RTP-Info") or "")}
    for stream in entry.streams.values():
        assert stream.packets > 0 and rtp_info[stream.url].seq == stream.first_seq, (stream.url, rtp_info)


async def test_late_wm_joiners_start_at_a_video_key_frame(wm_origin, proxyd_process):  # noqa: F811
    wm_origin.set_entry("/live", seed="late-joiner", broadcast=True)  # key frames every 1000 ms
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    first = WMPlayer(url, stop_after_s=6.0, send_event=False)
    first_task = asyncio.create_task(first.run())
    async with asyncio.timeout(10):  # into the broadcast, so a joiner lands mid-GOP
        while not first.result.entries or first.result.entries[0].streams.get(VIDEO) is None \
                or first.result.entries[0].streams[VIDEO].packets < 25:
            await asyncio.sleep(0.05)  # polling another task's counter, bounded by the timeout
    late = await asyncio.gather(*(WMPlayer(url, stop_after_s=1.5, transport=t, send_event=False).run()
                                  for t in ("udp", "tcp")))
    for result in [*late, await first_task]:
        assert_starts_at_a_key_frame(result)
    assert wm_origin.count("PLAY", "/live") == 1
    assert proxy.log_path.read_text().count("joins split") == 3


async def wait_described(player: WMPlayer) -> float:
    """Monotonic time by which the player's DESCRIBE was answered (the split permission's start)."""
    async with asyncio.timeout(15):
        while player.result.describe is None:
            await asyncio.sleep(0.02)  # polling another task's state, bounded by the timeout
    return time.monotonic()


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))  # the permission's lifetime is wall-clock time


async def test_an_expired_split_permission_is_revalidated_before_a_player_joins(
        wm_origin, proxyd_process):  # noqa: F811
    splittable = 'max-age=1, public, x-wms-stream-type="broadcast", x-wms-proxy-split'
    wm_origin.set_entry("/live", seed="expiry", broadcast=True, cache_control=splittable)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    first = WMPlayer(url, stop_after_s=8.0, send_event=False)
    first_task = asyncio.create_task(first.run())
    await sleep_until(await wait_described(first) + 1.1)
    renewed = await WMPlayer(url, stop_after_s=1.0, send_event=False).run()  # still splittable: joins
    assert renewed.error is None, renewed.error
    assert (wm_origin.count("GetContentInfo", "/live"), wm_origin.count("PLAY", "/live")) == (1, 1)
    renewed_at = time.monotonic()

    wm_origin.set_cache_control("/live", 'max-age=1, public, x-wms-stream-type="broadcast"')  # no split now
    await sleep_until(renewed_at + 1.1)
    own = await WMPlayer(url, stop_after_s=1.0, send_event=False).run()
    assert own.error is None, own.error
    assert (wm_origin.count("GetContentInfo", "/live"), wm_origin.count("PLAY", "/live")) == (2, 2)
    assert (await first_task).error is None  # the split's players were not disturbed
    assert proxy.log_path.read_text().count("joins split") == 2


async def test_a_joiner_costs_the_origin_no_request_even_with_a_cache(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/live", seed="no-request", broadcast=True)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/live")
    first = asyncio.create_task(WMPlayer(url, stop_after_s=4.0, send_event=False).run())
    assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("PLAY", "/live") == 1)
    before = wm_origin.counts("/live")
    second = await WMPlayer(url, stop_after_s=1.0, transport="udp", send_event=False).run()
    after = wm_origin.counts("/live")
    assert second.error is None and (await first).error is None, second.error
    assert {k: after[k] - before[k] for k in ("GetContentInfo", "DESCRIBE", "SETUP", "PLAY")} == \
        {"GetContentInfo": 0, "DESCRIBE": 0, "SETUP": 0, "PLAY": 0}
    assert proxy.log_path.read_text().count("joins split") == 2


async def test_a_new_broadcast_asks_get_content_info_then_describe_and_sets_up_and_plays_with_its_first_player(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir)
    await known_wm_origin(wm_origin, proxy)
    wm_origin.set_entry("/live", seed="deferred", broadcast=True)
    url = proxy.url("/wm/live")
    async with RawPlayer(url) as player:
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        assert describe.status == 200
        assert [r.kind for r in wm_origin.requests if r.path == "/live"] == ["GetContentInfo", "DESCRIBE"]
        await player.setup_all(describe.body, "0")
        assert (wm_origin.count("SETUP", "/live"), wm_origin.count("PLAY", "/live")) == (3, 0)
        assert (await player.request("PLAY", url)).status == 200
        assert wm_origin.count("PLAY", "/live") == 1  # the Play response followed the origin's
        async with asyncio.timeout(10):
            while player.rtp_packets == 0:
                await player.next_item()
    assert committed_urls(cache_dir) == []  # the live data is never stored


async def test_origin_end_of_stream_reaches_every_split_player_as_its_own(wm_origin, proxyd_process):  # noqa: F811
    """[MS-RTSP] 3.1.5.13, 3.2.4.1: the hub answers the origin's EndOfStream and each player gets one
    with its own session id (header and body), its stream URLs and the seq of its next packet."""
    wm_origin.set_entry("/live", seed="split-eos", broadcast=True)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    players = [WMPlayer(url, send_event=False) for _ in range(2)]
    tasks = [asyncio.create_task(p.run()) for p in players]
    async with asyncio.timeout(10):  # both joined and receiving before the origin ends the broadcast
        while not all(p.result.entries and len(p.result.entries[0].streams) == 2
                      and all(s.packets for s in p.result.entries[0].streams.values()) for p in players):
            await asyncio.sleep(0.05)  # polling the players' counters, bounded by the timeout
    assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1  # one origin session
    results = await asyncio.gather(*tasks)
    (origin_eos,) = [m for m in wm_origin.sent_requests if m.method == "SET_PARAMETER"]
    assert any(r.status == 200 and r.cseq == origin_eos.cseq for r in wm_origin.client_responses)
    sessions = set()
    for result in results:
        assert result.error is None, result.error
        entry = result.entries[0]
        eos = entry.eos
        session = eos.header("Session")
        sessions.add(session)
        assert session == entry.play.header("Session").split(";")[0] != origin_eos.header("Session")
        body = parse_end_of_stream_body(eos.body)
        assert body.session_id == session and body.eof and not body.end_of_playlist_entry
        assert eos.uri == url and eos.header("X-Playlist-Gen-Id") == origin_eos.header("X-Playlist-Gen-Id")
        rtp_info = {e.url: e.seq for e in parse_rtp_info(eos.header("RTP-Info") or "")}
        assert set(rtp_info) == {s.url for s in entry.streams.values()}
        for stream in entry.streams.values():  # TCP, no loss: the next packet after the last received
            assert rtp_info[stream.url] == (stream.first_seq + stream.packets) & 0xFFFF, stream.url
        assert result.status("TEARDOWN") == [200]
    assert len(sessions) == 2 and wm_origin.count("PLAY", "/live") == 1
