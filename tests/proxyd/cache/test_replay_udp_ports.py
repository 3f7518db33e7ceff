"""Cache replays to UDP players share one server port pair per stream slot (cache/udp_ports.py): every
player of slot k is told the same server_port and gets its own packets (its SSRC, continuous
sequence numbers) from it; each player's RTCP reaches its own session, told apart by source
address; the pair is closed with the last replay using it."""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxyd.cache.replay import ReplaySession
from proxyd.net.udp import bind_port_pair, open_fd_count
from proxyd.rtp.packet import RtpPacket
from proxyd.rtp.rtcp import ReportBlock, build_rr
from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.headers import parse_transport
from proxyd.rtsp.uri import content_base
from tests.proxyd.runtime.test_e2e_lifecycle import eventually, idle_state, proxy_url, running_proxy
from tests.proxyd.split.players import RecordingPlayer

pytestmark = pytest.mark.peers

PLAYERS = 3
PACKETS = 40  # video packets checked per player


class UdpPorts:
    """A player's RTP/RTCP client sockets for one stream."""

    def __init__(self) -> None:
        self.rtp, self.rtcp = bind_port_pair("127.0.0.1")
        self.transport = f"RTP/AVP;unicast;client_port={self.rtp.getsockname()[1]}-{self.rtcp.getsockname()[1]}"

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


async def setup_udp(server, url: str) -> tuple[RecordingPlayer, list[UdpPorts], list]:
    player = await RecordingPlayer.connect("127.0.0.1", server.port)
    desc = await player.request("DESCRIBE", url, ("Accept", "application/sdp"))
    assert desc.status == 200, desc
    base = content_base(desc.headers, url)
    sdp = Sdp.parse(desc.body)
    ports, specs = [], []
    for stream_url in sdp.media_urls(base):
        udp = UdpPorts()
        resp = await player.request("SETUP", stream_url, ("Transport", udp.transport))
        assert resp.status == 200, resp
        player.session = resp.headers.get("Session").split(";")[0]
        ports.append(udp)
        specs.append(parse_transport(resp.headers.get("Transport"))[0])
    resp = await player.request("PLAY", sdp.aggregate_url(base), ("Range", "npt=0-"))
    assert resp.status == 200, resp
    return player, ports, specs


async def receive_rtp(sock: socket.socket, count: int) -> list[tuple[RtpPacket, tuple]]:
    loop = asyncio.get_running_loop()
    got = []
    async with asyncio.timeout(10):
        while len(got) < count:
            data, addr = await loop.sock_recvfrom(sock, 65536)
            got.append((RtpPacket.parse(data), addr))
    return got


async def test_udp_replays_share_a_port_pair_per_stream_and_keep_their_own_packets_and_rtcp(
        gst_origin, peer_players, tmp_path):
    async with running_proxy(gst_origin.url(), "--cache-dir", str(tmp_path / "cache"),
                             "--cache-ttl", "300") as server:
        url = proxy_url(server, "clip")
        fill = await asyncio.to_thread(peer_players.ffmpeg_play, url, transport="tcp", decode=False)
        assert fill.ok, fill.describe()
        await eventually(lambda: any(k == "cache.changed" and d["state"] == "complete"
                                     for k, d in server.sink.events), what="cache entry committed")
        await eventually(lambda: not server.sessions, what="the fill's session gone")
        fds, tasks = open_fd_count(), set(asyncio.all_tasks())

        players = [await setup_udp(server, url) for _ in range(PLAYERS)]
        video_ports = {specs[0].server_port for _, _, specs in players}
        audio_ports = {specs[1].server_port for _, _, specs in players}
        assert len(video_ports) == 1 and len(audio_ports) == 1 and video_ports != audio_ports
        server_port = video_ports.pop()
        assert server_port[1] == server_port[0] + 1

        ssrcs = set()
        for player, ports, specs in players:
            got = await receive_rtp(ports[0].rtp, PACKETS)
            assert {addr[1] for _, addr in got} == {server_port[0]}  # sent from the announced port
            assert {p.ssrc for p, _ in got} == {int(specs[0].ssrc, 16)}
            seqs = [p.sequence for p, _ in got]
            assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(PACKETS)]
            ssrcs.add(int(specs[0].ssrc, 16))
        assert len(ssrcs) == PLAYERS

        # Each player's receiver report (its own jitter) reaches its own session's stream.
        sessions = [server.sessions[player.session] for player, _, _ in players]
        assert all(isinstance(s, ReplaySession) for s in sessions)
        for k, (player, ports, specs) in enumerate(players):
            block = ReportBlock(int(specs[0].ssrc, 16), 0, 0, 0, 1000 + k, 0, 0)
            ports[0].rtcp.sendto(build_rr(0x1234 + k, (block,)), ("127.0.0.1", server_port[1]))
        await eventually(lambda: [s.streams[0].counters.jitter_units for s in sessions]
                         == [1000 + k for k in range(PLAYERS)], what="receiver reports demultiplexed")
        assert all(s.streams[0].player_seen for s in sessions)

        for player, ports, _ in players:
            assert (await player.request("TEARDOWN", url)).status == 200
            await player.close()
            for udp in ports:
                udp.close()
        await eventually(lambda: idle_state(server, fds, tasks), what="shared ports closed")
