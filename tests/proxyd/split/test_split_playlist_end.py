"""A split broadcast playlist at its end and across an origin reconnect ([MS-RTSP] 3.1.5.13,
3.2.4.1-2): a finished hub takes no new player and plays no more; a reconnect that lands on
another entry moves the attached players to it as an entry change would."""

from __future__ import annotations

import asyncio

import pytest

from proxyd.wm.messages import parse_end_of_stream_body
from tests.proxyd.cache.test_e2e_playlist import RawPlayer
from tests.proxyd.split.test_split_peers import wait_log
from tests.wmorigin.fixtures import wm_origin  # noqa: F401 - fixture

pytestmark = pytest.mark.peers


def stream_urls(sdp_body: bytes, url: str) -> list[str]:
    controls = [line[len("a=control:"):] for line in sdp_body.decode().splitlines()
                if line.startswith("a=control:")]
    return [c if "://" in c else f"{url}/{c}" for c in controls if c.rstrip("/") != url.rstrip("/")]


async def receive_rtp(player: RawPlayer, packets: int = 10) -> None:
    async with asyncio.timeout(10):
        seen = player.rtp_packets
        while player.rtp_packets < seen + packets:
            await player.next_item()


async def start_playing(player: RawPlayer, url: str) -> str:
    """DESCRIBE, SETUP every stream and PLAY; RTP arrives. Returns the entry's X-Playlist-Gen-Id."""
    describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
    assert describe.status == 200
    gen_id = describe.header("X-Playlist-Gen-Id")
    await player.setup_all(describe.body, gen_id)
    assert (await player.request("PLAY", url, [("Range", "npt=0.000-")])).status == 200
    await receive_rtp(player)
    return gen_id


async def play_to_the_end(wm_origin, player: RawPlayer, url: str) -> None:  # noqa: F811
    """Play both entries of the broadcast playlist until its final EndOfStream."""
    await start_playing(player, url)
    for more_entries in (True, False):
        assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
        eos = parse_end_of_stream_body((await player.server_request("SET_PARAMETER")).body)
        assert eos.eof and eos.end_of_playlist_entry == more_entries
        if more_entries:  # ignored: the player stays in the fan-out and gets the next entry
            await player.server_request("ANNOUNCE")
            await receive_rtp(player)


async def test_a_finished_split_broadcast_takes_no_joiner_and_refuses_play(
        wm_origin, proxyd_process):  # noqa: F811
    """After the final EndOfStream the split is finished: a READY player's PLAY gets 455 (nothing
    follows in its session), and a new player's DESCRIBE starts a new split (one new DESCRIBE at
    the origin, as one player causes) that plays."""
    wm_origin.set_entry("/live", seed="fin-one", broadcast=True, playlist=("fin-two",))
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    async with RawPlayer(url) as player:
        await play_to_the_end(wm_origin, player, url)
        again = await player.request("PLAY", url, [("Range", "npt=0.000-")])
        assert again.status == 455
        assert (wm_origin.count("DESCRIBE", "/live"), wm_origin.count("PLAY", "/live")) == (1, 2)
        async with RawPlayer(url) as fresh:
            await start_playing(fresh, url)
        assert (wm_origin.count("DESCRIBE", "/live"), wm_origin.count("PLAY", "/live")) == (2, 3)
        assert (await player.request("TEARDOWN", url)).status == 200


async def test_a_reconnect_on_another_entry_moves_the_players_to_it(
        wm_origin, proxyd_process):  # noqa: F811
    """The hub's origin session is lost while it plays the second entry; the reconnect's DESCRIBE
    names the first (the test origin starts its playlist again). Each attached player gets an
    EndOfStream (End-Of-Playlist-Entry) of the entry it played and an Announce of this one as its
    own, reselects (answered locally) and plays it."""
    entry = wm_origin.set_entry("/live", seed="rec-one", broadcast=True, playlist=("rec-two",))
    first_gen, next_gen = (str(g) for g in entry.gen_ids())
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    async with RawPlayer(url) as player:
        await start_playing(player, url)
        assert await asyncio.to_thread(wm_origin.end_entry_now, "/live") == 1
        await player.server_request("SET_PARAMETER")
        assert (await player.server_request("ANNOUNCE")).header("X-Playlist-Gen-Id") == next_gen
        await receive_rtp(player)
        wm_origin.take_down()  # the hub's origin connection is dropped
        wm_origin.bring_up()

        eos = await player.server_request("SET_PARAMETER")
        ended = parse_end_of_stream_body(eos.body)
        assert ended.eof and ended.end_of_playlist_entry and ended.session_id == player.session
        assert eos.header("X-Playlist-Gen-Id") == next_gen and eos.header("Session") == player.session
        announce = await player.server_request("ANNOUNCE")
        assert announce.header("X-Playlist-Gen-Id") == first_gen
        assert announce.header("Session") == player.session and announce.uri == url
        urls = stream_urls(announce.body, url)
        assert urls and all(u.startswith(url) for u in urls)
        for stream_url in urls:  # deselect the ended entry's streams, select this one's
            assert (await player.request("TEARDOWN", stream_url, [("X-Playlist-Gen-Id", first_gen)])).status == 200
        await player.setup_all(announce.body, first_gen)
        play = await player.request("PLAY", url, [("X-Playlist-Seek-Id", first_gen)])
        assert play.status == 200 and play.header("X-Playlist-Gen-Id") == first_gen
        await receive_rtp(player)
    assert wm_origin.count("DESCRIBE", "/live") == 2  # the player's, the reconnect's


async def test_an_origin_drop_after_the_final_end_of_stream_is_not_reconnected(
        wm_origin, proxyd_process):  # noqa: F811
    """A finished split whose origin connection drops does not reconnect or PLAY again: its players
    stay READY and it ends with the last of them (no linger: no one may join it)."""
    wm_origin.set_entry("/live", seed="drop-one", broadcast=True, playlist=("drop-two",))
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, extra_args=["--split-linger", "60"])
    url = proxy.url("/wm/live")
    async with RawPlayer(url) as player:
        await play_to_the_end(wm_origin, player, url)
        wm_origin.take_down()
        wm_origin.bring_up()  # a reconnect would succeed
        await asyncio.to_thread(wait_log, proxy, "after the final EndOfStream (origin closed the connection); "
                                                 "not reconnecting")
        assert (await player.request("GET_PARAMETER", url)).status == 200  # still its session
        assert (await player.request("TEARDOWN", url)).status == 200
    await asyncio.to_thread(wait_log, proxy, "ended: no players")
    assert (wm_origin.count("DESCRIBE", "/live"), wm_origin.count("PLAY", "/live")) == (1, 2)
