"""The metrics/health HTTP listener (--metrics-listen): GET /metrics, /healthz, /readyz.

A deliberately small HTTP/1.0 server: one request per connection, bounded head (--max-header-bytes),
bounded time (--metrics-request-timeout) and connections (--metrics-max-connections). It shares
the event loop with media but only reads state and never blocks it (the cache write probe runs in
a thread)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from proxyd.log import get_logger
from proxyd.metrics.collect import MetricsSource, collect
from proxyd.metrics.events import ReportTotals
from proxyd.metrics.exposition import CONTENT_TYPE, render
from proxyd.metrics.health import readiness

if TYPE_CHECKING:
    from proxyd.control.plane import ControlPlane

log = get_logger("metrics")

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           503: "Service Unavailable"}


class MetricsListener:
    def __init__(self, server: MetricsSource, totals: ReportTotals, plane: ControlPlane | None,
                 is_listening) -> None:
        self.source, self.totals, self.plane = server, totals, plane
        self.is_listening = is_listening  # () -> bool: the RTSP listener accepts connections
        self.limits = server.config.limits
        self.listener: asyncio.Server | None = None
        self.active = 0
        self.handlers: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        return self.listener.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> None:
        self.listener = await asyncio.start_server(self._serve, host, port, reuse_address=True,
                                                   limit=self.limits.max_header_bytes)
        log.info("metrics listening on http://%s:%d/metrics (/healthz, /readyz)", host, self.port)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for task in list(self.handlers):
            task.cancel()
        if self.handlers:
            await asyncio.wait(list(self.handlers))
        if self.listener is not None:
            await self.listener.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.active += 1
        self.handlers.add(asyncio.current_task())
        try:
            async with asyncio.timeout(self.limits.metrics_request_timeout):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    log.info("metrics: bad request from %s: %s", writer.get_extra_info("peername"),
                             "head over --max-header-bytes" if isinstance(exc, asyncio.LimitOverrunError)
                             else "closed before the end of its head")
                    await self._send(writer, 400, b"bad request\n", "text/plain")
                    return
                if self.active > self.limits.metrics_max_connections:
                    log.warning("metrics: %d connections open (--metrics-max-connections): 503",
                                self.limits.metrics_max_connections)
                    await self._send(writer, 503, b"too many metrics connections\n", "text/plain")
                    return
                method, _, rest = head.partition(b" ")
                path = rest.partition(b" ")[0].partition(b"?")[0]
                status, body, content_type = await self._answer(method, path)
                await self._send(writer, status, b"" if method == b"HEAD" else body, content_type, len(body))
        except (TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:  # stop(): the connection ends here, quietly
            pass
        finally:
            self.active -= 1
            self.handlers.discard(asyncio.current_task())
            writer.close()

    async def _answer(self, method: bytes, path: bytes) -> tuple[int, bytes, str]:
        if method not in (b"GET", b"HEAD"):
            return 405, b"only GET and HEAD\n", "text/plain"
        if path == b"/metrics":
            return 200, render(collect(self.source, self.totals, self.plane)), CONTENT_TYPE
        if path == b"/healthz":
            return 200, b'{"alive": true}\n', "application/json"
        if path == b"/readyz":
            checks = await readiness(self.source.config, self.is_listening(), self.plane)
            ready = all(c["ok"] for c in checks.values())
            body = json.dumps({"ready": ready, "checks": checks}, indent=1).encode() + b"\n"
            return (200 if ready else 503), body, "application/json"
        return 404, b"not found: /metrics, /healthz, /readyz\n", "text/plain"

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str,
                    length: int | None = None) -> None:
        head = (f"HTTP/1.0 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()


async def start_metrics(server, plane: ControlPlane | None) -> MetricsListener | None:
    """Wrap the server's report sink in ReportTotals and listen on --metrics-listen (None when unset)."""
    config = server.config
    if not config.metrics_listen:
        return None
    totals = ReportTotals(server.reporter)
    server.reporter = totals
    metrics = MetricsListener(server, totals, plane,
                              lambda: server.listening)
    host, port = config.metrics_listen
    await metrics.start(host, port)
    return metrics
