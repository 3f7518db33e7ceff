"""A fake asyncio transport for adapter tests: records writes, lets tests await responses."""

from __future__ import annotations

import asyncio

from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, InterleavedFrame, Response


class FakeTransport(asyncio.Transport):
    def __init__(self, peer=("127.0.0.1", 40000), local=("127.0.0.1", 8554)) -> None:
        super().__init__()
        self.peer, self.local = peer, local
        self.written = bytearray()
        self.closed = False
        self.paused = False
        self.buffer_size = 0
        self.changed = asyncio.Event()
        self.parser = RtspConnection(Role.CLIENT)
        self.responses: list[Response] = []
        self.frames: list[InterleavedFrame] = []

    def get_extra_info(self, name, default=None):
        return {"peername": self.peer, "sockname": self.local}.get(name, default)

    def write(self, data) -> None:
        self.written += data
        self.parser.receive_data(bytes(data))
        while (event := self.parser.next_event()) is not NEED_DATA:
            (self.responses if isinstance(event, Response) else self.frames).append(event)
        self.changed.set()

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self.write_limits = (high, low)  # flow control is the test's: it sets buffer_size

    async def wait_for(self, predicate, timeout: float = 10.0):
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
