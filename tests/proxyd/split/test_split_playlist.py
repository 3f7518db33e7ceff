"""A split broadcast playlist moving to its next entry ([MS-RTSP] 3.1.5.13, 3.1.5.15, 3.1.4.5,
3.1.5.16.1 at the hub; 3.2.4.1-2 towards each player): the origin sees what one player would
cause, every player gets the Announce as its own and plays the new entry."""

from __future__ import annotations

import asyncio
import struct

import pytest

from proxyd.rtsp.headers import parse_rtp_info
from proxyd.wm.messages import parse_end_of_stream_body
from tests.proxyd.cache.test_e2e_playlist import RawPlayer
from tests.proxyd.split.test_split_wm import assert_starts_at_a_key_frame
from tests.wmorigin.fixtures import wm_origin  # noqa: F401 - fixture
from tests.wmorigin.player import WMPlayer

pytestmark = pytest.mark.peers


async def until_playing(players: list[WMPlayer], entries: int) -> None:
    """Every player has `entries` entries and RTP on each stream of the last one."""
    async with asyncio.timeout(15):
        while not all(len(p.result.entries) == entries and len(p.result.entries[-1].streams) == 2
                      and all(s.packets for s in p.result.entries[-1].streams.values()) for p in players):
            assert not any(p.result.error for p in players), [p.result.error for p in players]
            await asyncio.sleep(0.05)  # polling the players' counters, bounded by the timeout


def asf_packets(entry, index: int, stream: int) -> set[bytes]:
    return {p.data for p in entry.items[index].asf.packets_for(stream)}


async def test_a_split_broadcast_playlist_moves_every_player_to_the_next_entry(
        wm_origin, proxyd_process):  # noqa: F811
    entry = wm_origin.set_entry("/live", seed="bpl-one", broadcast=True, playlist=("bpl-two",))
    first_gen, next_gen = (str(g) for g in entry.gen_ids())
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    players = [WMPlayer(url, transport=t, send_event=False) for t in ("tcp", "udp", "tcp")]
    tasks = [asyncio.create_task(p.run()) for p in players]
    await until_playing(players, 1)
    assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1  # one origin session
    await until_playing(players, 2)
    describes = wm_origin.count("DESCRIBE", "/live")
    late = WMPlayer(url, send_event=False)  # joins during the second entry
    tasks.append(asyncio.create_task(late.run()))
    await until_playing([late], 1)
    assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
    results = await asyncio.gather(*tasks)

    # The origin saw one client: one Announce answered, the old streams deselected, the new ones
    # selected with the new generation, one Play naming the new entry without Range.
    eos_more, announce, eos_last = wm_origin.sent_requests
    assert announce.method == "ANNOUNCE" and announce.header("X-Playlist-Gen-Id") == next_gen
    answered = {r.cseq: r.status for r in wm_origin.client_responses}
    assert all(answered.get(m.cseq) == 200 for m in (eos_more, announce, eos_last))
    requests = [r for r in wm_origin.requests if r.kind in ("SETUP", "PLAY", "TEARDOWN", "LogPlay")]
    first_play, second_play = (i for i, r in enumerate(requests) if r.kind == "PLAY")
    change = requests[first_play + 1:second_play]
    assert [r.kind for r in change] == ["LogPlay"] + ["TEARDOWN"] * 3 + ["SETUP"] * 3  # audio, video, rtx
    assert all(r.header("X-Playlist-Gen-Id") == next_gen for r in change[1:])
    play = requests[second_play]
    assert play.header("X-Playlist-Seek-Id") == next_gen and play.header("Range") is None
    assert wm_origin.count("PLAY", "/live") == 2
    assert wm_origin.count("DESCRIBE", "/live") == describes  # the late joiner cost the origin nothing

    sessions = set()
    for result in results[:3]:
        assert result.error is None, result.error
        one, two = result.entries
        session = one.play.header("Session").split(";")[0]
        sessions.add(session)
        (relayed,) = result.announces
        assert relayed.header("Session") == session != announce.header("Session")
        assert relayed.uri == url and relayed.header("X-Playlist-Gen-Id") == next_gen
        assert two.sdp.control.startswith(url) and two.gen_id == int(next_gen)
        assert parse_end_of_stream_body(one.eos.body).end_of_playlist_entry
        assert two.play.status == 200 and two.play.header("X-Playlist-Gen-Id") == next_gen
        for number, stream in two.streams.items():  # the second entry's media, none of the first's
            got = set(stream.asf_packets)
            assert got and got <= asf_packets(entry, 1, number) and not got & asf_packets(entry, 0, number)
        assert_starts_at_a_key_frame(result, 1)
        final = parse_end_of_stream_body(two.eos.body)
        assert final.eof and not final.end_of_playlist_entry and final.session_id == session
        if result is results[0]:  # TCP, no loss: RTP-Info names its next packet (the origin's seq mapped)
            rtp_info = {e.url: e.seq for e in parse_rtp_info(two.eos.header("RTP-Info") or "")}
            assert rtp_info == {s.url: (s.first_seq + s.packets) & 0xFFFF for s in two.streams.values()}
        assert result.status("TEARDOWN") == [200] * 3  # two streams deselected, then the session
    assert len(sessions) == 3

    (late_result,) = results[3:]
    assert late_result.error is None, late_result.error
    assert late_result.describe.header("X-Playlist-Gen-Id") == next_gen  # the current entry's SDP
    assert len(late_result.entries) == 1
    for number, stream in late_result.entries[0].streams.items():
        assert set(stream.asf_packets) <= asf_packets(entry, 1, number)
    assert_starts_at_a_key_frame(late_result)
    assert first_gen != next_gen


async def test_a_split_player_naming_the_ended_entry_is_412_with_the_current_one(
        wm_origin, proxyd_process):  # noqa: F811
    """[MS-RTSP] 3.2.5.1: a SETUP of a split naming the current entry is answered (by the hub,
    locally); one naming an entry that is no longer current gets 412 and the current id, the
    first SETUP too (no session then, the connection stays usable)."""
    entry = wm_origin.set_entry("/live", seed="bpl-stale", broadcast=True, playlist=("bpl-fresh",))
    first_gen, next_gen = (str(g) for g in entry.gen_ids())
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    playing = WMPlayer(url, send_event=False)
    task = asyncio.create_task(playing.run())
    await until_playing([playing], 1)
    async with RawPlayer(url) as late:
        describe = await late.request("DESCRIBE", url, [("Accept", "application/sdp")])
        assert describe.header("X-Playlist-Gen-Id") == first_gen
        assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
        await until_playing([playing], 2)
        setups = wm_origin.count("SETUP", "/live")
        first = await late.request("SETUP", f"{url}/audio", [
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"), ("X-Playlist-Gen-Id", first_gen)])
        assert first.status == 412 and first.header("X-Playlist-Gen-Id") == next_gen
        assert first.header("Session") is None and late.session == ""
        fresh = await late.request("SETUP", f"{url}/audio", [
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"), ("X-Playlist-Gen-Id", next_gen)])
        assert fresh.status == 200 and fresh.header("X-Playlist-Gen-Id") == next_gen
        stale = await late.request("SETUP", f"{url}/video", [
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3"), ("X-Playlist-Gen-Id", first_gen)])
        assert stale.status == 412 and stale.header("X-Playlist-Gen-Id") == next_gen
        assert wm_origin.count("SETUP", "/live") == setups
    assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
    assert (await task).error is None


async def test_a_player_that_does_not_reselect_keeps_receiving_on_the_same_ssrc_and_numbering(
        wm_origin, proxyd_process):  # noqa: F811
    """A player that ignores the Announce (no deselect, SETUP or PLAY) stays in the fan-out: the
    new entry's RTP reaches it on the SSRC its SETUP named, its sequence numbers continuing."""
    wm_origin.set_entry("/live", seed="bpl-keep", broadcast=True, playlist=("bpl-on",))
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    async with RawPlayer(url) as player:
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        await player.setup_all(describe.body, describe.header("X-Playlist-Gen-Id"))
        assert (await player.request("PLAY", url, [("Range", "npt=0.000-")])).status == 200
        video = []  # (seq, ssrc, arrived after the Announce) of the video stream's RTP (channel 2)
        announced = ended = False
        async with asyncio.timeout(15):
            while sum(after for *_, after in video) < 20:
                item = await player.next_item()
                if getattr(item, "method", None) == "ANNOUNCE":
                    announced = True
                elif getattr(item, "channel", None) == 2:
                    video.append((*struct.unpack_from("!HxxxxI", item.payload, 2), announced))
                if len(video) >= 10 and not ended:
                    ended = True
                    assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
    assert {ssrc for _, ssrc, _ in video} == {video[0][1]}
    seqs = [seq for seq, _, _ in video]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:])), seqs
    assert wm_origin.count("PLAY", "/live") == 2  # what came after the Announce is the next entry's


async def test_after_the_final_end_of_stream_the_hub_and_its_players_stay_ready(
        wm_origin, proxyd_process):  # noqa: F811
    """[MS-RTSP] 3.1.5.13 steps 4-6 at the hub: after the playlist's final EndOfStream the origin
    session is READY and logged (LogPlay per entry): no media is no stall (no reconnect while
    players stay attached), and ending the split sends Teardown without Pause. Each player gets the
    EndOfStream as its own and is READY (it may select a stream again)."""
    wm_origin.set_entry("/live", seed="bpl-end", broadcast=True, playlist=("bpl-last",))
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, extra_args=[
        "--split-media-timeout", "0.5", "--keepalive-fraction", "0.02", "--split-linger", "0.1"])
    url = proxy.url("/wm/live")
    async with RawPlayer(url) as player:
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        await player.setup_all(describe.body, describe.header("X-Playlist-Gen-Id"))
        assert (await player.request("PLAY", url, [("Range", "npt=0.000-")])).status == 200
        for more_entries in (True, False):
            async with asyncio.timeout(10):  # this entry's media reaches the player before it ends
                seen = player.rtp_packets
                while player.rtp_packets < seen + 10:
                    await player.next_item()
            assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
            eos = parse_end_of_stream_body((await player.server_request("SET_PARAMETER")).body)
            assert eos.session_id == player.session and eos.end_of_playlist_entry == more_entries
            if more_entries:  # ignored: the player stays in the fan-out and gets the next entry
                await player.server_request("ANNOUNCE")
        assert eos.eof
        keepalives = wm_origin.count("KeepAlive", "/live")
        # two keepalives later (each >= 1 s apart) the media timeout (0.5 s) has passed with no media
        assert await asyncio.to_thread(
            wm_origin.wait_for, lambda: wm_origin.count("KeepAlive", "/live") >= keepalives + 2)
        assert (wm_origin.count("DESCRIBE", "/live"), wm_origin.count("PLAY", "/live")) == (1, 2)
        assert len(wm_origin.client_sessions()) == 1
        # READY: a deselected stream may be selected again (455 while PLAYING)
        assert (await player.request("TEARDOWN", f"{url}/audio")).status == 200
        again = await player.request("SETUP", f"{url}/audio", [
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        assert again.status == 200
        assert (await player.request("TEARDOWN", url)).status == 200
    assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.client_sessions() == [])
    assert wm_origin.count("PAUSE", "/live") == 0 and wm_origin.count("LogPlay", "/live") == 2
    assert wm_origin.requests[-1].method == "TEARDOWN"


async def test_after_an_origin_reconnect_the_hub_takes_the_entry_the_new_describe_names(
        wm_origin, proxyd_process):  # noqa: F811
    """A hub that moved to the next entry, then lost its origin session, reconnects with a
    DESCRIBE: the entry that DESCRIBE names (the test origin starts its playlist again for a new
    session) is the hub's from then on: joiners are described it and SETUPs are checked against
    its X-Playlist-Gen-Id."""
    entry = wm_origin.set_entry("/live", seed="bpl-again", broadcast=True, playlist=("bpl-then",))
    first_gen, next_gen = (str(g) for g in entry.gen_ids())
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    async with RawPlayer(url) as player:
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        await player.setup_all(describe.body, first_gen)
        assert (await player.request("PLAY", url, [("Range", "npt=0.000-")])).status == 200
        async with asyncio.timeout(10):
            while player.rtp_packets == 0:
                await player.next_item()
        assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
        assert (await player.server_request("ANNOUNCE")).header("X-Playlist-Gen-Id") == next_gen
        assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("PLAY", "/live") == 2)
        wm_origin.take_down()  # the hub's origin connection is dropped
        wm_origin.bring_up()
        assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("PLAY", "/live") == 3)
        assert wm_origin.count("DESCRIBE", "/live") == 2  # the first player's, the reconnect's
        async with RawPlayer(url) as late:
            joined = await late.request("DESCRIBE", url, [("Accept", "application/sdp")])
            assert joined.header("X-Playlist-Gen-Id") == first_gen
            stale = await late.request("SETUP", f"{url}/audio", [
                ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"), ("X-Playlist-Gen-Id", next_gen)])
            assert stale.status == 412 and stale.header("X-Playlist-Gen-Id") == first_gen
            await late.setup_all(joined.body, first_gen)
        assert wm_origin.count("DESCRIBE", "/live") == 2  # the late joiner cost the origin nothing
