"""A tiny scripted RTSP server for task tests: answers GetContentInfo / SendEvent and records every request.

It runs in a thread on a loopback port chosen by the OS. `stop()` closes the listener (connections are
refused, as with an origin that is down) and `start()` listens again on the same port.
"""

import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_HEAD_BYTES = 16384
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    uri: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Reply:
    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


Handler = Callable[[RecordedRequest], Reply]


def _read_request(stream) -> RecordedRequest | None:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline(MAX_HEAD_BYTES)
        if not line:
            return None
        if line in (b"\r\n", b"\n") and not head:
            continue  # stray CRLF between messages
        head += line
        if len(head) > MAX_HEAD_BYTES:
            return None
    lines = head.decode("utf-8", "replace").split("\r\n")
    method, uri, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = min(int(headers.get("content-length", "0") or 0), MAX_BODY_BYTES)
    body = stream.read(length) if length else b""
    return RecordedRequest(method, uri, headers, body)


class RtspResponder:
    def __init__(self, handler: Handler | None = None):
        self.handler: Handler = handler or (lambda request: Reply())
        self.requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def start(self) -> "RtspResponder":
        responder = self

        class _Connection(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    request = _read_request(self.rfile)
                    if request is None:
                        return
                    with responder._changed:
                        responder.requests.append(request)
                        responder._changed.notify_all()
                    reply = responder.handler(request)
                    self.wfile.write(_encode(reply, request.headers.get("cseq", "0")))
                    self.wfile.flush()

        class _Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = _Server(("127.0.0.1", self.port), _Connection)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="rtsp-responder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def requests_matching(self, method: str, content_type: str | None = None) -> list[RecordedRequest]:
        with self._changed:
            return [
                r
                for r in self.requests
                if r.method == method and (content_type is None or r.headers.get("content-type") == content_type)
            ]

    def wait_for(self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self.requests)), timeout=timeout)


def _encode(reply: Reply, cseq: str) -> bytes:
    lines = [f"RTSP/1.0 {reply.status} {reply.reason}", f"CSeq: {cseq}"]
    lines += [f"{name}: {value}" for name, value in reply.headers]
    lines.append(f"Content-Length: {len(reply.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + reply.body


def free_port_is_refusing(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (used to assert the 'origin down' phase is real)."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0
