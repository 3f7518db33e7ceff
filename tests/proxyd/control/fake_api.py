"""A real HTTP control plane for proxyd.control tests: 127.0.0.1, port 0, in a thread, scriptable failures."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        self.server.fake.handle(self, "GET")

    def do_POST(self):
        self.server.fake.handle(self, "POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, fake):
        self.fake = fake
        super().__init__(address, _Handler)


class FakeControlPlane:
    """Stores accepted events by id (deduplicating like the real one) and records every request.

    Failure knobs: `fail_next` (statuses for the next report POSTs), `report_status` (every POST),
    `report_delay` (seconds before answering, released early by `close`), `refuse()` / `resume()`.
    """

    def __init__(self, token: str = "node-secret"):
        self.token = token
        self.snapshot: dict | None = None
        self.report_status: int | None = None
        self.snapshot_status: int | None = None
        self.fail_next: list[int] = []
        self.report_delay = 0.0
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.report_bodies: list[dict] = []  # every parsed POST body, accepted or not
        self.events: dict[str, dict] = {}  # accepted, by id
        self.event_order: list[str] = []  # ids in arrival order, duplicates excluded
        self.duplicates = 0
        self._cond = threading.Condition()
        self._release = threading.Event()
        self._server: _Server | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeControlPlane:
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refuse(self) -> None:
        """Close the listener: connections are refused until resume()."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def resume(self) -> None:
        self.start()

    def close(self) -> None:
        self._release.set()
        self.refuse()

    # -- waiting ------------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[FakeControlPlane], bool], timeout: float = 10.0) -> None:
        def wait() -> bool:
            with self._cond:
                return self._cond.wait_for(lambda: predicate(self), timeout)

        if not await asyncio.to_thread(wait):
            raise AssertionError(f"fake control plane: condition not met within {timeout}s "
                                 f"({len(self.events)} events, {len(self.requests)} requests)")

    async def wait_for_events(self, count: int, timeout: float = 10.0) -> None:
        await self.wait_until(lambda fake: len(fake.events) >= count, timeout)

    def report_requests(self) -> int:
        return sum(1 for method, path, _ in self.requests if method == "POST" and path.endswith("/reports"))

    # -- request handling (server threads) ----------------------------------------------------

    def handle(self, handler: _Handler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._cond:
            self.requests.append((method, handler.path, headers))
            self._cond.notify_all()
        if headers.get("authorization") != f"Bearer {self.token}":
            return self._answer(handler, 401, {"detail": "unknown node token"})
        if method == "GET" and handler.path == "/internal/v1/snapshot":
            return self._snapshot(handler, headers)
        if method == "POST" and handler.path == "/internal/v1/reports":
            return self._reports(handler, raw)
        self._answer(handler, 404, {"detail": "not found"})

    def _snapshot(self, handler, headers) -> None:
        if self.snapshot_status is not None:
            return self._answer(handler, self.snapshot_status, {"detail": "scripted failure"})
        if self.snapshot is None:
            return self._answer(handler, 503, {"detail": "no snapshot yet"})
        etag = self.snapshot.get("etag", "")
        if headers.get("if-none-match") == f'"{etag}"':
            return self._answer(handler, 304, None, etag=etag)
        self._answer(handler, 200, self.snapshot, etag=etag)

    def _reports(self, handler, raw: bytes) -> None:
        if self.report_delay:
            self._release.wait(self.report_delay)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._answer(handler, 400, {"detail": "invalid JSON"})
        with self._cond:
            self.report_bodies.append(body)
            status = self.fail_next.pop(0) if self.fail_next else self.report_status
        if status is not None:
            return self._answer(handler, status, {"detail": "scripted failure"})
        if body.get("schema_version") != 1:
            return self._answer(handler, 400, {"detail": "unsupported schema_version"})
        accepted = duplicates = 0
        with self._cond:
            for event in body["events"]:
                if event["id"] in self.events:
                    duplicates += 1
                    continue
                self.events[event["id"]] = event
                self.event_order.append(event["id"])
                accepted += 1
            self.duplicates += duplicates
            self._cond.notify_all()
        self._answer(handler, 200, {"accepted": accepted, "duplicates": duplicates})

    @staticmethod
    def _answer(handler, status: int, body, etag: str | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        if etag is not None:
            handler.send_header("ETag", f'"{etag}"')
        if data:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if data:
            handler.wfile.write(data)
