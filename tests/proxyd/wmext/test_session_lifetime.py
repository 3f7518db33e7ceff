"""How long player and origin sessions live, through proxyd in front of the Windows Media test origin:
the Idle-Timeout of player sessions ([MS-RTSP] 3.2.2, 3.2.5.2, 3.2.6.2, 3.2.7.2), the upstream
Keepalive timer (3.1.2, 3.1.6.2), the origin going away (3.1.7.1), the last player of a split
leaving (3.1.4.10) and a cached entry replaced while a player still plays it (WMS ee126120)."""

from __future__ import annotations

import asyncio
import time

from proxyd.wm.messages import parse_end_of_stream_body
from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.wmext.harness import proxy_url, running_proxy
from tests.wmorigin.player import WMPlayer

IDLE = "2"  # --session-timeout (s): the Idle-Timeout announced to players


async def connected(server) -> RawPlayer:
    return await RawPlayer.connect("127.0.0.1", server.port)


async def test_an_idle_ready_session_is_reaped_and_its_origin_session_torn_down(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="idle", duration_ms=20_000)
    async with running_proxy(wm_origin.url(""), "--session-timeout", IDLE) as server:
        player = await connected(server)
        try:
            await player.setup_tcp(proxy_url(server, "/clip.wmv"))
            assert len(server.context.sessions) == 1
            assert await player.closed_by_server(timeout=4 * int(IDLE) + 5)  # no request: reaped
        finally:
            await player.close()
        assert server.context.sessions == {}
        assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.client_sessions() == [])
    assert wm_origin.count("TEARDOWN", "/clip.wmv") == 1


async def test_keepalives_hold_a_ready_session_and_tcp_media_holds_a_playing_one(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="alive", duration_ms=20_000)
    async with running_proxy(wm_origin.url(""), "--session-timeout", IDLE) as server:
        url = proxy_url(server, "/clip.wmv")
        ready, playing = await connected(server), await connected(server)
        try:
            base, _ = await ready.setup_tcp(url)
            await playing.play_tcp(url)
            for _ in range(3 * int(IDLE)):  # well past the Idle-Timeout, one KeepAlive a second
                assert (await ready.request("GET_PARAMETER", base)).status == 200  # KeepAlive (2.2.7.5)
                await asyncio.sleep(1)  # the time that passes is what is tested
            await playing.media_flowing()  # no request at all, but RTP over its TCP connection
            assert not await ready.closed_by_server(timeout=0) and not await playing.closed_by_server(timeout=0)
            assert len(server.context.sessions) == 2
        finally:
            await ready.close()
            await playing.close()


async def test_a_dropped_playing_player_resumes_its_session_on_a_new_connection(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="resume", duration_ms=20_000)
    async with running_proxy(wm_origin.url(""), "--session-timeout", "30") as server:
        url = proxy_url(server, "/clip.wmv")
        first = await connected(server)
        await first.play_tcp(url)
        await first.media_flowing()
        session = first.session
        await first.close()  # the TCP connection drops while PLAYING: READY, Idle-Timeout running
        assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("PAUSE", "/clip.wmv") == 1)
        again = await connected(server)
        try:
            again.session = session
            resumed = await again.request("PLAY", url, ("Range", "npt=0-"))
            assert resumed.status == 200 and resumed.headers.get("Session").split(";")[0] == session
            await again.media_flowing()
        finally:
            await again.close()
    assert wm_origin.count("PLAY", "/clip.wmv") == 2 and wm_origin.count("SETUP", "/clip.wmv") == 3  # audio, video, rtx


async def test_the_upstream_keepalive_timer_follows_the_origin_session_timeout(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="upstream-keepalive", duration_ms=20_000)
    # The origin announces timeout=60; 0.02 of it is 1.2 s, so the timer fires within the test.
    async with running_proxy(wm_origin.url(""), "--keepalive-fraction", "0.02") as server:
        player = await connected(server)
        try:
            await player.setup_tcp(proxy_url(server, "/clip.wmv"))  # READY upstream, no request from us
            assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("KeepAlive") >= 2)
        finally:
            await player.close()
    keepalives = [r for r in wm_origin.requests if r.kind == "KeepAlive"]
    assert all(r.header("Session") and r.header("User-Agent").startswith("WMCacheProxy/") for r in keepalives)
    assert keepalives[1].time - keepalives[0].time >= 1.0


async def test_the_origin_going_away_ends_players_and_marks_a_fill_incomplete(wm_origin, tmp_path):
    wm_origin.set_entry("/clip.wmv", seed="origin-gone", duration_ms=20_000)
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(tmp_path / "cache")) as server:
        sink = server.context.reporter
        player = WMPlayer(proxy_url(server, "/clip.wmv"), send_event=False, timeout=15)
        task = asyncio.create_task(player.run())
        await asyncio.wait_for(player.rtp_arrived.wait(), 10)
        began = time.monotonic()
        await asyncio.to_thread(wm_origin.take_down)
        result = await task
        assert time.monotonic() - began < 10
        await sink.wait_for(lambda: any(c["state"] == "incomplete" for c in sink.of("cache.changed")))
        assert server.context.sessions == {}
        assert server.strategies.cache.store.lookup(wm_origin.url("/clip.wmv")) is None
    assert result.error is None and parse_end_of_stream_body(result.entries[0].eos.body).eof  # not left waiting


async def test_the_last_split_player_leaving_tears_the_origin_down_with_remote_close(wm_origin):
    """The split's origin session still sends when its linger ends: Pause and our LogPlay first."""
    wm_origin.set_entry("/live", seed="split-end", broadcast=True)
    async with running_proxy(wm_origin.url(""), "--split-linger", "0.5") as server:
        sink = server.context.reporter
        url = proxy_url(server, "/live")
        results = await asyncio.gather(*(WMPlayer(url, stop_after_s=s, send_event=False).run() for s in (1.0, 1.5)))
        assert all(r.error is None for r in results), [r.error for r in results]
        assert await asyncio.to_thread(wm_origin.wait_for, lambda: wm_origin.count("TEARDOWN", "/live") == 1)
        await sink.wait_for(lambda: len([e for e in sink.of("sendevent") if e["event_type"] == "remote-close"]) == 2)
    assert wm_origin.count("PLAY", "/live") == 1
    stop = [r.kind for r in wm_origin.requests if r.kind in ("PAUSE", "LogPlay", "TEARDOWN")]
    assert stop == ["PAUSE", "LogPlay", "TEARDOWN"]  # 3.1.4.7 then 3.1.4.10, by the hub
    kinds = sorted(e["event_type"] for e in sink.of("sendevent") if e["event_type"] != "remote-log")
    assert kinds == ["remote-close", "remote-close", "remote-open", "remote-open"]  # one pair per player


async def test_a_cached_entry_replaced_while_played_keeps_that_player_and_leaves_one_copy(wm_origin, tmp_path):
    wm_origin.set_entry("/clip.wmv", seed="doomed", duration_ms=3000, max_age=3600)
    cache = tmp_path / "cache"
    async with running_proxy(wm_origin.url(""), "--cache-dir", str(cache)) as server:
        url = proxy_url(server, "/clip.wmv")
        sink = server.context.reporter
        first = await WMPlayer(url, speed=5, send_event=False).run()
        await sink.wait_for(lambda: any(c["state"] == "complete" for c in sink.of("cache.changed")))
        store = server.strategies.cache.store
        old = store.lookup(wm_origin.url("/clip.wmv"))
        reader = WMPlayer(url, send_event=False)  # real time: still playing when the entry is replaced
        reading = asyncio.create_task(reader.run())
        await asyncio.wait_for(reader.rtp_arrived.wait(), 10)
        wm_origin.change_content("/clip.wmv")
        store.update(old, expires_at=time.time() - 1)  # as if its max-age had passed
        changed = await WMPlayer(url, speed=5, send_event=False).run()  # GCI: changed -> purged, fetched again
        result = await reading
        await sink.wait_for(lambda: [c["state"] for c in sink.of("cache.changed")][-1] == "complete")
        new = store.lookup(wm_origin.url("/clip.wmv"))
    assert result.error is None and changed.error is None, (result.error, changed.error)
    assert result.entries[0].streams[2].asf_packets == first.entries[0].streams[2].asf_packets  # old copy, whole
    assert changed.entries[0].streams[2].asf_packets != first.entries[0].streams[2].asf_packets
    assert new.body["data_sha256"] != old.body["data_sha256"]
    assert len(list((cache / "entries").iterdir())) == 1  # the replaced copy's files are gone
