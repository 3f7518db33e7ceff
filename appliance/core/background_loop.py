"""One asyncio event loop in a daemon thread, for sync code in a process that has no loop of its own.

Under WSGI (the internal API tier) `async_to_sync(layer.group_send)` runs each call on a new event loop,
and channels_redis keeps its Redis connections per loop: every report batch's live update paid a new
loop and a new Redis connection (2.4 ms CPU, 4-12 ms wall here), against 0.2 ms on one lasting loop.
Under ASGI async_to_sync already goes back to the server's loop, so this is only switched on by WSGI
entry points (appliance/wsgi_internal.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class BackgroundLoop:
    """Started on first use, so after gunicorn forked the worker that uses it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def call(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Runs `func(*args)` on the loop and waits for its result (or its exception) in this thread."""
        with self.lock:
            if self.loop is None:
                self.loop = asyncio.new_event_loop()
                threading.Thread(target=self.loop.run_forever, name="background-loop", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(func(*args), self.loop).result()
