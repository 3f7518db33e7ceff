"""[MS-RTSP] 3.2.7.2 on a cache replay: after the player's TCP connection drops the replay stops
where it was; a new connection with the Session id resumes it from that position."""

from __future__ import annotations

import asyncio

import pytest

from proxyd.cache.replay import ReplaySession
from proxyd.rtsp.headers import parse_range
from tests.proxyd.runtime.test_e2e_lifecycle import eventually, proxy_url, running_proxy
from tests.proxyd.split.players import RecordingPlayer

pytestmark = pytest.mark.peers


async def test_cache_replay_reconnects_and_resumes_from_its_position(gst_origin, peer_players, tmp_path):
    async with running_proxy(gst_origin.url(), "--cache-dir", str(tmp_path / "cache"),
                             "--cache-ttl", "300", "--session-timeout", "30") as server:
        url = proxy_url(server, "clip")
        fill = await asyncio.to_thread(peer_players.ffmpeg_play, url, transport="tcp", decode=False)
        assert fill.ok, fill.describe()
        await eventually(lambda: any(k == "cache.changed" and d["state"] == "complete"
                                     for k, d in server.sink.events), what="cache entry committed")

        player = await RecordingPlayer.connect("127.0.0.1", server.port)
        await player.play_tcp(url)
        await player.wait_packets(0, 30)
        session = server.sessions[player.session]
        assert isinstance(session, ReplaySession)
        await player.close()
        await eventually(lambda: not server.context.connections, what="connection gone")
        assert session.state == "ready" and session.detached and session.pace_slot is None
        position = session.pos
        assert position > 0

        again = await RecordingPlayer.connect("127.0.0.1", server.port)
        again.session = player.session
        resp = await again.request("PLAY", url)
        assert resp.status == 200, resp
        assert parse_range(resp.headers.get("Range")).start > 0  # where it stopped, not from the start
        await again.wait_packets(0, 5)
        assert (await again.request("TEARDOWN", url)).status == 200
        await again.close()
        replays = [d for k, d in server.sink.events if k == "session.started" and d["served_from"] == "cache"]
        assert len(replays) == 1
        ended = [d for k, d in server.sink.events if k == "session.ended" and d["session_id"] == player.session]
        assert [d["end_reason"] for d in ended] == ["teardown"]
