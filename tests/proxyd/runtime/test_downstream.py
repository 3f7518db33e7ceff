"""Player connection adapter fed raw bytes through a fake transport: exact statuses, one warning each."""

import asyncio
import logging
import socket

import pytest

from proxyd.app.cli import config_from_args
from proxyd.player.connection import PlayerConnection
from proxyd.app.server import ProxyServer
from tests.proxyd.runtime.fakes import FakeTransport

URL = "rtsp://127.0.0.1:8554/vod/clip"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there afterwards: connecting is refused
    return port


def connect(*args: str, origin_port: int | None = None):
    argv = ["--route", f"/vod=rtsp://127.0.0.1:{origin_port or free_port()}", *args]
    server = ProxyServer(config_from_args(argv, env={}))
    conn = PlayerConnection(server.context)
    transport = FakeTransport()
    conn.connection_made(transport)
    return server, conn, transport


async def ask(conn, transport, raw: bytes, count: int = 1):
    before = len(transport.responses)
    conn.data_received(raw)
    await transport.wait_for(lambda: len(transport.responses) >= before + count or transport.closed)
    await transport.wait_for(lambda: len(transport.responses) >= before + count)
    return transport.responses[before:]


def req(method: str, cseq: int | None = 1, uri: str = URL, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {uri} RTSP/1.0"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    lines += list(headers)
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def warnings(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("proxyd")]


def assert_one_clean_warning(caplog, *fragments):
    found = warnings(caplog)
    assert len(found) == 1, [r.getMessage() for r in found]
    assert found[0].exc_info is None
    for fragment in fragments:
        assert fragment in found[0].getMessage()


@pytest.mark.parametrize("raw, status, reason", [
    (b"HELLO THERE\r\n\r\n", 400, "Bad Request"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "Bad Request"),
    (b"OPTIONS * RTSP/1.0\r\n\r\n", 400, "Bad Request"),                      # missing CSeq
    (b"OPTIONS * RTSP/1.0\r\nCSeq: x1\r\n\r\n", 400, "Bad Request"),          # bad CSeq
    (b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 400, "Request Header Too Large"),
    (b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 5\r\nContent-Length: 99999999\r\n\r\n", 413,
     "Request Entity Too Large"),
    (b"OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n", 505, "RTSP Version not supported"),
])
async def test_malformed_input_gets_status_and_close(caplog, raw, status, reason):
    _, conn, transport = connect()
    (resp,) = await ask(conn, transport, raw)
    assert (resp.status, resp.reason) == (status, reason)
    assert transport.closed
    assert_one_clean_warning(caplog, "peer=127.0.0.1:40000")


async def test_malformed_request_with_cseq_is_answered_with_that_cseq(caplog):
    _, conn, transport = connect()
    (resp,) = await ask(conn, transport, b"OPTIONS * RTSP/1.0\r\nCSeq: 42\r\nbad header line\r\n\r\n")
    assert (resp.status, resp.cseq) == (400, 42)
    assert_one_clean_warning(caplog, "cseq=42")


async def test_limits_are_configurable():
    _, conn, transport = connect("--max-body-bytes", "10")
    (resp,) = await ask(conn, transport, req("SET_PARAMETER", 3, body=b"x" * 11))
    assert resp.status == 413


async def test_unknown_method_is_501_and_connection_survives(caplog):
    _, conn, transport = connect()
    (resp,) = await ask(conn, transport, req("FROBNICATE", 7))
    assert (resp.status, resp.cseq) == (501, 7)
    assert "DESCRIBE" in resp.headers.get("Public")
    assert_one_clean_warning(caplog, "cseq=7", "FROBNICATE")
    (ok,) = await ask(conn, transport, req("OPTIONS", 8, "*"))
    assert (ok.status, ok.cseq) == (200, 8)
    assert not transport.closed


async def test_options_lists_methods():
    _, conn, transport = connect()
    (resp,) = await ask(conn, transport, req("OPTIONS", 1))
    assert resp.status == 200
    assert set(resp.headers.get("Public").replace(" ", "").split(",")) == {
        "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER"}


@pytest.mark.parametrize("raw, status", [
    (req("PLAY", 2), 455),
    (req("PAUSE", 2), 455),
    (req("TEARDOWN", 2), 455),
    (req("PLAY", 2, URL, "Session: deadbeef"), 454),
    (req("TEARDOWN", 2, URL, "Session: deadbeef;timeout=60"), 454),
    (req("GET_PARAMETER", 2, URL, "Session: nope"), 454),
    (req("SETUP", 2, URL + "/stream=0", "Session: nope",
         "Transport: RTP/AVP;unicast;client_port=5000-5001"), 454),
    (req("SETUP", 2, URL + "/stream=0"), 461),
    (req("SETUP", 2, URL + "/stream=0", "Transport: RTP/AVP;multicast;port=5000-5001"), 461),
    (req("SETUP", 2, URL + "/stream=0", "Transport: RAW/RAW/UDP;unicast"), 461),
    (req("SETUP", 2, URL + "/stream=0", "Transport: garbage;;=="), 461),
    (req("DESCRIBE", 2, "rtsp://127.0.0.1:8554/elsewhere"), 404),
    (req("DESCRIBE", 2, "rtsp://evil.example:554/x"), 403),
    (req("SETUP", 2, "rtsp://evil.example:554/x", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"), 403),
])
async def test_state_session_transport_and_routing_errors(caplog, raw, status):
    _, conn, transport = connect()
    (resp,) = await ask(conn, transport, raw)
    assert (resp.status, resp.cseq) == (status, 2)
    assert transport.closed == (status == 403)  # a refusal ends the connection ([MS-RTSP] 3.2.7.6)
    assert_one_clean_warning(caplog, "cseq=2", "peer=127.0.0.1:40000")


async def test_forbidden_forward_request_is_logged_with_target(caplog):
    _, conn, transport = connect()
    await ask(conn, transport, req("DESCRIBE", 9, "rtsp://10.9.9.9:554/cam"))
    assert_one_clean_warning(caplog, "403", "10.9.9.9:554")


async def test_origin_unreachable_is_502(caplog):
    _, conn, transport = connect()
    (resp,) = await ask(conn, transport, req("DESCRIBE", 4))
    assert (resp.status, resp.cseq) == (502, 4)
    assert_one_clean_warning(caplog, "cseq=4", "502")


async def test_origin_silent_is_504_and_other_origin_error_passes_through(caplog):
    received = []

    async def origin(reader, writer):
        try:
            while data := await reader.readuntil(b"\r\n\r\n"):
                received.append(data)
                if b"/gone RTSP/1.0" in data:  # answer this one; stay silent on everything else
                    cseq_line = [ln for ln in data.split(b"\r\n") if ln.lower().startswith(b"cseq")][0]
                    cseq = cseq_line.split(b":")[1]
                    writer.write(b"RTSP/1.0 404 Not Found\r\nCSeq:" + cseq + b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            writer.close()

    srv = await asyncio.start_server(origin, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    _, conn, transport = connect("--origin-response-timeout", "0.3", origin_port=port)
    (resp,) = await ask(conn, transport, req("DESCRIBE", 4))
    assert (resp.status, resp.cseq) == (504, 4)
    (resp,) = await ask(conn, transport, req("DESCRIBE", 5, "rtsp://127.0.0.1:8554/vod/gone"))
    assert (resp.status, resp.reason, resp.cseq) == (404, "Not Found", 5)
    assert [r.getMessage().split(" ", 3)[-1] for r in warnings(caplog)] == [
        "DESCRIBE -> 504 Gateway Timeout: origin did not answer DESCRIBE in 0.3s", "DESCRIBE -> 404 Not Found"]
    assert b"User-Agent: WMCacheProxy/" in received[0]  # proxyd's own identity ([MS-RTSP] 3.1.5.1)
    assert b"X-Proxy-Client-Agent" not in received[0]  # the player sent no User-Agent: none invented
    conn.connection_lost(None)
    srv.close()
    await srv.wait_closed()


async def test_pipelined_requests_answered_in_order_reading_paused_and_503_beyond_the_limit(caplog):
    """At --max-pipelined-requests unanswered requests reading pauses; requests beyond it that
    already arrived (the same read) are answered 503 in their turn, one warning each."""
    _, conn, transport = connect("--max-pipelined-requests", "3")
    raw = b"".join(req("OPTIONS", n, "*") for n in range(1, 6))
    conn.data_received(raw)
    assert transport.paused
    await transport.wait_for(lambda: len(transport.responses) == 5)
    assert [(r.cseq, r.status) for r in transport.responses] == [(1, 200), (2, 200), (3, 200), (4, 503), (5, 503)]
    assert not transport.paused
    assert [r.getMessage().split(" ", 3)[-1] for r in warnings(caplog)] == [
        "OPTIONS -> 503 Service Unavailable: over --max-pipelined-requests (3 unanswered)"] * 2
    (again,) = await ask(conn, transport, req("OPTIONS", 6, "*"))
    assert (again.cseq, again.status) == (6, 200)


async def test_connection_limit_answers_503_and_closes():
    server, first, t1 = connect("--max-connections", "1")
    second = PlayerConnection(server.context)
    t2 = FakeTransport(peer=("127.0.0.1", 40001))
    second.connection_made(t2)
    (resp,) = await ask(second, t2, req("OPTIONS", 1, "*"))
    assert resp.status == 503
    await t2.wait_for(lambda: t2.closed)
    (ok,) = await ask(first, t1, req("OPTIONS", 1, "*"))
    assert ok.status == 200


async def test_player_rtcp_on_unknown_channel_is_ignored():
    _, conn, transport = connect()
    conn.data_received(b"$\x05\x00\x04abcd")
    (resp,) = await ask(conn, transport, req("OPTIONS", 1, "*"))
    assert resp.status == 200
