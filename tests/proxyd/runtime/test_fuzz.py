"""Arbitrary bytes from a player: only RTSP responses come out, never an exception or a traceback."""

import asyncio
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyd.app.cli import config_from_args
from proxyd.player.connection import PlayerConnection
from proxyd.app.server import ProxyServer
from tests.proxyd.runtime.fakes import FakeTransport

PIECES = [b"OPTIONS", b"SETUP", b"PLAY", b"FOO", b" ", b"* ", b"rtsp://127.0.0.1:8554/vod/a ", b"RTSP/1.0",
          b"\r\n", b"CSeq: 1", b"CSeq: x", b"Session: 1", b"Transport: RTP/AVP;unicast;client_port=1-2",
          b"Content-Length: 3", b"$\x00\x00\x02ab", b":", b"\x00", b"\xff"]

message = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=20)), max_size=30).map(b"".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(message, min_size=1, max_size=4))
def test_arbitrary_bytes_give_only_clean_protocol_answers(chunks):
    async def run():
        server = ProxyServer(config_from_args(["--route", "/vod=rtsp://127.0.0.1:9"], env={}))
        conn = PlayerConnection(server.context)
        transport = FakeTransport()
        conn.connection_made(transport)
        errors = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        for chunk in chunks:
            if transport.closed:
                break
            conn.data_received(chunk)
        for _ in range(50):  # let queued handlers run (no origin is contacted for these inputs)
            await asyncio.sleep(0)
        conn.connection_lost(None)
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        return errors, transport

    logger = logging.getLogger("proxyd")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # 150 examples of expected warnings would flood the output
    try:
        errors, transport = asyncio.run(run())
    finally:
        logger.setLevel(level)
    assert errors == []
    assert not transport.frames
    assert all(100 <= r.status <= 599 for r in transport.responses)
