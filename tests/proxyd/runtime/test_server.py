"""Server lifecycle: control-plane wiring, load figures, graceful stop."""

import asyncio

from proxyd.app.cli import config_from_args
from proxyd.app.server import ProxyServer, _control_plane
from proxyd.control.reports import NullSink


async def test_without_control_url_reports_go_nowhere():
    config = config_from_args(["--listen", "127.0.0.1:0"], env={})
    server = ProxyServer(config)
    assert _control_plane(config, server) is None
    assert isinstance(server.context.reporter, NullSink)


async def test_control_plane_reporter_is_the_server_sink(tmp_path):
    config = config_from_args(["--listen", "127.0.0.1:0", "--control-url", "http://127.0.0.1:9",
                               "--control-token", "tok", "--state-dir", str(tmp_path), "--node-name", "n1"],
                              env={})
    server = ProxyServer(config)
    plane = _control_plane(config, server)
    assert server.context.reporter is plane.reporter
    server.context.emit("session.started", {"session_id": "x"})  # must not raise or block
    assert server.load() == {"sessions": 0, "bandwidth_bps": 0, "cache_disk_full": False}


async def test_start_and_stop_release_the_listener():
    server = ProxyServer(config_from_args(["--listen", "127.0.0.1:0"], env={}))
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"RTSP/1.0 200 OK")
    await server.stop()
    assert await reader.read() == b""  # players are disconnected on shutdown
    writer.close()
    try:
        await asyncio.open_connection("127.0.0.1", port)
        connected = True
    except OSError:
        connected = False
    assert not connected
