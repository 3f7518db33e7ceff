"""A minimal scripted RTSP player over TCP interleaved (asyncio, sans-IO parser): sends exactly what
a test says and nothing else (no RTCP, no keepalive), and counts the media it receives."""

from __future__ import annotations

import asyncio
import re

from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, Headers, InterleavedFrame, Request, Response
from proxyd.rtsp.uri import content_base, join_control_url


class RawPlayer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = RtspConnection(Role.CLIENT)
        self.frames: dict[int, int] = {}
        self.frame_seen = asyncio.Event()
        self.session: str | None = None
        self.requests_from_server: list[Request] = []
        self.server_request_seen = asyncio.Event()
        self._responses: asyncio.Queue[Response] = asyncio.Queue()
        self._pump = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, host: str, port: int, ssl=None) -> RawPlayer:
        """ssl: an ssl.SSLContext for an RTSPS listener (its certificate checked for `host`)."""
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        return cls(reader, writer)

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            self.conn.receive_data(data)
            while (event := self.conn.next_event()) is not NEED_DATA:
                if isinstance(event, InterleavedFrame):
                    self.frames[event.channel] = self.frames.get(event.channel, 0) + 1
                    self.frame_seen.set()
                elif isinstance(event, Response):
                    self._responses.put_nowait(event)
                elif isinstance(event, Request):
                    self.requests_from_server.append(event)
                    self.server_request_seen.set()

    async def request(self, method: str, url: str, *headers: tuple[str, str],
                      timeout: float = 10) -> Response:
        items = list(headers)
        if self.session and method != "DESCRIBE":
            items.append(("Session", self.session))
        self.writer.write(self.conn.send_request(Request(method, url, Headers(items))))
        async with asyncio.timeout(timeout):
            return await self._responses.get()

    async def play_tcp(self, url: str) -> list[str]:
        """DESCRIBE, SETUP every stream interleaved, PLAY; returns the stream URLs."""
        base, media = await self.setup_tcp(url)
        resp = await self.request("PLAY", base, ("Range", "npt=0-"))
        assert resp.status == 200, resp
        return media

    async def setup_tcp(self, url: str) -> tuple[str, list[str]]:
        """DESCRIBE, SETUP every stream interleaved (the session is READY); returns the aggregate
        URL and the stream URLs."""
        desc = await self.request("DESCRIBE", url, ("Accept", "application/sdp"))
        assert desc.status == 200, desc
        base = content_base(desc.headers, url)
        media_part = desc.body.decode().partition("\nm=")[2]  # a session-level control is the aggregate's
        controls = re.findall(r"(?m)^a=control:(\S+)\s*$", media_part)
        media = [join_control_url(base, c) for c in controls if c != "*"]
        for i, stream_url in enumerate(media):
            resp = await self.request("SETUP", stream_url,
                                      ("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"))
            assert resp.status == 200, resp
            self.session = resp.headers.get("Session").split(";")[0]
        return base, media

    def count(self) -> int:
        return sum(self.frames.values())

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server closed the connection (the reader saw EOF) within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._pump)
        except TimeoutError:
            return False
        return True

    async def media_flowing(self, frames: int = 20, timeout: float = 10.0) -> None:
        """Until `frames` more interleaved frames arrived."""
        target = self.count() + frames
        async with asyncio.timeout(timeout):
            while self.count() < target:
                self.frame_seen.clear()
                await self.frame_seen.wait()

    async def close(self) -> None:
        self.writer.close()
        self._pump.cancel()
        try:
            await self._pump
        except (asyncio.CancelledError, ConnectionError):
            pass
