"""A gateway in front of a real RTSP origin that lets RTSP (TCP) through but loses the origin's UDP
media, like a firewall between proxyd and the origin.

    with UdpDroppingGateway(("127.0.0.1", origin.port)) as gateway:
        proxyd routes to gateway.url(); the origin's RTP over UDP goes to a sink nobody forwards

It forwards each client connection to the origin byte for byte, except that in a SETUP asking for
UDP (`client_port=`) the ports become those of a local sink pair: the origin really sends its RTP,
and it never reaches the client (as the relay's fallback tests, where the origin accepts a UDP
SETUP and no UDP ever arrives). Interleaved TCP media passes untouched. Blocking sockets in threads:
usable from synchronous tests.
"""

from __future__ import annotations

import re
import socket

from proxyd.net.udp import bind_port_pair
from tests.peers.tcp_forward import TcpForwarder

CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)")
TRANSPORT = re.compile(rb"(?im)^(transport:[ \t]*)([^\r\n]*)")
CLIENT_PORT = re.compile(rb"client_port=\d+(-\d+)?")


class UdpDroppingGateway(TcpForwarder):
    def __init__(self, origin: tuple[str, int]) -> None:
        super().__init__(0, origin)
        self.origin = origin
        self.setup_transports: list[str] = []  # Transport of every SETUP as the origin got it
        self.sinks: list[socket.socket] = []

    def url(self, path: str = "/") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        with self.lock:
            for s in self.sinks:
                s.close()

    def dropped_datagrams(self) -> int:
        """UDP datagrams the origin sent that the client never got (waiting in the sinks)."""
        count = 0
        with self.lock:
            for sink in self.sinks:
                try:
                    while sink.recv(65536, socket.MSG_DONTWAIT):
                        count += 1
                except BlockingIOError:
                    pass
        return count

    def _forward_client(self, src: socket.socket, dst: socket.socket) -> None:
        """Client -> origin: whole messages and interleaved frames, SETUPs rewritten."""
        buf = bytearray()
        try:
            while data := src.recv(65536):
                buf += data
                while (size := self._message_size(buf)) is not None:
                    message = bytes(buf[:size])
                    del buf[:size]
                    dst.sendall(self._rewrite(message) if message.startswith(b"SETUP ") else message)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @staticmethod
    def _message_size(buf: bytearray) -> int | None:
        if buf[:1] == b"$":
            return 4 + int.from_bytes(buf[2:4], "big") if len(buf) >= 4 else None
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        length = CONTENT_LENGTH.search(buf, 0, end)
        size = end + 4 + (int(length.group(1)) if length else 0)
        return size if len(buf) >= size else None

    def _rewrite(self, message: bytes) -> bytes:
        match = TRANSPORT.search(message)
        if match is None:
            return message
        value = match.group(2)
        if CLIENT_PORT.search(value):
            port = self._sink_pair()
            value = CLIENT_PORT.sub(f"client_port={port}-{port + 1}".encode(), value)
        with self.lock:
            self.setup_transports.append(value.decode("latin-1"))
        return message[:match.start(2)] + value + message[match.end(2):]

    def _sink_pair(self) -> int:
        """Bound UDP sockets on an even port and the next one, never read until the test asks."""
        rtp, rtcp = bind_port_pair("127.0.0.1")
        with self.lock:
            self.sinks += [rtp, rtcp]
        return rtp.getsockname()[1]
