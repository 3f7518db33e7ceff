"""Many proxyd nodes' report streams against the production web stack (gunicorn + uvicorn, ASGI).

Used by bench.ingest: N nodes (each its own ProxyNode and token) post batches of B events, as a
node at R events/s does with proxyd's 1 s batch delay (B = R), over C keep-alive connections.
The client writes prebuilt HTTP/1.1 requests on raw sockets (asyncio), so its own CPU cost is a
small part of the machine's. The baseline, measured over the same connections in the same run, is
each node's snapshot poll answered 304 (authentication + two queries): the cheapest request a
node makes, i.e. this web stack's request ceiling.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    events: int
    accepted: int
    seconds: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


class WebServer:
    """`gunicorn -c deploy/gunicorn.conf.py appliance.asgi:application` on a free loopback port."""

    def __init__(self, *, database_url: str, workers: int, pool: int, log_path: Path) -> None:
        self.env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "appliance.settings",
                    "APPLIANCE_WEB_BIND": "127.0.0.1:0", "APPLIANCE_WEB_WORKERS": str(workers),
                    # recycling a worker every 2,000 requests (the default) restarts one each second at
                    # this rate; docs/scaling.md recommends a high value for a control plane of many nodes
                    "APPLIANCE_WEB_MAX_REQUESTS": "1000000",
                    "APPLIANCE_DB_POOL_MAX": str(pool), "APPLIANCE_DB_POOL_TIMEOUT": "30"}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 60.0) -> WebServer:
        cmd = [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
               "--access-logfile", "/dev/null", "appliance.asgi:application"]
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self.port:
            match = LISTENING.search(self.log_path.read_text())
            if match:
                self.port = int(match.group(1))
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"gunicorn did not start:\n{self.log_path.read_text()[-2000:]}")
            else:
                time.sleep(0.1)  # waiting for a child's log line; no event to wait on
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def report_request(token: str, body: bytes) -> bytes:
    return (b"POST /internal/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def poll_request(token: str, etag: str) -> bytes:
    return (b"GET /internal/v1/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token.encode()
            + b'\r\nIf-None-Match: "' + etag.encode() + b'"\r\n\r\n')


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, (await reader.readexactly(length) if length else b"")


async def _run(port: int, lanes: list[list[tuple[bytes, int]]], expect: int) -> tuple[int, int]:
    """Each lane is one keep-alive connection sending its requests in order. Returns
    (requests, accepted events) and fails on any other status than `expect`."""
    accepted = 0

    async def lane(requests: list[tuple[bytes, int]]) -> int:
        nonlocal accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request, _events in requests:
                writer.write(request)
                status, body = await _read_response(reader)
                if status != expect:
                    raise SystemExit(f"HTTP {status}: {body[:300]!r}")
                if body:
                    accepted += json.loads(body)["accepted"]
        finally:
            writer.close()
        return len(requests)

    done = await asyncio.gather(*(lane(requests) for requests in lanes))
    return sum(done), accepted


def run_load(port: int, lanes: list[list[tuple[bytes, int]]], *, expect: int = 200) -> LoadResult:
    started = time.perf_counter()
    requests, accepted = asyncio.run(_run(port, lanes, expect))
    seconds = time.perf_counter() - started
    return LoadResult(requests=requests, events=sum(e for lane in lanes for _, e in lane), accepted=accepted,
                      seconds=seconds)


def spread(per_node: list[list[tuple[bytes, int]]], connections: int) -> list[list[tuple[bytes, int]]]:
    """Round by round (every node's first batch, then every node's second...), dealt over the
    connections: a node's batches stay in order, and nodes report concurrently."""
    lanes: list[list[tuple[bytes, int]]] = [[] for _ in range(max(1, min(connections, len(per_node))))]
    rounds = max((len(batches) for batches in per_node), default=0)
    i = 0
    for r in range(rounds):
        for batches in per_node:
            if r < len(batches):
                lanes[i % len(lanes)].append(batches[r])
                i += 1
    return lanes
