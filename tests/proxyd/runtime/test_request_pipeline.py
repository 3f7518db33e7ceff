"""proxyd.player.pipeline: which requests run side by side, the answers' order, the depth limit."""

from __future__ import annotations

import asyncio

from proxyd.player.pipeline import RequestPipeline
from proxyd.rtsp.events import Headers, Request, Response


class Handlers:
    """Each request's handler waits until the test finishes it; records starts and answers."""

    def __init__(self, limit: int = 16, keep_answering: bool = True) -> None:
        self.started: list[int] = []
        self.answered: list[tuple[int, int]] = []
        self.done: dict[int, asyncio.Future] = {}
        self.keep_answering = keep_answering
        self.pipeline = RequestPipeline(limit, self.handle, self.pipelined_in, self.answer)

    async def handle(self, request: Request) -> Response:
        self.started.append(request.cseq)
        self.done[request.cseq] = asyncio.get_running_loop().create_future()
        return Response(await self.done[request.cseq], "x", Headers())

    @staticmethod
    def pipelined_in(request: Request) -> str | None:
        return request.headers.get("Session") if request.method in ("SETUP", "TEARDOWN") else None

    def answer(self, request: Request, response: Response) -> bool:
        self.answered.append((request.cseq, response.status))
        return self.keep_answering

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)  # let started handlers run to their wait (no timing involved)

    def add(self, cseq: int, method: str, session: str | None = "s1") -> bool:
        headers = Headers([("CSeq", str(cseq))] + ([("Session", session)] if session else []))
        return self.pipeline.add(Request(method, "rtsp://h/a/audio", headers))


async def test_a_sessions_select_streams_run_side_by_side_and_are_answered_in_order():
    h = Handlers()
    for cseq, method in enumerate(["TEARDOWN", "TEARDOWN", "SETUP", "SETUP", "PLAY"], start=1):
        h.add(cseq, method)
    await h.settle()
    assert h.started == [1, 2, 3, 4]  # the PLAY waits for every earlier answer
    h.done[3].set_result(200)  # a later one finishes first: held until 1 and 2 are answered
    await h.settle()
    assert h.answered == []
    h.done[1].set_result(200)
    h.done[2].set_result(454)
    await h.settle()
    assert h.answered == [(1, 200), (2, 454), (3, 200)] and h.started == [1, 2, 3, 4]
    h.done[4].set_result(200)
    await h.settle()
    assert h.started == [1, 2, 3, 4, 5]
    h.done[5].set_result(200)
    await h.settle()
    assert [c for c, _ in h.answered] == [1, 2, 3, 4, 5] and h.pipeline.unanswered == 0


async def test_other_requests_and_other_sessions_run_alone():
    h = Handlers()
    h.add(1, "SETUP", session=None)  # creates the session: alone
    h.add(2, "SETUP", session="s1")
    h.add(3, "SETUP", session="s2")  # another session's SelectStream waits for s1's
    await h.settle()
    assert h.started == [1]
    h.done[1].set_result(200)
    await h.settle()
    assert h.started == [1, 2]
    h.done[2].set_result(200)
    await h.settle()
    assert h.started == [1, 2, 3]


async def test_beyond_the_limit_a_request_is_answered_503_in_its_turn_without_being_handled():
    h = Handlers(limit=2)
    assert [h.add(1, "OPTIONS"), h.add(2, "OPTIONS"), h.add(3, "OPTIONS")] == [True, True, False]
    assert h.pipeline.full
    await h.settle()
    h.done[1].set_result(200)
    await h.settle()
    h.done[2].set_result(200)
    await h.settle()
    assert h.answered == [(1, 200), (2, 200), (3, 503)] and h.started == [1, 2]
    assert h.add(4, "OPTIONS")


async def test_an_answer_that_ends_the_connection_cancels_what_runs_alongside():
    h = Handlers(keep_answering=False)
    h.add(1, "TEARDOWN")
    h.add(2, "TEARDOWN")
    await h.settle()
    second = h.pipeline.in_flight[1].task
    h.done[1].set_result(403)
    await h.settle()
    assert h.answered == [(1, 403)] and second.cancelled() and h.pipeline.unanswered == 0
