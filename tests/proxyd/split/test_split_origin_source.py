"""A split's origin media is what comes from the origin's server_port: a player sharing the origin's
address (same host) that sends RTP to the split's port (ffmpeg's NAT punch, or anything forged)
does not reach the other players nor disturb the split's numbering."""

from __future__ import annotations

import socket
import struct

import pytest

from proxyd.rtsp.headers import parse_transport
from tests.proxyd.split.players import RecordingPlayer
from tests.proxyd.split.test_split_rtsp import play

pytestmark = pytest.mark.peers
MARKER = b"NOT-FROM-THE-ORIGIN"


async def test_rtp_from_a_player_on_the_origin_host_is_not_origin_media(live_origin, split_proxy):
    proxy = split_proxy()
    watcher, media, _ = await play(proxy)
    await watcher.wait_packets(0, 10)
    ssrc = struct.unpack_from("!I", watcher.packets[0][0], 8)[0]

    # A UDP player on 127.0.0.1 (the origin's address here) learns the split's server_port.
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    transport, udp_player = await play_udp(proxy, media[0], rtp.getsockname()[1])
    server_port = parse_transport(transport)[0].server_port[0]
    forged = struct.pack("!BBHII", 0x80, 96, 1, 1234, 0xDEADBEEF) + MARKER
    for _ in range(20):
        rtp.sendto(forged, ("127.0.0.1", server_port))
    before = len(watcher.packets[0])
    await watcher.wait_packets(0, before + 50)

    received = watcher.packets[0]
    assert not any(MARKER in p for p in received)
    assert {struct.unpack_from("!I", p, 8)[0] for p in received} == {ssrc}
    seqs = [struct.unpack_from("!H", p, 2)[0] for p in received]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))  # one continuous numbering
    rtp.close()
    await udp_player.close()
    await watcher.close()


async def play_udp(proxy, stream_url: str, port: int) -> tuple[str, RecordingPlayer]:
    player = await RecordingPlayer.connect(proxy.host, proxy.port)
    url = proxy.url("/tv/live")
    assert (await player.request("DESCRIBE", url)).status == 200
    resp = await player.request("SETUP", stream_url,
                                ("Transport", f"RTP/AVP;unicast;client_port={port}-{port + 1}"))
    assert resp.status == 200, resp
    player.session = resp.headers.get("Session").split(";")[0]
    assert (await player.request("PLAY", url)).status == 200
    return resp.headers.get("Transport"), player
