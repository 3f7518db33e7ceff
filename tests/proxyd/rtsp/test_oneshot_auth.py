"""proxyd.rtsp.oneshot with username/password against a scripted server on a real loopback socket.

The server answers each request of one connection from a list (statuses + WWW-Authenticate) and
keeps every request it read, so the tests see the retry on the same connection and its bound.
"""

from __future__ import annotations

import base64
import socket
import threading

import pytest

from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, Headers, Request, Response
from proxyd.rtsp.oneshot import rtsp_request


class ChallengingServer:
    def __init__(self, replies: list[tuple[int, str | None]]) -> None:
        self.replies = list(replies)
        self.requests: list[Request] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/clip"

    def _serve(self) -> None:
        """One connection (the client's), until it closes or the script ends."""
        conn, _ = self.listener.accept()
        self.connections += 1
        with conn:
            conn.settimeout(5)
            rtsp = RtspConnection(Role.SERVER)
            while self.replies:
                event = rtsp.next_event()
                if event is NEED_DATA:
                    data = conn.recv(4096)
                    if not data:
                        return
                    rtsp.receive_data(data)
                    continue
                if not isinstance(event, Request):
                    continue
                self.requests.append(event)
                status, challenge = self.replies.pop(0)
                headers = [("CSeq", str(event.cseq))]
                if challenge:
                    headers.append(("WWW-Authenticate", challenge))
                conn.sendall(rtsp.send_response(Response(status, "X", Headers(headers))))

    def close(self) -> None:
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def serve():
    servers = []

    def make(replies):
        servers.append(ChallengingServer(replies))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_basic_challenge_is_answered_on_the_same_connection(serve):
    server = serve([(401, 'Basic realm="r"'), (200, None)])
    resp = rtsp_request(server.url, "DESCRIBE", headers=[("Authorization", "Basic cGxheWVyOng="),
                                                         ("Accept", "application/sdp")],
                        username="bot", password="pw", timeout=5)
    assert resp.status == 200 and server.connections == 1
    first, second = server.requests
    assert "Authorization" not in first.headers  # the caller's header is not sent along with ours
    assert (first.cseq, second.cseq) == (1, 2)
    assert base64.b64decode(second.headers.get("Authorization").split()[1]) == b"bot:pw"
    assert second.headers.get("Accept") == "application/sdp"


def test_digest_stale_nonce_is_retried_once_then_the_401_is_returned(serve):
    server = serve([(401, 'Digest realm="r", nonce="n1"'), (401, 'Digest realm="r", nonce="n2", stale=true'),
                    (401, 'Digest realm="r", nonce="n3", stale=true'), (200, None)])
    resp = rtsp_request(server.url, "SET_PARAMETER", body=b"x", username="bot", password="pw", timeout=5)
    assert resp.status == 401  # three sends, no fourth
    assert [r.headers.get("Authorization", "").partition(",")[0][:6] for r in server.requests] == [
        "", "Digest", "Digest"]
    assert 'nonce="n2"' in server.requests[2].headers.get("Authorization")


def test_wrong_credentials_get_one_retry_and_no_credentials_none(serve):
    refusing = serve([(401, 'Digest realm="r", nonce="n"')] * 2 + [(200, None)])
    assert rtsp_request(refusing.url, "DESCRIBE", username="bot", password="bad", timeout=5).status == 401
    assert len(refusing.requests) == 2
    plain = serve([(401, 'Basic realm="r"'), (200, None)])
    resp = rtsp_request(plain.url, "DESCRIBE", headers=[("Authorization", "Basic cGxheWVyOng=")], timeout=5)
    assert resp.status == 401 and len(plain.requests) == 1
    assert plain.requests[0].headers.get("Authorization") == "Basic cGxheWVyOng="  # given headers go as is
