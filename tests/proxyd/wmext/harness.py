"""In-process proxyd for wmext tests: a real ProxyServer on a free port with a recording report sink,
in front of the Windows Media test origin (tests.wmorigin) on its own thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from proxyd.app.cli import config_from_args
from proxyd.app.server import ProxyServer


class RecordingSink:
    """ReportSink that keeps every event and lets a test await one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        self.changed = asyncio.Event()

    def emit(self, kind: str, data: dict) -> None:
        self.events.append((kind, data))
        self.changed.set()

    def of(self, kind: str) -> list[dict]:
        return [data for k, data in self.events if k == kind]

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def running_proxy(origin_base: str, *args: str, prefix: str = "/wm") -> AsyncIterator[ProxyServer]:
    config = config_from_args(["--listen", "127.0.0.1:0", "--route", f"{prefix}={origin_base}", *args], env={})
    server = ProxyServer(config, reporter=RecordingSink())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def proxy_url(server: ProxyServer, path: str, prefix: str = "/wm") -> str:
    return f"rtsp://127.0.0.1:{server.port}{prefix}{path}"


async def rtsp_exchange(url: str, method: str, headers: list[tuple[str, str]], body: bytes = b"",
                        timeout: float = 5.0):
    """One request on a fresh connection; returns the tests.wmorigin.wire response Message."""
    from urllib.parse import urlsplit

    from tests.wmorigin import wire

    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        msg = wire.Message(method=method, uri=url, headers=[("CSeq", "1"), *headers], body=body)
        writer.write(msg.encode())
        await writer.drain()
        async with asyncio.timeout(timeout):
            while True:
                item = await wire.read_item(reader)
                if item is None:
                    raise ConnectionError("closed before the response")
                if isinstance(item, wire.Message) and not item.method:
                    return item
    finally:
        writer.close()
