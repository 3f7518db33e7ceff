"""The Windows Media test origin and the WMP-style player against each other, no proxy.

Each test names the [MS-RTSP] section whose behaviour it checks.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from tests.wmorigin import wire
from tests.wmorigin.player import WMPlayer, fixture
from tests.wmorigin.sdp import parse_sdp
from tests.wmorigin.server import WMOrigin

UA = [("User-Agent", "WMCacheProxy/9.5.6001.1 guid/11111111-2222-3333-4444-555555555555")]


class Raw:
    """A bare RTSP connection for requests the player would never send."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cseq = 0

    async def __aenter__(self) -> Raw:
        parts = urlsplit(self.url)
        self.reader, self.writer = await asyncio.open_connection(parts.hostname, parts.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass

    async def send(self, method: str, uri: str, headers=(), body: bytes = b"") -> wire.Message:
        self.cseq += 1
        msg = wire.Message(method=method, uri=uri, headers=[("CSeq", str(self.cseq)), *UA, *headers], body=body)
        self.writer.write(msg.encode())
        await self.writer.drain()
        return await self.response()

    async def response(self) -> wire.Message:
        while True:
            item = await asyncio.wait_for(wire.read_item(self.reader), 5)
            if item is None:
                raise ConnectionError("closed")
            if isinstance(item, wire.Message) and not item.method:
                return item


def _packets(origin: WMOrigin, path: str, stream: int, index: int = 0) -> list[bytes]:
    return [p.data for p in origin.entries[path].items[index].asf.packets_for(stream)]


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_full_wmp_sequence_delivers_the_exact_asf_packets(wm_origin, transport):
    """4.4.7 + 4.5: Describe, SelectStream x2, Play, LogConnect, RTP, EndOfStream, LogPlay,
    SendEvent, Teardown; the x-asf-pf payloads (2.2.1) reassemble into the file's data packets."""
    wm_origin.set_entry("/clip.wmv", seed="full", duration_ms=1500)
    result = await WMPlayer(wm_origin.url("/clip.wmv"), transport=transport).run()

    assert result.error is None
    assert [k for k, r in result.responses if r.status == 200] == [
        "DESCRIBE", "SETUP", "SETUP", "PLAY", "LogConnect", "LogPlay", "SendEvent", "TEARDOWN"]
    entry = result.entries[0]
    assert entry.sdp.asf_header == wm_origin.entries["/clip.wmv"].items[0].asf.header
    for stream in (1, 2):
        assert entry.streams[stream].asf_packets == _packets(wm_origin, "/clip.wmv", stream)
        assert entry.streams[stream].depacketizer.broken == 0
        # RTCP sender reports (RFC 3550) on the RTCP channel/port, about one per second
        reports = entry.streams[stream].sender_reports
        assert 1 <= len(reports) <= 3 and reports[0] == (0, 0)
    # 3.2.4.1: EndOfStream after the last packet, RTP-Info seq = next sequence number per stream
    eos = entry.eos
    assert eos.content_type == "application/x-wms-extension-cmd"
    assert eos.header("X-Notice") == '2101 "End-of-Stream Reached"'
    assert eos.body == f"Session: {eos.header('Session')}\r\nEOF: true\r\n".encode()
    assert eos.header("RTP-Info").count("seq=") == 2
    # 2.2.6.11: each SETUP answer named the SSRC its stream's RTP carries; every packet matched.
    assert [r.named for r in wm_origin.setup_ssrcs] == [r.sent for r in wm_origin.setup_ssrcs]
    assert not result.unmatched
    # What the origin saw: WMP identity and the logs byte for byte.
    counts = wm_origin.counts("/clip.wmv")
    assert (counts["DESCRIBE"], counts["SETUP"], counts["PLAY"], counts["TEARDOWN"]) == (1, 2, 1, 1)
    describe = next(r for r in wm_origin.requests if r.kind == "DESCRIBE")
    assert describe.header("User-Agent") == f"WMPlayer/11.0.5721.5145 guid/{result.guid}"
    assert "com.microsoft.wm.eosmsg" in describe.header("Supported")
    logs = {r.kind: r.body for r in wm_origin.logs}
    assert logs == {"LogConnect": fixture("logconnect_ms_rtsp_4_5_1.xml"),
                    "LogPlay": fixture("logplay_legacy_ms_rtsp_4_5_2.xml")}
    (event,) = wm_origin.send_events
    assert event.error is None and event.parsed.name == "remote-log"
    assert event.parsed.value("@.REMOTE_LOG") == fixture("rendering_log.xml").decode()
    assert wm_origin.wait_for(lambda: not wm_origin.client_sessions(), 5)


@pytest.mark.parametrize("named", ["none", "other"])
async def test_an_origin_naming_no_ssrc_or_another_one_leaves_a_udp_player_nothing_to_match(wm_origin, named):
    """setup_ssrc knob: SETUP answers name no ssrc, or one the RTP does not carry (WMS names the
    one it sends, 2.2.6.11); a WMP-like player on one UDP port pair then matches no packet."""
    wm_origin.setup_ssrc = named
    wm_origin.set_entry("/clip.wmv", seed="ssrc", duration_ms=500)
    result = await WMPlayer(wm_origin.url("/clip.wmv"), transport="udp").run()
    assert result.error is None, result.error
    records = wm_origin.setup_ssrcs
    assert len(records) == 2
    assert all(r.named is None if named == "none" else r.named not in (None, r.sent) for r in records)
    assert all(stream.packets == 0 for stream in result.entries[0].streams.values())
    assert set(result.unmatched) == {r.sent for r in records}


async def test_describe_headers_and_get_content_info(wm_origin):
    """2.2.7.2 / 3.2.5.3: DESCRIBE and GetContentInfo carry the same Cache-Control and validators;
    GetContentInfo has an empty body and no Supported; unknown URLs get 404."""
    entry = wm_origin.set_entry("/clip.wmv", seed="gci")
    size = entry.items[0].asf.size
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        describe = await raw.send("DESCRIBE", raw.url, [("Accept", "application/sdp")])
        gci = await raw.send("GET_PARAMETER", raw.url, [("Content-Type", "application/x-wms-getcontentinfo")],
                             b"\x00")
        missing = await raw.send("GET_PARAMETER", wm_origin.url("/nope.wmv"),
                                 [("Content-Type", "application/x-wms-getcontentinfo")], b"\x00")
    expected_cc = ("max-age=86399, public, proxy-revalidate, x-wms-content-size=%d, "
                   'x-wms-event-subscription="remote-log,remote-open,remote-close"' % size)
    assert describe.status == 200 and describe.content_type == "application/sdp"
    assert describe.header("Cache-Control") == expected_cc
    assert "com.microsoft.wm.fastcache" in describe.header("Supported")
    assert describe.header("X-Playlist-Gen-Id") == str(entry.items[0].gen_id)
    assert gci.status == 200 and gci.body == b"" and gci.header("Supported") is None
    assert gci.header("Cache-Control") == expected_cc
    assert (gci.header("Etag"), gci.header("Last-Modified")) == (describe.header("Etag"),
                                                                 describe.header("Last-Modified"))
    assert missing.status == 404
    assert wm_origin.count("GetContentInfo", "/clip.wmv") == 1


async def test_change_content_changes_validators_sdp_and_retires_the_gen_id(wm_origin):
    """Content changed: new ASF header in a=pgmpu, new Etag/Last-Modified/size; a SETUP naming the old
    X-Playlist-Gen-Id gets 412 (3.2.5.1)."""
    wm_origin.set_entry("/clip.wmv", seed="change")
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        before = await raw.send("DESCRIBE", raw.url)
        wm_origin.change_content("/clip.wmv")
        after = await raw.send("DESCRIBE", raw.url)
        stale = await raw.send("SETUP", raw.url + "/audio", [
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"),
            ("X-Playlist-Gen-Id", before.header("X-Playlist-Gen-Id"))])
        fresh = await raw.send("SETUP", raw.url + "/audio", [
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"),
            ("X-Playlist-Gen-Id", after.header("X-Playlist-Gen-Id"))])
    assert before.header("Etag") != after.header("Etag")
    assert before.header("Last-Modified") != after.header("Last-Modified")
    assert parse_sdp(before.body.decode()).asf_header != parse_sdp(after.body.decode()).asf_header
    assert stale.status == 412 and fresh.status == 200


async def test_two_entry_playlist_switches_with_eos_and_announce(wm_origin):
    """4.4.5 / 3.2.4.1-2: EndOfStream with End-Of-Playlist-Entry, then Announce with the next entry's
    SDP, a new X-Playlist-Gen-Id and its Cache-Control; the second entry plays after re-selection."""
    entry = wm_origin.set_entry("/pl.wsx", seed="first", playlist=("second",), duration_ms=1000)
    result = await WMPlayer(wm_origin.url("/pl.wsx"), speed=5).run()

    assert result.error is None
    first, second = result.entries
    assert b"End-Of-Playlist-Entry: true" in first.eos.body
    assert b"End-Of-Playlist-Entry" not in second.eos.body
    (announce,) = result.announces
    assert announce.content_type == "application/sdp"
    assert int(announce.header("X-Playlist-Gen-Id")) == entry.items[1].gen_id != entry.items[0].gen_id
    assert 'x-wms-stream-type="playlist"' in announce.header("Cache-Control")
    assert "playlist" in first.sdp.types and "lastentry" in second.sdp.types
    for index, got in enumerate((first, second)):
        for stream in (1, 2):
            assert got.streams[stream].asf_packets == _packets(wm_origin, "/pl.wsx", stream, index)
    sent = [(m.method, m.content_type) for m in wm_origin.sent_requests]
    assert sent == [("SET_PARAMETER", "application/x-wms-extension-cmd"), ("ANNOUNCE", "application/sdp"),
                    ("SET_PARAMETER", "application/x-wms-extension-cmd")]
    assert [r.status for r in wm_origin.client_responses] == [200, 200, 200]  # EOS, Announce, EOS answered
    assert wm_origin.count("LogPlay") == 2


@pytest.mark.parametrize("pipeline", [True, False])
async def test_arrival_and_answer_times_show_whether_select_streams_were_pipelined(wm_origin, pipeline):
    """3.1.4.5 / 4.4.5: after the Announce the player deselects the old streams and selects the new
    ones, pipelined (WMP) or one by one. The origin holds those answers until the batch of 4 has
    arrived (at most its hold timeout), so its recorded times tell the two apart: pipelined, each
    SelectStream arrived before the one before it was answered; one by one, after. The Play
    waits for every answer either way (3.1.5.16)."""
    wm_origin.select_stream_batch, wm_origin.select_hold_timeout_s = 4, 0.2
    wm_origin.set_entry("/pl.wsx", seed="probe", playlist=("next",), duration_ms=600)
    result = await WMPlayer(wm_origin.url("/pl.wsx"), speed=5, pipeline=pipeline).run()
    assert result.error is None, result.error
    selects, play = wm_origin.entry_change_select_streams()
    assert [r.kind for r in selects] == ["TEARDOWN", "TEARDOWN", "SETUP", "SETUP"]
    answers = [wm_origin.answer_to(r) for r in selects]
    assert [a.status for a in answers] == [200] * 4
    arrived_before_answer = [later.time < answer.time for later, answer in zip(selects[1:], answers)]
    assert arrived_before_answer == [pipeline] * 3
    assert play.time > max(a.time for a in answers)
    assert all(stream.asf_packets for stream in result.entries[1].streams.values())


async def test_stale_gen_id_on_play_is_412_but_the_previous_one_is_allowed(wm_origin):
    """3.2.5.1: Play and Teardown may name the previous entry; any other non-current id is stale."""
    entry = wm_origin.set_entry("/clip.wmv", seed="gen")
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        setup = await raw.send("SETUP", raw.url + "/video", [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        session = [("Session", setup.header("Session").split(";")[0])]
        stale = await raw.send("PLAY", raw.url, [*session, ("X-Playlist-Gen-Id", "7")])
        ok = await raw.send("PLAY", raw.url, [*session, ("X-Playlist-Gen-Id", str(entry.items[0].gen_id))])
    assert setup.status == 200 and setup.header("Session").endswith(";timeout=60")
    assert stale.status == 412 and ok.status == 200


async def test_fastcache_speed_delivers_faster_than_real_time(wm_origin):
    """2.2.6.10.2: with fastcache offered, Speed makes the origin send faster than real time."""
    wm_origin.set_entry("/clip.wmv", seed="fast", duration_ms=3000)
    started = time.monotonic()
    fast = await WMPlayer(wm_origin.url("/clip.wmv"), speed=10).run()
    fast_s = time.monotonic() - started
    started = time.monotonic()
    normal = await WMPlayer(wm_origin.url("/clip.wmv")).run()
    normal_s = time.monotonic() - started
    assert fast.error is None and normal.error is None
    assert fast.entries[0].play.header("Speed") == "10.000"
    assert fast_s < 1.5 < 2.5 < normal_s
    assert fast.entries[0].streams[2].asf_packets == normal.entries[0].streams[2].asf_packets


async def test_range_seeks_to_the_preceding_video_key_frame(wm_origin):
    """3.2.5.8 with Range npt: delivery starts at the last video key frame before the position."""
    wm_origin.set_entry("/clip.wmv", seed="seek", duration_ms=3000)
    result = await WMPlayer(wm_origin.url("/clip.wmv"), npt=1.5, speed=10).run()
    assert result.error is None
    assert "rtptime=1000" in result.entries[0].play.header("RTP-Info")
    video = result.entries[0].streams[2]
    assert video.send_times[0] == 1000
    keys = [p.data for p in wm_origin.entries["/clip.wmv"].items[0].asf.packets_for(2) if p.send_time == 1000]
    assert video.asf_packets[:len(keys)] == keys


async def test_broadcast_entry_is_live_and_splittable(wm_origin):
    """2.2.6.2.11-12, 2.2.5.2.6.1: broadcast Cache-Control and SDP; a joining player starts at a key frame."""
    wm_origin.set_entry("/live", seed="live", broadcast=True)
    result = await WMPlayer(wm_origin.url("/live"), stop_after_s=1.0, send_event=False).run()
    cc = result.describe.header("Cache-Control")
    assert 'x-wms-stream-type="broadcast"' in cc and "x-wms-proxy-split" in cc
    assert "x-wms-content-size" not in cc
    assert "broadcast" in result.entries[0].sdp.types
    video = result.entries[0].streams[2]
    assert video.packets > 0
    first = video.asf_packets[0]
    assert first[3 + 10] & 0x80  # stream byte of the first payload: key frame bit
    assert result.status("PAUSE") == [200] and result.status("TEARDOWN") == [200]


async def test_a_broadcast_playlist_moves_to_its_next_entry_when_the_test_ends_one(wm_origin):
    """2.2.6.2.12, 2.2.5.2.6, 3.2.4.1-2: a broadcast playlist is announced as broadcast and playlist;
    ending its entry sends EndOfStream with End-Of-Playlist-Entry, then the next entry's Announce
    (new X-Playlist-Gen-Id, lastentry), and the re-selected player plays the next entry live."""
    entry = wm_origin.set_entry("/bpl", seed="on-air", broadcast=True, playlist=("next-show",))
    player = WMPlayer(wm_origin.url("/bpl"), send_event=False)
    task = asyncio.create_task(player.run())
    assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("PLAY", "/bpl") == 1)
    assert await asyncio.to_thread(wm_origin.end_entry_now, "/bpl") == 1
    async with asyncio.timeout(10):  # the next entry's media reached the player
        while not (len(player.result.entries) == 2 and player.result.entries[1].streams
                   and all(s.packets for s in player.result.entries[1].streams.values())):
            await asyncio.sleep(0.05)  # polling the player's counters, bounded by the timeout
    assert await asyncio.to_thread(wm_origin.end_entry_now, "/bpl") == 1
    result = await task
    assert result.error is None, result.error
    assert 'x-wms-stream-type="broadcast,playlist"' in result.describe.header("Cache-Control")
    first, second = result.entries
    assert {"broadcast", "playlist"} <= set(first.sdp.types) and "lastentry" not in first.sdp.types
    assert {"broadcast", "playlist", "lastentry"} <= set(second.sdp.types)
    assert b"End-Of-Playlist-Entry: true" in first.eos.body
    assert b"End-Of-Playlist-Entry" not in second.eos.body
    assert second.gen_id == entry.items[1].gen_id != first.gen_id
    got = set(second.streams[2].asf_packets)
    assert got and got <= {p.data for p in entry.items[1].asf.packets_for(2)}


async def test_take_down_refuses_connections_and_bring_up_serves_again(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="down", duration_ms=500)
    url = wm_origin.url("/clip.wmv")
    wm_origin.take_down()
    with pytest.raises(OSError):
        await WMPlayer(url).run()
    wm_origin.bring_up()
    assert wm_origin.url("/clip.wmv") == url
    result = await WMPlayer(url, speed=5).run()
    assert result.error is None


async def test_bad_input_gets_a_protocol_error_and_the_origin_keeps_serving(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="bad", duration_ms=500)
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        raw.writer.write(b"THIS IS NOT RTSP\r\n\r\n")
        bad = await raw.response()
        async with Raw(raw.url) as other:
            pause = await other.send("PAUSE", raw.url, [("Session", "123")])
            unknown = await other.send("SET_PARAMETER", raw.url, [("Content-Type", "text/x-nonsense")], b"x")
    assert bad.status in (400, 505)
    assert pause.status == 454 and unknown.status == 451
    assert (await WMPlayer(raw.url, speed=5).run()).error is None


async def test_pause_in_ready_is_455(wm_origin):
    """3.2.5.11: Pause while READY (and not after an entry ended) is 455."""
    wm_origin.set_entry("/clip.wmv", seed="pause")
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        setup = await raw.send("SETUP", raw.url + "/audio", [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        pause = await raw.send("PAUSE", raw.url, [("Session", setup.header("Session").split(";")[0])])
    assert pause.status == 455


async def test_a_client_vanishing_mid_stream_ends_its_session_cleanly(wm_origin):
    """3.2.7.2 (simplified): the session goes away with its TCP connection; the origin keeps serving."""
    wm_origin.set_entry("/clip.wmv", seed="vanish", duration_ms=3000)
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        setup = await raw.send("SETUP", raw.url + "/video", [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        play = await raw.send("PLAY", raw.url, [("Session", setup.header("Session").split(";")[0])])
        assert play.status == 200
        assert wm_origin.wait_for(lambda: any(s["packets"].get(2) for s in wm_origin.client_sessions()), 5)
    assert wm_origin.wait_for(lambda: not wm_origin.client_sessions(), 5)
    assert wm_origin.count("PLAY", "/clip.wmv") == 1 and wm_origin.count("PLAY", "/clip") == 0
    assert (await WMPlayer(raw.url, speed=10).run()).error is None


async def test_cache_control_knobs_and_stable_gen_id(wm_origin):
    """Per-entry Cache-Control (3.2.7.5): max_age, a full override, and back to the default; re-setting
    identical content keeps X-Playlist-Gen-Id, changed content gets a new one."""
    first = wm_origin.set_entry("/clip.wmv", seed="knobs", max_age=5)
    same = wm_origin.set_entry("/clip.wmv", seed="knobs", max_age=5)
    assert same.gen_ids() == first.gen_ids() and same.etag == first.etag
    assert wm_origin.change_content("/clip.wmv").gen_ids() != first.gen_ids()
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        gci = [("Content-Type", "application/x-wms-getcontentinfo")]
        short = await raw.send("GET_PARAMETER", raw.url, gci, b"\x00")
        wm_origin.set_cache_control("/clip.wmv", "no-cache")
        forbidden = await raw.send("GET_PARAMETER", raw.url, gci, b"\x00")
        wm_origin.set_cache_control("/clip.wmv", None)
        default = await raw.send("GET_PARAMETER", raw.url, gci, b"\x00")
    assert short.header("Cache-Control").startswith("max-age=5, public, proxy-revalidate, x-wms-content-size=")
    assert forbidden.header("Cache-Control") == "no-cache"
    assert default.header("Cache-Control") == short.header("Cache-Control")


async def test_pause_then_play_without_range_resumes_where_it_stopped(wm_origin):
    """3.2.5.11 then 3.2.5.8: after PAUSE, a PLAY without Range continues from the pause point."""
    wm_origin.set_entry("/clip.wmv", seed="resume", duration_ms=3000)
    async with Raw(wm_origin.url("/clip.wmv")) as raw:
        setup = await raw.send("SETUP", raw.url + "/video", [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        session = [("Session", setup.header("Session").split(";")[0])]
        await raw.send("PLAY", raw.url, [*session, ("Range", "npt=0.000-")])
        assert wm_origin.wait_for(lambda: any(s["packets"].get(2, 0) >= 20 for s in wm_origin.client_sessions()), 5)
        pause = await raw.send("PAUSE", raw.url, session)
        resume = await raw.send("PLAY", raw.url, session)
    assert pause.status == 200 and resume.status == 200
    resumed_at = float(resume.header("Range").split("=")[1].split("-")[0])
    assert 0 < resumed_at < 3.0  # 20 video RTP packets are already past time 0
    assert f"rtptime={round(resumed_at * 1000)}" in resume.header("RTP-Info")


def test_play_blocking_runs_from_synchronous_code(wm_origin):
    from tests.wmorigin.player import play_blocking

    wm_origin.set_entry("/clip.wmv", seed="sync", duration_ms=500)
    result = play_blocking(wm_origin.url("/clip.wmv"), transport="udp", speed=5)
    assert result.error is None and result.entries[0].streams[1].packets > 0


@pytest.mark.parametrize("scheme", ["Basic", "Digest"])
def test_required_credentials_are_challenged_and_checked(wm_origin, scheme):
    from proxyd.rtsp.oneshot import rtsp_request

    wm_origin.set_entry("/clip.wmv", seed="auth")
    wm_origin.require_auth("alice", "pw", scheme=scheme)
    url = wm_origin.url("/clip.wmv")
    bare = rtsp_request(url, "DESCRIBE", [("Accept", "application/sdp")])
    assert bare.status == 401 and bare.headers.get("WWW-Authenticate").startswith(scheme)
    wrong = rtsp_request(url, "DESCRIBE", [("Accept", "application/sdp")], username="alice", password="nope")
    assert wrong.status == 401
    right = rtsp_request(url, "DESCRIBE", [("Accept", "application/sdp")], username="alice", password="pw")
    assert right.status == 200 and right.body.startswith(b"v=0")
    assert [r.authorized for r in wm_origin.requests] == [False, False, False, False, True]
