"""ReplayPacer: one loop timer per tick for every replay due in it; a replay is woken at most one
tick before its time, once per schedule, and not at all once cancelled."""

from __future__ import annotations

import asyncio

import uvloop

from proxyd.cache.pacer import ReplayPacer, flush_grid

TICK = 0.005
CLOCK_RESOLUTION = 0.001  # uvloop's loop clock counts milliseconds


class Member:
    pace_slot = None

    def __init__(self, loop, when: float, done: asyncio.Event | None = None) -> None:
        self.loop, self.when, self.done = loop, when, done
        self.calls: list[tuple[float, float]] = []

    def paced(self, now: float, horizon: float) -> None:
        self.calls.append((self.loop.time(), horizon))
        if self.done is not None:
            self.done.set()


async def test_members_due_in_one_tick_share_one_timer_and_are_not_woken_early():
    loop = asyncio.get_running_loop()
    pacer = ReplayPacer(loop, TICK)
    start = (int(loop.time() / TICK) + 4) * TICK  # a tick boundary a little ahead
    times = [start + TICK * (k + 0.1 + 0.8 * i / 50) for k in range(3) for i in range(50)]
    finished = asyncio.Event()
    members = [Member(loop, when) for when in times]
    members[-1].done = finished
    for member in members:
        pacer.schedule(member, member.when)
    await asyncio.wait_for(finished.wait(), 10)
    assert all(len(m.calls) == 1 for m in members)
    assert pacer.wakeups <= 3  # 150 replays, 3 ticks: at most one timer each
    for m in members:
        called_at, horizon = m.calls[0]
        assert called_at >= m.when - TICK - CLOCK_RESOLUTION
        assert horizon > m.when  # everything due up to its time may be sent


async def test_a_cancelled_member_is_not_woken():
    loop = asyncio.get_running_loop()
    pacer = ReplayPacer(loop, TICK)
    finished = asyncio.Event()
    when = loop.time() + 2 * TICK
    cancelled, kept = Member(loop, when), Member(loop, when + TICK, finished)
    pacer.schedule(cancelled, cancelled.when)
    pacer.schedule(kept, kept.when)
    pacer.cancel(cancelled)
    await asyncio.wait_for(finished.wait(), 10)
    assert cancelled.calls == [] and len(kept.calls) == 1


def test_a_member_rescheduled_from_its_callback_runs_again_later_on_uvloop():
    # proxyd's loop: its millisecond clock may read a little before the time a timer was set for
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(rescheduling(loop))
    finally:
        loop.close()


async def rescheduling(loop):
    pacer = ReplayPacer(loop, TICK)
    finished = asyncio.Event()

    class Repeating(Member):
        def paced(self, now, horizon):
            super().paced(now, horizon)
            if len(self.calls) < 5:
                self.when = horizon + TICK
                pacer.schedule(self, self.when)
            else:
                finished.set()

    member = Repeating(loop, loop.time())
    pacer.schedule(member, member.when)
    await asyncio.wait_for(finished.wait(), 10)
    assert len(member.calls) == 5
    assert pacer.wakeups <= 6  # no timer firing without a member due (uvloop's clock reads early)


def test_a_udp_replay_joins_the_grid_only_when_another_replay_has_one():
    # (grid, window): alone, no grid and one interval sent ahead; with others, the grid and no window
    assert flush_grid(0.0, 0.02, gridded=1) == (0.0, 0.02)
    assert flush_grid(0.0, 0.02, gridded=2) == (0.02, 0.0)
    assert flush_grid(0.0, 0.0, gridded=5) == (0.0, 0.0)  # interval 0: each replay's own packet times
    assert flush_grid(0.04, 0.02, gridded=1) == (0.04, 0.04)  # TCP: always its grid, one interval more
