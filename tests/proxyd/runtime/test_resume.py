"""[MS-RTSP] 3.2.7.2 (checklist item 51) for the relay: a READY or PLAYING session outlives its
player's TCP connection (RTP stops, READY, Idle-Timeout), a new connection from the same address
resumes it with its Session id, another address gets 454; a drop in INIT leaves nothing behind.
The expiry after the Idle-Timeout is in test_e2e_lifecycle.py."""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxyd.net.udp import bind_port_pair, open_fd_count
from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.runtime.test_e2e_lifecycle import eventually, idle_state, proxy_url, running_proxy

pytestmark = pytest.mark.peers


async def connect(server, source: str = "127.0.0.1", session: str | None = None) -> RawPlayer:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))
    player = RawPlayer(reader, writer)
    player.session = session
    return player


async def drop(server, player: RawPlayer) -> None:
    """Close the player's connection without TEARDOWN; returns once proxyd has seen it go."""
    before = len(server.context.connections)
    await player.close()
    await eventually(lambda: len(server.context.connections) < before, what="connection gone")


async def resumes(server, player: RawPlayer, url: str) -> None:
    resp = await player.request("PLAY", url)
    assert resp.status == 200, resp
    assert resp.headers.get("Session").split(";")[0] == player.session
    async with asyncio.timeout(10):  # video on the interleaved channels set up before the drop
        while not player.frames.get(0):
            player.frame_seen.clear()
            await player.frame_seen.wait()


async def origin_methods(origin, after: int, until: str) -> list[str]:
    await asyncio.to_thread(origin.wait_until, lambda _: origin.requests(until, after=after), 10)
    return [e["method"] for e in origin.requests(after=after)]


async def test_tcp_player_reconnects_and_resumes_its_relay_session(gst_origin):
    async with running_proxy(gst_origin.url(), "--origin-transport", "udp", "--session-timeout", "30") as server:
        url = proxy_url(server, "clip")
        player = await connect(server)
        await player.play_tcp(url)
        await asyncio.wait_for(player.frame_seen.wait(), 10)
        session_id, mark = player.session, gst_origin.mark()
        await drop(server, player)

        session = server.sessions[session_id]
        assert session.state == "ready" and session.detached
        assert all(s.player_writer is None for s in session.streams)  # no RTP for nobody
        assert "session.ended" not in server.sink.kinds()
        assert len(gst_origin.open_sessions()) == 1

        again = await connect(server, session=session_id)
        await resumes(server, again, url)
        assert session.state == "playing" and not session.detached
        methods = await origin_methods(gst_origin, mark, "PLAY")
        assert "PAUSE" in methods and "TEARDOWN" not in methods  # READY at the origin while away
        assert (await again.request("TEARDOWN", url)).status == 200
        await again.close()
        kinds = server.sink.kinds()
        assert kinds.count("session.started") == 1 and kinds.count("session.ended") == 1
        assert server.sink.events[-1][1]["end_reason"] == "teardown"


async def test_udp_player_resumes_to_the_same_client_ports(gst_origin):
    got = asyncio.Event()

    class Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr) -> None:
            got.set()

    loop = asyncio.get_running_loop()
    rtp_sock, rtcp_sock = bind_port_pair("127.0.0.1", 30000, 40000)
    rtp, _ = await loop.create_datagram_endpoint(Receiver, sock=rtp_sock)
    rtcp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=rtcp_sock)
    ports = f"{rtp_sock.getsockname()[1]}-{rtcp_sock.getsockname()[1]}"
    try:
        async with running_proxy(gst_origin.url(), "--session-timeout", "30") as server:
            url = proxy_url(server, "clip")
            player = await connect(server)
            assert (await player.request("DESCRIBE", url)).status == 200
            setup = await player.request("SETUP", url + "/stream=0",
                                         ("Transport", f"RTP/AVP;unicast;client_port={ports}"))
            assert setup.status == 200, setup
            player.session = setup.headers.get("Session").split(";")[0]
            assert (await player.request("PLAY", url)).status == 200
            await asyncio.wait_for(got.wait(), 10)
            await drop(server, player)
            session = server.sessions[player.session]
            assert session.state == "ready" and session.streams[0].player_rtp_addr is None

            got.clear()
            again = await connect(server, session=player.session)
            assert (await again.request("PLAY", url)).status == 200
            await asyncio.wait_for(got.wait(), 10)
            assert (await again.request("TEARDOWN", url)).status == 200
            await again.close()
    finally:
        rtp.close()
        rtcp.close()


async def test_another_address_gets_454_and_the_session_stays(gst_origin, caplog):
    async with running_proxy(gst_origin.url(), "--session-timeout", "30") as server:
        url = proxy_url(server, "clip")
        player = await connect(server)
        await player.play_tcp(url)
        thief = await connect(server, source="127.0.0.2", session=player.session)
        assert (await thief.request("GET_PARAMETER", url)).status == 454  # the owner is still there
        await drop(server, player)
        with caplog.at_level(logging.WARNING, logger="proxyd"):
            assert (await thief.request("PLAY", url)).status == 454
        assert any("was created from 127.0.0.1: refused" in r.getMessage() for r in caplog.records)
        await thief.close()
        assert server.sessions[player.session].detached

        other = await connect(server, session=player.session)  # same address, another presentation
        assert (await other.request("PLAY", proxy_url(server, "other"))).status == 454
        await resumes(server, other, url)
        await other.close()


async def test_drop_in_init_leaves_nothing_and_a_ready_session_waits(gst_origin):
    async with running_proxy(gst_origin.url(), "--session-timeout", "30") as server:
        fds, tasks = open_fd_count(), set(asyncio.all_tasks())
        url = proxy_url(server, "clip")
        describing = await connect(server)
        assert (await describing.request("DESCRIBE", url)).status == 200
        await drop(server, describing)
        await eventually(lambda: idle_state(server, fds, tasks), what="nothing lingers after INIT")
        assert not gst_origin.open_sessions()

        ready = await connect(server)
        assert (await ready.request("DESCRIBE", url)).status == 200
        for i in range(2):
            setup = await ready.request("SETUP", f"{url}/stream={i}",
                                        ("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"))
            assert setup.status == 200, setup
            ready.session = setup.headers.get("Session").split(";")[0]
        await drop(server, ready)
        assert server.sessions[ready.session].state == "ready"
        assert len(gst_origin.open_sessions()) == 1

        again = await connect(server, session=ready.session)
        await resumes(server, again, url)
        assert (await again.request("TEARDOWN", url)).status == 200
        await again.close()


async def test_a_detached_session_counts_toward_the_session_limit(gst_origin):
    async with running_proxy(gst_origin.url(), "--session-timeout", "30", "--max-sessions", "1") as server:
        url = proxy_url(server, "clip")
        player = await connect(server)
        await player.play_tcp(url)
        await drop(server, player)
        other = await connect(server)
        refused = await other.request("SETUP", url + "/stream=0",
                                      ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"))
        assert refused.status == 453
        other.session = player.session
        await resumes(server, other, url)
        await other.close()
