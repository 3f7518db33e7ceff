"""Raw RTSP players for the benches, much cheaper than an ffmpeg process: DESCRIBE, SETUP of every
stream, PLAY, then RTP as it arrives (counted, not decoded); TEARDOWN on leaving.

TcpPlayer receives RTP interleaved on the RTSP connection; UdpPlayer on a pair of UDP sockets per
stream (client_port), as most Windows Media players do.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable

from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed, Headers, InterleavedFrame, Request, Response
from proxyd.rtsp.uri import content_base

UDP_RECEIVE_BUFFER = 1 << 20  # a player thread starved of CPU for a moment must not lose packets


class TcpPlayer:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        self.host = host
        self.conn = RtspConnection(Role.CLIENT)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.aggregate = url
        self.session: list = []
        self.streams = 0

    def __enter__(self) -> TcpPlayer:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.sock.sendall(self.conn.send_request(Request("TEARDOWN", self.aggregate, Headers(self.session))))
        except OSError:
            pass  # the server already closed: nothing to tear down
        finally:
            self.close()

    def close(self) -> None:
        self.sock.close()

    def _event(self):
        while (event := self.conn.next_event()) is NEED_DATA:
            self.conn.receive_data(self.sock.recv(65536))
        return event

    def exchange(self, method: str, uri: str, headers: list) -> Response:
        self.sock.sendall(self.conn.send_request(Request(method, uri, Headers(headers))))
        while not isinstance(event := self._event(), Response):
            if isinstance(event, ConnectionClosed):
                raise ConnectionError(f"{method}: the server closed the connection")
        return event

    def transport(self, index: int) -> str:
        return f"RTP/AVP/TCP;unicast;interleaved={2 * index}-{2 * index + 1}"

    def play(self, start: float = 0.0) -> None:
        resp = self.exchange("DESCRIBE", self.url, [("Accept", "application/sdp")])
        if resp.status != 200:
            raise ConnectionError(f"DESCRIBE: {resp.status} {resp.reason}")
        sdp = Sdp.parse(resp.body)
        base = content_base(resp.headers, self.url)
        for i, media_url in enumerate(sdp.media_urls(base)):
            r = self.exchange("SETUP", media_url, [("Transport", self.transport(i)), *self.session])
            if r.status != 200:
                raise ConnectionError(f"SETUP: {r.status} {r.reason}")
            self.session = [("Session", r.headers.get("Session").split(";")[0])]
            self.streams = i + 1
        self.aggregate = sdp.aggregate_url(base)
        r = self.exchange("PLAY", self.aggregate, [("Range", f"npt={start:.3f}-"), *self.session])
        if r.status != 200:
            raise ConnectionError(f"PLAY: {r.status} {r.reason}")

    def next_rtp(self) -> InterleavedFrame:
        """The next RTP frame (even channel) of any stream."""
        while not (isinstance(event := self._event(), InterleavedFrame) and event.channel % 2 == 0):
            if isinstance(event, ConnectionClosed):
                raise ConnectionError("the server closed the connection")
        return event

    def count_rtp(self, seconds: float) -> list[int]:
        """RTP packets received per stream during `seconds` (or until the server ends the stream)."""
        counts = [0] * max(self.streams, 1)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                frame = self.next_rtp()
            except (TimeoutError, ConnectionError):
                break
            if frame.channel // 2 < len(counts):
                counts[frame.channel // 2] += 1
        return counts


class UdpPlayer(TcpPlayer):
    """RTP (and RTCP) on UDP sockets bound before SETUP; the RTSP connection stays open for TEARDOWN."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        self.rtp_socks: list[socket.socket] = []
        self.rtcp_socks: list[socket.socket] = []

    def transport(self, index: int) -> str:
        rtp, rtcp = _port_pair(self.host)
        self.rtp_socks.append(rtp)
        self.rtcp_socks.append(rtcp)
        return f"RTP/AVP;unicast;client_port={rtp.getsockname()[1]}-{rtcp.getsockname()[1]}"

    def close(self) -> None:
        for s in self.rtp_socks + self.rtcp_socks:
            s.close()
        super().close()

    def receive(self, seconds: float, on_packet: Callable[[int, bytes], None]) -> None:
        """For `seconds`, `on_packet(stream index, datagram)` for every RTP datagram received."""
        end = time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            for index, s in enumerate(self.rtp_socks):
                s.setblocking(False)
                selector.register(s, selectors.EVENT_READ, index)
            while (left := end - time.monotonic()) > 0:
                for key, _ in selector.select(left):
                    try:
                        while True:  # drain: one wake-up per burst, not per packet
                            on_packet(key.data, key.fileobj.recv(2048))
                    except BlockingIOError:
                        pass

    def count_rtp(self, seconds: float) -> list[int]:
        counts = [0] * len(self.rtp_socks)

        def count(index: int, _: bytes) -> None:
            counts[index] += 1

        self.receive(seconds, count)
        return counts


def _port_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """An even RTP port and the RTCP port after it, both bound (RFC 3550 11)."""
    while True:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        rtp.bind(("", 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind(("", port + 1))
                return rtp, rtcp
            except OSError:
                rtcp.close()
        rtp.close()
