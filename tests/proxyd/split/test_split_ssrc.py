"""A split's SETUP answers name the SSRC its players receive ([MS-RTSP] players over UDP tell the
streams sharing one client port pair apart by it and drop what they cannot match), for the first
player of a fresh split as for a late joiner, whatever the origin's own SETUP answers said, and the
SDP's a=ssrc stays true."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from proxyd.rtp.sdp import parse_sdp
from proxyd.rtsp.headers import parse_transport
from proxyd.rtsp.uri import content_base
from tests.proxyd.split.players import RecordingPlayer
from tests.wmorigin.fixtures import wm_origin  # noqa: F401 - fixture
from tests.wmorigin.player import PlayResult, WMPlayer

pytestmark = pytest.mark.peers
# The origin's first packet comes this long after its PLAY answer (an encoder starting up), so a
# fresh split's first player is answered SETUP before the split has seen any packet.
MEDIA_DELAY_S = 0.5


def named_ssrcs(result: PlayResult) -> dict[str, int | None]:
    """Control name (audio, video) -> the ssrc the player's SETUP answer named."""
    setups = [response for kind, response in result.responses if kind == "SETUP"]
    out = {}
    for stream, response in zip(result.entries[0].streams.values(), setups, strict=True):
        ssrc = parse_transport(response.header("Transport"))[0].ssrc
        out[stream.url.rsplit("/", 1)[1]] = None if ssrc is None else int(ssrc, 16)
    return out


def assert_receives_the_named_ssrc(result: PlayResult, expected: dict[str, int]) -> None:
    assert result.error is None, result.error
    assert named_ssrcs(result) == expected
    for stream in result.entries[0].streams.values():  # matched by the SSRC its SETUP named
        assert stream.packets > 0, (stream.url, result.unmatched)
    assert not result.unmatched, {f"{k:08x}": n for k, n in result.unmatched.items()}


@pytest.mark.parametrize("origin_names", ["sent", "none", "other"])
async def test_first_player_and_late_joiners_get_the_ssrc_of_the_packets_they_receive(
        wm_origin, proxyd_process, origin_names):  # noqa: F811
    """The origin's SETUP names the SSRC it sends ("sent"), none ("none": the split waits for the
    first packet), or one it does not send ("other": the split keeps the named one and rewrites
    the packets to it)."""
    wm_origin.setup_ssrc = origin_names
    wm_origin.media_delay_s = MEDIA_DELAY_S
    wm_origin.set_entry("/live", seed="ssrc", broadcast=True)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")})
    url = proxy.url("/wm/live")
    first = WMPlayer(url, transport="udp", stop_after_s=4.0, send_event=False)
    first_task = asyncio.create_task(first.run())
    async with asyncio.timeout(10):
        await first.rtp_arrived.wait()  # the split is running: the next players join it late
    late = await asyncio.gather(*(WMPlayer(url, transport=t, stop_after_s=1.5, send_event=False).run()
                                  for t in ("udp", "tcp")))
    results = [await first_task, *late]

    origin = {}  # control name -> the split's first origin SETUP of it (its SSRC is kept for good)
    for record in wm_origin.setup_ssrcs:
        origin.setdefault(record.url.rsplit("/", 1)[1], record)
    expected = {name: origin[name].sent if origin[name].named is None else origin[name].named
                for name in ("audio", "video")}
    if origin_names == "other":
        assert all(origin[name].named != origin[name].sent for name in expected)
    for result in results:
        assert_receives_the_named_ssrc(result, expected)
    assert wm_origin.count("PLAY", "/live") == 1



async def udp_player(proxy) -> tuple[RecordingPlayer, list[socket.socket], list[tuple[int, int | None, int]]]:
    """DESCRIBE, SETUP every stream over UDP, PLAY; per stream (the SDP's a=ssrc, the SETUP
    answer's ssrc, the SSRC of the first packet received)."""
    player = await RecordingPlayer.connect(proxy.host, proxy.port)
    url = proxy.url("/tv/live")
    desc = await player.request("DESCRIBE", url, ("Accept", "application/sdp"))
    assert desc.status == 200, desc
    sdp = parse_sdp(desc.body)
    sockets, streams = [], []
    for media, stream_url in zip(sdp.media, sdp.media_urls(content_base(desc.headers, url)), strict=True):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sockets.append(sock)
        port = sock.getsockname()[1]
        resp = await player.request("SETUP", stream_url,
                                    ("Transport", f"RTP/AVP;unicast;client_port={port}-{port + 1}"))
        assert resp.status == 200, resp
        player.session = resp.headers.get("Session").split(";")[0]
        named = parse_transport(resp.headers.get("Transport"))[0].ssrc
        streams.append((int(media.attribute("ssrc").split()[0]), None if named is None else int(named, 16)))
    assert (await player.request("PLAY", url)).status == 200
    out = []
    for sock, (in_sdp, named) in zip(sockets, streams, strict=True):
        async with asyncio.timeout(10):
            packet = await asyncio.get_running_loop().sock_recv(sock, 65536)
        out.append((in_sdp, named, struct.unpack_from("!I", packet, 8)[0]))
    return player, sockets, out


async def test_gstreamer_split_names_the_sdp_ssrc_that_its_udp_players_receive(live_origin, split_proxy):
    """The GStreamer origin's SDP a=ssrc, its SETUP answer and its packets agree: so do the split's,
    for the first player of a fresh split and for a late joiner."""
    proxy = split_proxy()
    players = []
    for _ in range(2):  # the first one, then a late joiner (the first one has packets)
        player, sockets, streams = await udp_player(proxy)
        players.append((player, sockets))
        assert len(streams) == 2
        for in_sdp, named, received in streams:
            assert named == received == in_sdp, (f"{in_sdp:08x}", named and f"{named:08x}", f"{received:08x}")
    for player, sockets in players:
        await player.close()
        for sock in sockets:
            sock.close()
