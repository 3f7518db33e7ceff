"""proxyd.rtsp.oneshot against a tiny real TCP server (a thread on a port-0 loopback socket)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from proxyd.rtsp.oneshot import (
    RtspConnectError,
    RtspRequestError,
    RtspResponseError,
    RtspTimeoutError,
    rtsp_request,
)


class ScriptedServer:
    """Accepts one connection, reads one request head, answers with fixed bytes, keeps a copy of
    what it received. `hold` keeps the socket open without answering (timeout tests)."""

    def __init__(self, reply: bytes, *, close_after: bool = True) -> None:
        self.reply = reply
        self.close_after = close_after
        self.received = b""
        self.release = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.received:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                self.received += chunk
            head, _, rest = self.received.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                rest += conn.recv(4096)
            self.received = head + b"\r\n\r\n" + rest
            conn.sendall(self.reply)
            if not self.close_after:
                self.release.wait(10)

    def close(self) -> None:
        self.release.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def server_factory() -> Iterator:
    servers: list[ScriptedServer] = []

    def make(reply: bytes, **kwargs) -> ScriptedServer:
        servers.append(ScriptedServer(reply, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_getcontentinfo_probe(server_factory) -> None:
    server = server_factory(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nCache-Control: max-age=86399, public\r\n"
                            b"Content-Length: 0\r\n\r\n", close_after=False)
    url = f"rtsp://127.0.0.1:{server.port}/vod/clip.wmv"
    response = rtsp_request(url, "GET_PARAMETER",
                            [("Content-Type", "application/x-wms-getcontentinfo"),
                             ("User-Agent", "WMCacheProxy/9.0.0.3191")], b"\x00", timeout=5)
    assert (response.status, response.headers.get("cache-control")) == (200, "max-age=86399, public")
    assert server.received == (f"GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\n"
                               "Content-Type: application/x-wms-getcontentinfo\r\n"
                               "User-Agent: WMCacheProxy/9.0.0.3191\r\nContent-Length: 1\r\n\r\n").encode() + b"\x00"


def test_skips_server_request_frames_and_other_cseqs(server_factory) -> None:
    sdp = b"v=0\r\ns=x\r\n"
    reply = (b"SET_PARAMETER rtsp://o/x RTSP/1.0\r\nCSeq: 3\r\nContent-Type: application/x-wms-extension-cmd\r\n"
             b"Content-Length: 10\r\n\r\nEOF: true\n"
             b"$\x00\x00\x04abcd"
             b"RTSP/1.0 200 OK\r\nCSeq: 77\r\n\r\n"
             b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\n" + sdp)
    server = server_factory(reply)
    response = rtsp_request(f"rtsp://127.0.0.1:{server.port}/x", "DESCRIBE", [("Accept", "application/sdp")])
    assert (response.status, response.cseq, response.body) == (200, 1, sdp)


def test_interim_response_is_skipped(server_factory) -> None:
    server = server_factory(b"RTSP/1.0 100 Continue\r\nCSeq: 1\r\n\r\nRTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
    assert rtsp_request(f"rtsp://127.0.0.1:{server.port}/x", "OPTIONS").status == 200


def test_invalid_request_is_refused_before_connecting() -> None:
    with pytest.raises(RtspRequestError, match="invalid request"):
        rtsp_request("rtsp://127.0.0.1:9/x", "OPTIONS", [("X-Bad", "a\r\nInjected: 1")])


def test_error_status_is_returned_not_raised(server_factory) -> None:
    server = server_factory(b"RTSP/1.0 404 Not Found\r\nCSeq: 1\r\n\r\n")
    response = rtsp_request(f"rtsp://127.0.0.1:{server.port}/missing", "DESCRIBE")
    assert response.status == 404 and response.reason == "Not Found"


def test_connect_refused() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RtspConnectError, match=f"127.0.0.1:{port}"):
        rtsp_request(f"rtsp://127.0.0.1:{port}/x", "OPTIONS")


def test_bad_url_is_a_connect_error() -> None:
    with pytest.raises(RtspConnectError):
        rtsp_request("http://127.0.0.1/x", "OPTIONS")


def test_timeout_when_server_never_answers(server_factory) -> None:
    server = server_factory(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n", close_after=False)  # head never ends
    with pytest.raises(RtspTimeoutError):
        rtsp_request(f"rtsp://127.0.0.1:{server.port}/x", "OPTIONS", timeout=0.3)


def test_server_closes_before_answering(server_factory) -> None:
    server = server_factory(b"")
    with pytest.raises(RtspResponseError, match="closed"):
        rtsp_request(f"rtsp://127.0.0.1:{server.port}/x", "OPTIONS")


def test_garbage_reply(server_factory) -> None:
    server = server_factory(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(RtspResponseError, match="invalid RTSP"):
        rtsp_request(f"rtsp://127.0.0.1:{server.port}/x", "OPTIONS")
