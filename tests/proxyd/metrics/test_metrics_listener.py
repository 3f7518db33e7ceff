"""The metrics HTTP listener's limits: head size, methods, paths, concurrent connections, slow clients."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from proxyd.config import Config, Limits
from proxyd.control.reports import NullSink
from proxyd.metrics.events import ReportTotals
from proxyd.metrics.http import MetricsListener


@dataclasses.dataclass
class Source:
    config: Config
    sessions: dict = dataclasses.field(default_factory=dict)
    connections: set = dataclasses.field(default_factory=set)
    cache_store: None = None


@pytest.fixture
async def listener():
    limits = Limits(max_header_bytes=1024, metrics_max_connections=2, metrics_request_timeout=0.5)
    metrics = MetricsListener(Source(Config(limits=limits)), ReportTotals(NullSink()), None, lambda: True)
    await metrics.start("127.0.0.1", 0)
    yield metrics
    await metrics.stop()


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    answer = await reader.read()
    writer.close()
    return answer


async def test_methods_paths_and_head_size(listener):
    port = listener.port
    ok = await exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ok.startswith(b"HTTP/1.0 200 OK") and b"proxyd_sessions" in ok
    head = await exchange(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and head.endswith(b"\r\n\r\n")
    ready = await exchange(port, b"GET /readyz HTTP/1.1\r\n\r\n")
    assert ready.startswith(b"HTTP/1.0 200") and b'"ready": true' in ready
    assert (await exchange(port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 405")
    assert (await exchange(port, b"GET /secret HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 404")
    big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n"
    assert (await exchange(port, big)).startswith(b"HTTP/1.0 400")


async def test_connection_limit_and_slow_clients(listener):
    port = listener.port
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    while listener.active < 2:  # the server accepts them on this loop
        await asyncio.sleep(0)
    refused = await exchange(port, b"GET /metrics HTTP/1.1\r\n\r\n")
    assert refused.startswith(b"HTTP/1.0 503")
    for reader, _ in idle:  # the request timeout closes connections that never send a request
        assert await asyncio.wait_for(reader.read(), 5) == b""
    assert (await exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 200")
