"""A raw RTSP player over TCP for the benches: DESCRIBE, SETUP of every stream (interleaved), PLAY,
then the RTP frames as they arrive; TEARDOWN on leaving."""

from __future__ import annotations

import socket

from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, Headers, InterleavedFrame, Request, Response
from proxyd.rtsp.uri import content_base


class TcpPlayer:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        self.conn = RtspConnection(Role.CLIENT)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.aggregate = url
        self.session: list = []

    def __enter__(self) -> TcpPlayer:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.sock.sendall(self.conn.send_request(Request("TEARDOWN", self.aggregate, Headers(self.session))))
        finally:
            self.sock.close()

    def _event(self):
        while (event := self.conn.next_event()) is NEED_DATA:
            self.conn.receive_data(self.sock.recv(65536))
        return event

    def exchange(self, method: str, uri: str, headers: list) -> Response:
        self.sock.sendall(self.conn.send_request(Request(method, uri, Headers(headers))))
        while not isinstance(event := self._event(), Response):
            pass
        return event

    def play(self) -> None:
        resp = self.exchange("DESCRIBE", self.url, [("Accept", "application/sdp")])
        sdp = Sdp.parse(resp.body)
        base = content_base(resp.headers, self.url)
        for i, media_url in enumerate(sdp.media_urls(base)):
            transport = f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
            r = self.exchange("SETUP", media_url, [("Transport", transport), *self.session])
            self.session = [("Session", r.headers.get("Session").split(";")[0])]
        self.aggregate = sdp.aggregate_url(base)
        self.exchange("PLAY", self.aggregate, [("Range", "npt=0-"), *self.session])

    def next_rtp(self) -> InterleavedFrame:
        """The next RTP frame (even channel) of any stream."""
        while not (isinstance(event := self._event(), InterleavedFrame) and event.channel % 2 == 0):
            pass
        return event
