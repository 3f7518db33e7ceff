"""proxyd lifecycle: RTSP listener, session registry, report sink, signals, graceful drain."""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
from pathlib import Path

from proxyd.app.snapshot_apply import SnapshotApplier
from proxyd.app.strategies import build_strategies
from proxyd.cache.store import CacheStore
from proxyd.config import Config, format_hostport
from proxyd.control.reports import ReportSink
from proxyd.log import get_logger, setup_logging
from proxyd.metrics.http import start_metrics
from proxyd.net.listen import listening_socket
from proxyd.net.tls import TlsConfigError, load_certificate, server_context
from proxyd.player.connection import PlayerConnection
from proxyd.serving.contracts import ServerContext

log = get_logger("server")


class ProxyServer:
    """Lifecycle of one node: listener, strategies, graceful drain. Everything below the app gets
    the ServerContext, never this object."""

    def __init__(self, config: Config, reporter: ReportSink | None = None) -> None:
        self.config = config
        self.context = ServerContext(config, reporter)
        self.strategies = build_strategies(self.context)
        self.listener: asyncio.base_events.Server | None = None
        self.tls_listener: asyncio.base_events.Server | None = None  # --listen-tls
        self.tls_context: ssl.SSLContext | None = None
        self.stopped = asyncio.Event()
        self._last_load = (0.0, 0)

    # --- what the metrics collector reads (proxyd.metrics.collect.MetricsSource) ---
    @property
    def sessions(self) -> dict:
        return self.context.sessions

    @property
    def connections(self) -> set:
        return self.context.connections

    @property
    def cache_store(self) -> CacheStore | None:
        return self.strategies.cache.store if self.strategies.cache is not None else None

    @property
    def reporter(self) -> ReportSink:
        return self.context.reporter

    @reporter.setter
    def reporter(self, sink: ReportSink) -> None:
        """proxyd.metrics wraps the sink to count what is reported."""
        self.context.reporter = sink

    @property
    def port(self) -> int:
        return self.listener.sockets[0].getsockname()[1]

    @property
    def listening(self) -> bool:
        """Every RTSP listener accepts (the /readyz `listening` check)."""
        listeners = (self.listener, self.tls_listener) if self.config.tls.listen else (self.listener,)
        return all(listener is not None and listener.is_serving() for listener in listeners)

    @property
    def tls_port(self) -> int:
        return self.tls_listener.sockets[0].getsockname()[1]

    def load_tls(self) -> None:
        """Load --tls-cert/--tls-key and --origin-ca-file now: a bad file stops the start (TlsConfigError)
        rather than the first TLS player or rtsps origin."""
        tls = self.config.tls
        if tls.listen and self.tls_context is None:
            self.tls_context = server_context(tls.cert_file, tls.key_file)
        if tls.origin_ca_file:
            self.context.origin_connector.tls.context()

    async def start(self) -> None:
        """Listen (and on --listen-tls)."""
        config = self.config
        tls = config.tls
        self.load_tls()
        self.listener = await _listen(lambda: PlayerConnection(self.context), config.listen_host,
                                      config.listen_port)
        if tls.listen:
            # a client that never finishes its handshake is dropped like one that never sends a request
            self.tls_listener = await _listen(lambda: PlayerConnection(self.context, tls=True), *tls.listen,
                                              ssl=self.tls_context,
                                              ssl_handshake_timeout=config.limits.request_timeout)
            log.info("listening for RTSP over TLS on %s", format_hostport(tls.listen[0], self.tls_port))
        log.info("listening on %s routes=%s allow_origins=%s", format_hostport(config.listen_host, self.port),
                 [f"{r.prefix}={r.origin_url}" for r in config.routes],
                 sorted(format_hostport(h, p) for h, p in config.allow_origins))

    def reload_tls(self) -> None:
        """SIGHUP: re-read --tls-cert/--tls-key for new TLS connections; a bad file keeps the old pair."""
        if self.tls_context is None:
            return
        try:
            load_certificate(self.tls_context, self.config.tls.cert_file, self.config.tls.key_file)
        except TlsConfigError as exc:
            log.error("TLS certificate not reloaded, the previous one stays in use: %s", exc)
        else:
            log.info("TLS certificate reloaded from %s", self.config.tls.cert_file)

    async def stop(self) -> None:
        """Stop accepting, end sessions (TEARDOWN upstream), close players, wait up to shutdown_grace."""
        context = self.context
        for listener in (self.listener, self.tls_listener):
            if listener is not None:
                listener.close()
        for session in list(context.sessions.values()):
            session.close("shutdown")
        for strategy in context.strategies:  # shared origin sessions (split hubs)
            strategy.stop()
        for conn in list(context.connections):
            conn.close_connection("shutdown")
        if context.background:
            await asyncio.wait(list(context.background), timeout=self.config.limits.shutdown_grace)
        for task in list(context.background):
            task.cancel()
        for listener in (self.listener, self.tls_listener):
            if listener is not None:
                await listener.wait_closed()
        self.stopped.set()

    def load(self) -> dict:
        """Node load for control-plane reports: open sessions and outgoing bandwidth since the last call."""
        now = asyncio.get_running_loop().time() if self._loop_running() else 0.0
        sessions = list(self.context.sessions.values())
        total = sum(s.counters_data()["bytes_out"] for s in sessions)
        last_time, last_total = self._last_load
        self._last_load = (now, total)
        elapsed = now - last_time
        rate = int(8 * max(0, total - last_total) / elapsed) if last_time and elapsed > 0 else 0
        store = self.cache_store
        return {"sessions": len(sessions), "bandwidth_bps": rate,
                "cache_disk_full": store is not None and store.disk_full}

    @staticmethod
    def _loop_running() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True


def _listen_label(config: Config) -> str:
    """The node's listen addresses for the control plane: "[::]:554" or "[::]:554 rtsps=[::]:322"."""
    label = format_hostport(config.listen_host, config.listen_port)
    if config.tls.listen:
        label += " rtsps=" + format_hostport(*config.tls.listen)
    return label


async def _listen(factory, host: str, port: int, **tls) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    sock = listening_socket(host, port)  # dual-stack [::]
    if sock is not None:
        return await loop.create_server(factory, sock=sock, **tls)
    return await loop.create_server(factory, host, port, reuse_address=True, **tls)


def _control_plane(config: Config, server: ProxyServer):
    """ControlPlane (proxyd.control.plane) when --control-url is set, else None (reports dropped)."""
    if not config.control.url:
        return None
    from proxyd.control.plane import ControlConfig, ControlPlane

    control = config.control
    plane = ControlPlane(ControlConfig(url=control.url, token=control.token,
                                       node_name=control.node_name or config.listen_host,
                                       state_dir=control.state_dir, poll_interval=control.poll_interval,
                                       request_timeout=control.request_timeout,
                                       listen=_listen_label(config)),
                         node_load=server.load)
    server.context.reporter = plane.reporter
    plane.snapshot.subscribe(SnapshotApplier(server.context, server.strategies.cache).apply)  # before start: the on-disk copy applies too
    return plane


def _standalone_events(config: Config, server: ProxyServer):
    """Without a control plane, subscribed SendEvents go to the origins from proxyd itself, spooled
    under --state-dir (else --cache-dir); with neither there is nowhere durable and they are dropped."""
    directory = config.control.state_dir or config.cache_dir
    if config.control.url or not directory:
        if not config.control.url:
            log.info("no --control-url, --state-dir or --cache-dir: SendEvents for origins are not delivered")
        return None
    from proxyd.wmext.event_sender import OriginEventSender

    sender = OriginEventSender(Path(directory) / "sendevents", server.context.origin_connector,
                               max_bytes=config.limits.event_spool_max_bytes,
                               retry_interval=config.limits.event_retry_interval,
                               credentials_for=lambda url: server.context.router.credentials_for(url))
    server.context.reporter = sender
    return sender


async def serve(config: Config) -> None:
    server = ProxyServer(config)
    server.load_tls()
    control = _control_plane(config, server)
    if control is not None:
        await control.start()
    events = _standalone_events(config, server)
    if events is not None:
        events.start()
    await server.start()
    metrics = await start_metrics(server, control)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload_tls)
    print(f"proxyd ready rtsp://{format_hostport(config.listen_host, server.port)}/", flush=True)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    if events is not None:
        await events.stop()
    if control is not None:
        await control.stop(deadline=config.limits.shutdown_grace)
    if metrics is not None:
        await metrics.stop()


def run(config: Config) -> int:
    setup_logging(config.log_level, config.log_format)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve(config))
    except TlsConfigError as exc:
        log.error("configuration error: %s", exc)
        print(f"proxyd: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0
