"""EndOfStream and server-side playlists through the relay ([MS-RTSP] 2.2.7.3, 3.2.4.1-2, 4.4.5,
3.2.5.1 step 3) and proxyd's own EndOfStream for entries it plays from cache (3.2.4.1)."""

from __future__ import annotations

from proxyd.rtsp.events import Headers, Request
from proxyd.wm.messages import parse_end_of_stream_body
from proxyd.wmext.playlist import generation_mismatch, send_end_of_stream
from tests.proxyd.wmext.harness import proxy_url, rtsp_exchange, running_proxy
from tests.wmorigin.player import WMPlayer


async def test_end_of_stream_is_relayed_with_the_players_session_and_urls(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="eos", duration_ms=800)
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/clip.wmv")
        result = await WMPlayer(url, speed=5, send_event=False).run()
    assert result.error is None, result.error
    eos = result.entries[0].eos
    (origin_eos,) = [m for m in wm_origin.sent_requests if m.method == "SET_PARAMETER"]
    player_session = eos.header("Session")
    assert player_session != origin_eos.header("Session")
    assert parse_end_of_stream_body(eos.body).session_id == player_session
    assert parse_end_of_stream_body(eos.body).eof
    assert eos.header("X-Notice") == '2101 "End-of-Stream Reached"'
    assert eos.header("X-Playlist-Gen-Id") == origin_eos.header("X-Playlist-Gen-Id")
    assert eos.uri.startswith(url)
    rtp_info = eos.header("RTP-Info")
    assert rtp_info.count("url=" + url) == 2 and "seq=" in rtp_info


async def test_two_entry_playlist_plays_through_the_relay(wm_origin):
    entry = wm_origin.set_entry("/pl.wsx", seed="first", playlist=("second",), duration_ms=800)
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/pl.wsx")
        result = await WMPlayer(url, speed=5, send_event=False).run()
    assert result.error is None, result.error
    first, second = result.entries
    assert b"End-Of-Playlist-Entry: true" in first.eos.body
    (announce,) = result.announces
    assert int(announce.header("X-Playlist-Gen-Id")) == entry.items[1].gen_id
    assert 'x-wms-stream-type="playlist"' in announce.header("Cache-Control")
    assert second.sdp.control.startswith(url)  # Announce SDP control URLs point at the proxy
    assert second.streams[2].asf_packets


async def test_stale_generation_id_is_412_through_the_relay(wm_origin):
    entry = wm_origin.set_entry("/clip.wmv", seed="gen")
    async with running_proxy(wm_origin.url("")) as server:
        url = proxy_url(server, "/clip.wmv")
        stale = await rtsp_exchange(url, "DESCRIBE", [("X-Playlist-Gen-Id", "7")])
        fresh = await rtsp_exchange(url, "DESCRIBE", [("X-Playlist-Gen-Id", str(entry.items[0].gen_id))])
    assert (stale.status, fresh.status) == (412, 200)


def test_generation_mismatch_rule():
    def req(method, gen):
        return Request(method, "rtsp://h/x", Headers([("X-Playlist-Gen-Id", gen)] if gen else []))

    assert generation_mismatch(req("SETUP", "5"), current=5) is None
    assert generation_mismatch(req("SETUP", "4"), current=5, previous=4).status == 412
    assert generation_mismatch(req("PLAY", "4"), current=5, previous=4) is None  # Play may name the previous
    assert generation_mismatch(req("TEARDOWN", "3"), current=5, previous=4).status == 412
    assert generation_mismatch(req("SETUP", "0"), current=5) is None and generation_mismatch(req("SETUP", None), 5) is None
    assert generation_mismatch(req("SETUP", "x1"), current=5).status == 400
    assert generation_mismatch(req("SETUP", "99999999999"), current=5).status == 400


class _Player:
    def __init__(self):
        self.sent = []

    def send_server_request(self, request):
        self.sent.append(request)


class _Target:
    origin_url = "rtsp://origin/pl.wsx"

    def to_player(self, url):
        return url.replace("rtsp://origin", "rtsp://proxy/wm")


class _Session:
    id = "1234567890123456"
    player, target = _Player(), _Target()
    presentation_url = "rtsp://origin/pl.wsx"  # PlayerSession.presentation_url


def test_own_end_of_stream_for_an_entry_played_from_cache():
    session = _Session()
    send_end_of_stream(session, [("rtsp://proxy/wm/pl.wsx/audio", 70000), ("rtsp://proxy/wm/pl.wsx/video", 12)],
                       playlist_gen_id=42, more_entries=True)
    (eos,) = session.player.sent
    assert (eos.method, eos.uri) == ("SET_PARAMETER", "rtsp://proxy/wm/pl.wsx")
    assert eos.headers.get("Content-Type") == "application/x-wms-extension-cmd"
    assert eos.headers.get("X-Playlist-Gen-Id") == "42" and eos.headers.get("Session") == session.id
    assert eos.headers.get("RTP-Info") == ("url=rtsp://proxy/wm/pl.wsx/audio;seq=4464, "
                                           "url=rtsp://proxy/wm/pl.wsx/video;seq=12")
    parsed = parse_end_of_stream_body(eos.body)
    assert parsed.eof and parsed.end_of_playlist_entry and parsed.session_id == session.id


async def test_relayed_entry_change_logs_upstream_then_switches_streams_with_the_seek_id(wm_origin):
    """[MS-RTSP] 3.1.5.13, 3.1.5.15, 3.1.4.5, 3.1.5.16.1 at the client role of a relayed playlist:
    EndOfStream and Announce answered, the ended entry logged (LogPlay) before the new entry's
    SelectStreams (old streams' TEARDOWN, new SETUPs) and its Play naming the new entry, without the
    player's Range (3.1.5.16.1)."""
    entry = wm_origin.set_entry("/pl.wsx", seed="one", playlist=("two",), duration_ms=800)
    async with running_proxy(wm_origin.url("")) as server:
        result = await WMPlayer(proxy_url(server, "/pl.wsx"), speed=5, send_event=False, npt=0.2).run()
    assert result.error is None, result.error
    sent = wm_origin.sent_requests
    answered = {r.cseq: r.status for r in wm_origin.client_responses}
    assert [m.method for m in sent] == ["SET_PARAMETER", "ANNOUNCE", "SET_PARAMETER"]
    assert all(answered.get(m.cseq) == 200 for m in sent)
    kinds = [r.kind for r in wm_origin.requests if r.kind in ("PLAY", "PAUSE", "LogPlay", "TEARDOWN", "SETUP")]
    first_play, second_play = (i for i, k in enumerate(kinds) if k == "PLAY")
    between = kinds[first_play + 1:second_play]
    assert between[0] == "LogPlay" and between.count("LogPlay") == 1  # ours, the player's stays local
    assert between[1:] == ["TEARDOWN"] * 2 + ["SETUP"] * 2  # audio and video of each entry
    first, play = [r for r in wm_origin.requests if r.kind == "PLAY"]
    # a Play in READY seeks with its Range (3.1.5.9.1); the one after the Announce has none (3.1.5.16.1)
    assert first.header("X-Playlist-Seek-Id") == str(entry.items[0].gen_id)
    assert first.header("Range") == "npt=0.200-"
    assert play.header("X-Playlist-Seek-Id") == str(entry.items[1].gen_id)
    assert play.header("Range") is None
    assert kinds[second_play + 1:] == ["TEARDOWN"]  # the last entry ended READY: no Pause, no log


async def test_pipelined_select_streams_are_relayed_upstream_pipelined(wm_origin):
    """[MS-RTSP] 3.1.4.5, 4.4.5 at the client role of a relayed playlist: the player pipelines its
    SelectStreams for the next entry (the old streams' TEARDOWNs, the new SETUPs); proxyd relays
    each upstream without waiting for the origin's answer to the one before (the origin got request
    N+1 before it answered request N), answers the player in its CSeq order, and sends the Play
    once all are answered (3.1.5.16). The new SETUPs run while the old streams still exist: each
    gets its own upstream channels and the new entry plays on both streams."""
    wm_origin.select_stream_batch = 4  # the origin answers none of them before all 4 arrived
    entry = wm_origin.set_entry("/pl.wsx", seed="piped", playlist=("next",), duration_ms=800)
    async with running_proxy(wm_origin.url(""), "--origin-transport", "tcp") as server:
        result = await WMPlayer(proxy_url(server, "/pl.wsx"), speed=5, send_event=False, pipeline=True).run()
    assert result.error is None, result.error
    selects, play = wm_origin.entry_change_select_streams()
    assert [(r.kind, r.path) for r in selects] == [("TEARDOWN", "/pl.wsx/audio"), ("TEARDOWN", "/pl.wsx/video"),
                                                   ("SETUP", "/pl.wsx/audio"), ("SETUP", "/pl.wsx/video")]
    answers = [wm_origin.answer_to(r) for r in selects]
    assert [a.status for a in answers] == [200] * 4
    assert all(later.time < answer.time for later, answer in zip(selects[1:], answers))
    assert play.time > max(a.time for a in answers)
    assert play.header("X-Playlist-Seek-Id") == str(entry.items[1].gen_id)
    first_channels = {r.header("Transport") for r in wm_origin.requests[:4] if r.kind == "SETUP"}
    channels = {r.header("Transport") for r in selects[2:]}
    assert len(channels) == 2 and not channels & first_channels  # the old streams still held theirs
    cseqs = [r.cseq for _, r in result.responses]
    assert cseqs == sorted(cseqs)  # the player's answers in its order
    assert all(stream.asf_packets for stream in result.entries[1].streams.values())


async def test_a_pipelining_player_plays_a_cached_playlist_from_the_cache(wm_origin, tmp_path):
    """A cache session has no upstream to pipeline to: proxyd takes the player's pipelined
    SelectStreams one by one, answers them in its order, and both entries play from the cache."""
    wm_origin.set_entry("/pl.wsx", seed="cached", playlist=("cached2",), duration_ms=800)
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache")) as server:
        url = proxy_url(server, "/pl.wsx")
        fill = await WMPlayer(url, speed=5, send_event=False).run()
        sink = server.context.reporter
        await sink.wait_for(lambda: any(c["state"] == "complete" for c in sink.of("cache.changed")))
        wm_origin.take_down()
        hit = await WMPlayer(url, speed=5, send_event=False, pipeline=True).run()
    assert fill.error is None and hit.error is None, (fill.error, hit.error)
    assert hit.status("TEARDOWN")[:2] == [200, 200] and hit.status("SETUP")[2:] == [200, 200]
    assert [[s.asf_packets for s in entry.streams.values()] for entry in hit.entries] == \
        [[s.asf_packets for s in entry.streams.values()] for entry in fill.entries]
