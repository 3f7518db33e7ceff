"""proxyd lifecycle: RTSP listener, session registry, report sink, signals, graceful drain."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine

from proxyd.config import Config
from proxyd.control.reports import NullSink, ReportSink
from proxyd.log import get_logger, setup_logging
from proxyd.metrics.http import start_metrics
from proxyd.routing import Router
from proxyd.rtsp.connection import ParserLimits

log = get_logger("server")


class ProxyServer:
    def __init__(self, config: Config, reporter: ReportSink | None = None) -> None:
        self.config = config
        self.router = Router(config)
        self.reporter: ReportSink = reporter or NullSink()
        limits = config.limits
        self.parser_limits = ParserLimits(max_header_bytes=limits.max_header_bytes,
                                          max_headers=limits.max_headers,
                                          max_body_bytes=limits.max_body_bytes)
        self.sessions: dict = {}
        self.connections: set = set()
        self.background: set[asyncio.Task] = set()
        self.listener: asyncio.base_events.Server | None = None
        self.stopped = asyncio.Event()
        self.cache_store = None  # proxyd.cache.store.CacheStore, set by the cache strategy when it starts
        self._last_load = (0.0, 0)

    @property
    def port(self) -> int:
        return self.listener.sockets[0].getsockname()[1]

    async def start(self) -> None:
        from proxyd.downstream import PlayerConnection

        loop = asyncio.get_running_loop()
        self.listener = await loop.create_server(lambda: PlayerConnection(self), self.config.listen_host,
                                                 self.config.listen_port, reuse_address=True)
        log.info("listening on %s:%d routes=%s allow_origins=%s", self.config.listen_host, self.port,
                 [f"{r.prefix}={r.origin_url}" for r in self.config.routes],
                 sorted(f"{h}:{p}" for h, p in self.config.allow_origins))

    async def stop(self) -> None:
        """Stop accepting, end sessions (TEARDOWN upstream), close players, wait up to shutdown_grace."""
        if self.listener is not None:
            self.listener.close()
        for session in list(self.sessions.values()):
            session.close("shutdown")
        for strategy in getattr(self, "_serving_strategies", ()):  # shared origin sessions (split hubs)
            if hasattr(strategy, "stop"):
                strategy.stop()
        for conn in list(self.connections):
            conn.close_connection("shutdown")
        if self.background:
            await asyncio.wait(list(self.background), timeout=self.config.limits.shutdown_grace)
        for task in list(self.background):
            task.cancel()
        if self.listener is not None:
            await self.listener.wait_closed()
        self.stopped.set()

    # --- registry used by connections and sessions ---
    def add_connection(self, conn) -> bool:
        self.connections.add(conn)
        return len(self.connections) <= self.config.limits.max_connections

    def remove_connection(self, conn) -> None:
        self.connections.discard(conn)

    def forget_session(self, session) -> None:
        self.sessions.pop(session.id, None)

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def load(self) -> dict:
        """Node load for control-plane reports: open sessions and outgoing bandwidth since the last call."""
        now = asyncio.get_running_loop().time() if self._loop_running() else 0.0
        total = sum(s.counters_data()["bytes_out"] for s in list(self.sessions.values()))
        last_time, last_total = self._last_load
        self._last_load = (now, total)
        elapsed = now - last_time
        rate = int(8 * max(0, total - last_total) / elapsed) if last_time and elapsed > 0 else 0
        return {"sessions": len(self.sessions), "bandwidth_bps": rate}

    @staticmethod
    def _loop_running() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def emit(self, kind: str, data: dict) -> None:
        try:
            self.reporter.emit(kind, data)
        except Exception:  # the sink contract says never raises; a broken one must not stop media
            log.exception("report sink failed for %s", kind)


def _control_plane(config: Config, server: ProxyServer):
    """ControlPlane (proxyd.control.plane) when --control-url is set, else None (reports dropped)."""
    if not config.control.url:
        return None
    from proxyd.control.plane import ControlConfig, ControlPlane

    control = config.control
    plane = ControlPlane(ControlConfig(url=control.url, token=control.token,
                                       node_name=control.node_name or config.listen_host,
                                       state_dir=control.state_dir, poll_interval=control.poll_interval,
                                       listen=f"{config.listen_host}:{config.listen_port}"),
                         node_load=server.load)
    server.reporter = plane.reporter
    from proxyd.snapshot_apply import SnapshotApplier

    plane.snapshot.subscribe(SnapshotApplier(server).apply)  # before start: the on-disk copy applies too
    return plane


async def serve(config: Config) -> None:
    server = ProxyServer(config)
    control = _control_plane(config, server)
    if control is not None:
        await control.start()
    await server.start()
    metrics = await start_metrics(server, control)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"proxyd ready rtsp://{config.listen_host}:{server.port}/", flush=True)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    if control is not None:
        await control.stop(deadline=config.limits.shutdown_grace)
    if metrics is not None:
        await metrics.stop()


def run(config: Config) -> int:
    setup_logging(config.log_level, config.log_format)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
    return 0
