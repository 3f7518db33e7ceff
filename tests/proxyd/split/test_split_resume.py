"""[MS-RTSP] 3.2.7.2 on a live split: a player whose TCP connection drops stays a (paused) member of
the hub, and a new connection with its Session id resumes it on the channels it set up."""

from __future__ import annotations

import asyncio

import pytest

from proxyd.split.player import SplitSession
from tests.proxyd.runtime.test_e2e_lifecycle import eventually, proxy_url, running_proxy
from tests.proxyd.split.players import RecordingPlayer

pytestmark = pytest.mark.peers


async def test_split_player_reconnects_and_resumes(live_origin):
    async with running_proxy(live_origin.url("/"), "--live", "/vod", "--session-timeout", "30") as server:
        url = proxy_url(server, "live")
        player = await RecordingPlayer.connect("127.0.0.1", server.port)
        await player.play_tcp(url)
        await player.wait_packets(0, 5)
        session = server.sessions[player.session]
        assert isinstance(session, SplitSession)
        hub = session.hub
        await player.close()
        await eventually(lambda: not server.context.connections, what="connection gone")

        assert session.state == "ready" and session.detached and server.sessions[player.session] is session
        assert hub.players == {session} and hub.state != "ended"  # membership kept, paused
        assert not any(ps.playing for ps in session.streams) and session.member is None
        assert "session.ended" not in server.sink.kinds()

        again = await RecordingPlayer.connect("127.0.0.1", server.port)
        again.session = player.session
        resp = await again.request("PLAY", url)
        assert resp.status == 200 and resp.headers.get("Session").split(";")[0] == player.session
        await again.wait_packets(0, 5)  # on the new connection, same interleaved channels
        assert (await again.request("TEARDOWN", url)).status == 200
        await again.close()
        ended = [d for k, d in server.sink.events if k == "session.ended"]
        assert [d["end_reason"] for d in ended] == ["teardown"]
        started = [d for k, d in server.sink.events if k == "session.started"]
        assert len(started) == 1 and started[0]["served_from"] == "split"
