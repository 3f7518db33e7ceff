"""The dashboard's live websocket served for real: appliance.asgi under uvicorn (in a thread of
the test process, so it shares the live server's test database), read with the `websockets`
client. Events published by the live server's request threads arrive through the configured
channel layer (Redis in the test environment)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time


class AsgiServer:
    """uvicorn serving appliance.asgi on a free loopback port until close()."""

    def __init__(self) -> None:
        import uvicorn

        from appliance.asgi import application

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(application, lifespan="off", log_level="warning"))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="asgi-server",
                                       daemon=True)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock])

    def __enter__(self) -> AsgiServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("uvicorn did not start serving appliance.asgi")
            time.sleep(0.02)  # uvicorn exposes no start event to wait on
        return self

    def __exit__(self, *exc) -> None:
        from asgiref.sync import sync_to_async
        from django.db import connections

        # Django's sync thread of this loop keeps a DB connection (CONN_MAX_AGE); close it so the
        # test database can be dropped.
        asyncio.run_coroutine_threadsafe(sync_to_async(connections.close_all)(), self.loop).result(10)
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class LiveFeed:
    """One authenticated websocket on /ws/live/; wait_for() reads events until one matches."""

    def __init__(self, port: int, session_cookie: str) -> None:
        from websockets.sync.client import connect

        self._connect = connect(f"ws://127.0.0.1:{port}/ws/live/", open_timeout=10,
                                additional_headers={"Cookie": f"sessionid={session_cookie}",
                                                    "Origin": f"http://127.0.0.1:{port}"})
        self.events: list[dict] = []

    def __enter__(self) -> LiveFeed:
        self.ws = self._connect.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._connect.__exit__(*exc)

    def wait_for(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if predicate(event):
                return event
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = json.loads(self.ws.recv(timeout=remaining))
            except TimeoutError:
                break
            self.events.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"no matching live event within {timeout}s; got {self.events!r}")
