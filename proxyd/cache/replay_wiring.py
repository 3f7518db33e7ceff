"""A cache replay stream's output toward its player, set up at SETUP: interleaved on the RTSP
connection (TCP) or from the shared replay port of its stream slot (UDP, cache/udp_ports.py)."""

from __future__ import annotations

import asyncio
import dataclasses

from proxyd.cache.replay_out import ReplayRelay, ReplayStream
from proxyd.cache.udp_ports import replay_ports
from proxyd.rtsp.headers import TransportSpec, format_transport
from proxyd.serving.contracts import Player


def open_replay_stream(loop: asyncio.AbstractEventLoop, limits, player: Player, spec: TransportSpec,
                       slot: int, clock_rate: int, rtptime0: int | None) -> ReplayStream:
    """The replay stream set up `slot`-th in its session, wired to the player as `spec` asks."""
    relay = ReplayRelay(slot, clock_rate)
    if spec.is_tcp:
        channels = spec.interleaved or (2 * relay.index, 2 * relay.index + 1)
        if channels[1] == channels[0]:
            channels = (channels[0], channels[0] + 1)
        relay.player_channels = channels
        relay.player_writer = player.media_writer()
        player.register_channel(channels[1], relay)
    else:
        ip = player.peer_ip
        family_any = "::" if ":" in ip else "0.0.0.0"
        # The k-th stream set up shares slot k's port with every replay (one sendmmsg per tick).
        port = replay_ports(loop).acquire(family_any, relay.index, limits.rtp_port_min, limits.rtp_port_max)
        low, high = spec.client_port
        relay.use_port(port, (ip, low), (ip, high if high != low else low + 1))
    return ReplayStream(relay, clock_rate, rtptime0)


def player_transport(spec: TransportSpec, out: ReplayStream) -> str:
    """The Transport header answering the player's SETUP for `out`."""
    relay = out.relay
    player_spec = dataclasses.replace(
        spec, destination=None, source=None, mode=None, extra=(), delivery="unicast",
        interleaved=relay.player_channels if spec.is_tcp else None,
        server_port=None if spec.is_tcp else (relay.port.rtp_port, relay.port.rtp_port + 1),
        ssrc=f"{out.ssrc:08X}")
    return format_transport(player_spec)
