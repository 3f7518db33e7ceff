"""The server-side UDP ports of cache replays: one RTP/RTCP port pair per stream slot, shared by
every replay of the event loop (as a split's players share its ports).

A replay's k-th SETUP over UDP gets slot k's pair, so its streams still have distinct server ports
(a NAT in front of the player punches a hole toward each) while all replays of a slot send from one
socket: the RTP packets every replay has due in one pacing tick go out in one sendmmsg
(net/sendbatch.py) instead of one per player and stream. Players' RTCP arrives on the shared RTCP
socket and is told apart by its source address. A pair is closed when its last stream closes.
"""

from __future__ import annotations

import asyncio
import socket
import weakref
from typing import Protocol

from proxyd.net.sendbatch import SendBatch
from proxyd.net.udp import bind_port_pair, close_watched, drain

MAX_DATAGRAM = 65536


class RtcpReceiver(Protocol):
    player_rtcp_addr: tuple | None  # None while parked: its RTCP is ignored meanwhile

    def rtcp_from_player(self, data) -> None: ...


class ReplayPort:
    """One shared RTP/RTCP socket pair and the send batch of its RTP socket."""

    def __init__(self, ports: ReplayPorts, key: tuple, pair: tuple[socket.socket, socket.socket]) -> None:
        self.ports, self.key = ports, key
        self.rtp, self.rtcp = pair
        self.family = self.rtp.family
        self.rtp_port = self.rtp.getsockname()[1]
        self.batch = SendBatch(self.rtp)
        self.receivers: dict[tuple, RtcpReceiver] = {}  # player RTCP (ip, port) -> stream
        self.users = 0
        self._buf = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buf)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.rtp.fileno(), self._on_rtp)
        self._loop.add_reader(self.rtcp.fileno(), self._on_rtcp)

    def join(self, receiver: RtcpReceiver, rtcp_addr: tuple) -> None:
        self.users += 1
        self.receivers[rtcp_addr] = receiver

    def leave(self, receiver: RtcpReceiver, rtcp_addr: tuple) -> None:
        if self.receivers.get(rtcp_addr) is receiver:
            del self.receivers[rtcp_addr]
        self.users -= 1
        if self.users <= 0:
            self.ports.closed(self)
            self.close()

    def send_rtcp(self, data, addr: tuple) -> None:
        try:
            self.rtcp.sendto(data, addr)
        except OSError:
            pass

    def _on_rtp(self) -> None:
        for _ in drain(self.rtp, self._buf):  # players' NAT punches: not media, nothing to do
            pass

    def _on_rtcp(self) -> None:
        view, receivers = self._view, self.receivers
        for n, addr in drain(self.rtcp, self._buf):
            key = addr[:2]  # an IPv6 socket's source address also has flow info and scope
            receiver = receivers.get(key)
            if receiver is not None and receiver.player_rtcp_addr == key:
                receiver.rtcp_from_player(view[:n])

    def close(self) -> None:
        self.batch.close()
        close_watched(self._loop, self.rtp, self.rtcp)


class ReplayPorts:
    """The event loop's shared replay ports, by (bind address, slot, configured port range)."""

    def __init__(self) -> None:
        self.ports: dict[tuple, ReplayPort] = {}

    def acquire(self, host: str, slot: int, port_min: int, port_max: int) -> ReplayPort:
        """Slot `slot`'s pair on wildcard `host` (raises OSError when the range has no free pair)."""
        key = (host, slot, port_min, port_max)
        port = self.ports.get(key)
        if port is None:
            port = self.ports[key] = ReplayPort(self, key, bind_port_pair(host, port_min, port_max))
        return port

    def closed(self, port: ReplayPort) -> None:
        if self.ports.get(port.key) is port:
            del self.ports[port.key]


_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def replay_ports(loop: asyncio.AbstractEventLoop) -> ReplayPorts:
    ports = _by_loop.get(loop)
    if ports is None:
        ports = _by_loop[loop] = ReplayPorts()
    return ports
