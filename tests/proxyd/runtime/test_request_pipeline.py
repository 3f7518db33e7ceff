"""proxyd.player.pipeline: which requests run side by side, the answers' order, the depth limit.
Handlers finish when the test says so; the test awaits that handler's task, never a delay."""

from __future__ import annotations

import asyncio

from proxyd.player.pipeline import RequestPipeline
from proxyd.rtsp.events import Headers, Request, Response


class Handlers:
    def __init__(self, limit: int = 16, keep_answering: bool = True) -> None:
        self.status: dict[int, asyncio.Future] = {}
        self.answered: list[tuple[int, int]] = []
        self.keep_answering = keep_answering
        self.pipeline = RequestPipeline(limit, self.handle, self.pipelined_in, self.answer)

    async def handle(self, request: Request) -> Response:
        return Response(await self.status[request.cseq], "x", Headers())

    @staticmethod
    def pipelined_in(request: Request) -> str | None:
        return request.headers.get("Session") if request.method in ("SETUP", "TEARDOWN") else None

    def answer(self, request: Request, response: Response) -> bool:
        self.answered.append((request.cseq, response.status))
        return self.keep_answering

    def add(self, cseq: int, method: str, session: str | None = "s1") -> bool:
        self.status[cseq] = asyncio.get_running_loop().create_future()
        headers = Headers([("CSeq", str(cseq))] + ([("Session", session)] if session else []))
        return self.pipeline.add(Request(method, "rtsp://h/a/audio", headers))

    def task(self, cseq: int) -> asyncio.Task:
        return next(a.task for a in self.pipeline.in_flight if a.request.cseq == cseq)

    async def finish(self, cseq: int, status: int = 200) -> None:
        task = self.task(cseq)
        self.status[cseq].set_result(status)
        await task  # its handler returned and the answers due were written

    @property
    def running(self) -> list[int]:
        return [a.request.cseq for a in self.pipeline.in_flight]


async def test_a_sessions_select_streams_run_side_by_side_and_are_answered_in_order():
    h = Handlers()
    for cseq, method in enumerate(["TEARDOWN", "TEARDOWN", "SETUP", "SETUP", "PLAY"], start=1):
        h.add(cseq, method)
    assert h.running == [1, 2, 3, 4]  # the PLAY waits for every earlier answer
    await h.finish(3)  # a later one finishes first: held until 1 and 2 are answered
    assert h.answered == []
    await h.finish(1)
    await h.finish(2, 454)
    assert h.answered == [(1, 200), (2, 454), (3, 200)] and h.running == [4]
    await h.finish(4)
    assert h.running == [5]
    await h.finish(5)
    assert [c for c, _ in h.answered] == [1, 2, 3, 4, 5] and h.pipeline.unanswered == 0


async def test_other_requests_and_other_sessions_run_alone():
    h = Handlers()
    h.add(1, "SETUP", session=None)  # creates the session: alone
    h.add(2, "SETUP", session="s1")
    h.add(3, "SETUP", session="s2")  # another session's SelectStream waits for s1's
    assert h.running == [1]
    await h.finish(1)
    assert h.running == [2]
    await h.finish(2)
    assert h.running == [3]


async def test_beyond_the_limit_a_request_is_answered_503_in_its_turn_without_being_handled():
    h = Handlers(limit=2)
    assert [h.add(1, "OPTIONS"), h.add(2, "OPTIONS"), h.add(3, "OPTIONS")] == [True, True, False]
    assert h.pipeline.full
    await h.finish(1)
    await h.finish(2)
    assert h.answered == [(1, 200), (2, 200), (3, 503)] and not h.status[3].done()  # never handled
    assert h.add(4, "OPTIONS")


async def test_an_answer_that_ends_the_connection_cancels_what_runs_alongside():
    h = Handlers(keep_answering=False)
    h.add(1, "TEARDOWN")
    h.add(2, "TEARDOWN")
    second = h.task(2)
    await h.finish(1, 403)
    await asyncio.gather(second, return_exceptions=True)
    assert h.answered == [(1, 403)] and second.cancelled() and h.pipeline.unanswered == 0
