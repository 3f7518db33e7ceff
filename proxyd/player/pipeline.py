"""A player connection's requests from arrival to answer.

Answers go out in request (CSeq) order ([MS-RTSP] 3.1.5.2), each written in the step its handler
returns (so nothing the handler scheduled, such as a replay's first packet, goes before it).
Requests are handled one at a time, except the SelectStreams (stream SETUP and TEARDOWN) of a
session that relays them pipelined (3.1.4.3.1, 3.1.4.5): a run of them starts at once. A handler
writes its upstream request before its first wait and tasks run in creation order, so such a run
reaches the origin in the player's order without waiting for earlier answers. Any other request
waits until every earlier one is answered, and later ones wait for it: the Play after the
SelectStreams too, as 3.1.5.16 sends it once every SelectStream is answered.

At most `limit` (--max-pipelined-requests) requests are unanswered; the connection pauses reading
there, and a request beyond it that already arrived is answered 503 in its turn, never handled.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine
from typing import Any

from proxyd.rtsp.events import Headers, Request, Response

OVER_LIMIT = Response(503, "Service Unavailable", Headers())


class Answering:
    __slots__ = ("request", "pipelined", "response", "task")

    def __init__(self, request: Request, pipelined: str | None, response: Response | None = None) -> None:
        self.request = request
        self.pipelined = pipelined  # the session whose SelectStreams run alongside it; None: alone
        self.response = response  # set when handled (at once when beyond the limit)
        self.task: asyncio.Task | None = None


class RequestPipeline:
    def __init__(self, limit: int, handle: Callable[[Request], Coroutine[Any, Any, Response]],
                 pipelined_in: Callable[[Request], str | None],
                 answer: Callable[[Request, Response], bool]) -> None:
        """`handle` answers one request; `pipelined_in` names the session a request is a
        pipelinable SelectStream of (None: it runs alone); `answer` writes a response to the
        player, False when the connection ends with it (nothing later is answered)."""
        self.limit = limit
        self.handle = handle
        self.pipelined_in = pipelined_in
        self.answer = answer
        self.waiting: collections.deque[Answering] = collections.deque()  # not started
        self.in_flight: collections.deque[Answering] = collections.deque()  # started, not answered

    @property
    def unanswered(self) -> int:
        return len(self.waiting) + len(self.in_flight)

    @property
    def full(self) -> bool:
        return self.unanswered >= self.limit

    def add(self, request: Request) -> bool:
        """Queue a request and start what may start; False: it is beyond the limit."""
        admitted = not self.full
        self.waiting.append(Answering(request, None, None if admitted else OVER_LIMIT))
        self._flush()
        return admitted

    def cancel(self) -> None:
        """The connection ends: stop every handler still running, answer nothing more."""
        for answering in self.in_flight:
            if answering.task is not None:
                answering.task.cancel()
        self.in_flight.clear()
        self.waiting.clear()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting:
            answering = self.waiting[0]
            if answering.response is None:
                answering.pipelined = self.pipelined_in(answering.request)
            if self.in_flight and (answering.pipelined is None or
                                   any(a.pipelined != answering.pipelined for a in self.in_flight)):
                return
            self.in_flight.append(self.waiting.popleft())
            if answering.response is None:
                answering.task = loop.create_task(self._run(answering))

    async def _run(self, answering: Answering) -> None:
        answering.response = await self.handle(answering.request)
        self._flush()

    def _flush(self) -> None:
        """Write every handled answer at the head, in order, starting what may start meanwhile."""
        while True:
            while self.in_flight and self.in_flight[0].response is not None:
                answering = self.in_flight.popleft()
                if not self.answer(answering.request, answering.response):
                    self.cancel()
                    return
            self._start()
            if not self.in_flight or self.in_flight[0].response is None:
                return
