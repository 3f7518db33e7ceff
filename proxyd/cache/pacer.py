"""One pacing clock for every cache replay of the process (a timer wheel with one loop timer).

A replay asks to be woken when its next packet is due. Wake-ups are rounded down to a tick
(--cache-pace-tick): all replays due in one tick are woken by the same loop timer, one after the
other, and each sends every packet due before the tick ends in one batch. So the loop holds one
timer, not one per packet or per player, and a packet leaves at most one tick early, never late.
Replays with a flush interval wake on its grid (on_grid) while they are not alone there (`gridded`).
"""

from __future__ import annotations

import asyncio
import heapq
import weakref
from typing import Protocol

from proxyd.log import get_logger

log = get_logger("cache.pacer")


class Paced(Protocol):
    pace_slot: int | None  # the tick it is scheduled in (None: not scheduled)

    def paced(self, now: float, horizon: float) -> None:
        """Send what is due before `horizon` (loop time), then schedule the next wake-up."""


class ReplayPacer:
    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self.loop = loop
        self.tick = tick
        self.slots: dict[int, list[Paced]] = {}
        self.heap: list[int] = []  # slot numbers with members, earliest first
        self.handle: asyncio.TimerHandle | None = None
        self.armed: int | None = None  # the slot the loop timer is set for
        self.wakeups = 0  # loop timers fired (for tests and benchmarks)
        # Playing replays with a flush interval: a grid saves wake-ups only when several share it.
        self.gridded: set[Paced] = set()

    def schedule(self, member: Paced, when: float) -> None:
        """Wake `member` in the tick holding loop time `when` (replaces an earlier schedule)."""
        slot = int(when / self.tick)
        member.pace_slot = slot
        members = self.slots.get(slot)
        if members is not None:
            members.append(member)
            return
        self.slots[slot] = [member]
        heapq.heappush(self.heap, slot)
        if self.armed is None or slot < self.armed:
            self._arm(slot)

    @staticmethod
    def cancel(member: Paced) -> None:
        member.pace_slot = None  # its entry is skipped when the slot fires

    def _arm(self, slot: int) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.armed = slot
        self.handle = self.loop.call_at(slot * self.tick, self._fire)

    def _fire(self) -> None:
        # The slot the timer was set for is due even if the loop clock (uvloop: milliseconds) reads
        # a little earlier: waiting for the clock would spin on a timer that keeps firing early.
        last = max(self.armed, int(self.loop.time() / self.tick))
        self.handle = self.armed = None
        self.wakeups += 1
        heap, slots, tick = self.heap, self.slots, self.tick
        now = self.loop.time()
        due = []
        while heap and heap[0] <= last:
            slot = heapq.heappop(heap)
            due.append((slot, slots.pop(slot)))
        for slot, members in due:  # members rescheduled meanwhile wait for the next timer
            horizon = max(now, slot * tick) + tick
            for member in members:
                if member.pace_slot != slot:
                    continue
                member.pace_slot = None
                try:
                    member.paced(now, horizon)
                except Exception:  # one broken replay must not stop the others
                    log.exception("cache replay pacing failed")
        if heap and (self.armed is None or heap[0] < self.armed):
            self._arm(heap[0])


_pacers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pacer_for(loop: asyncio.AbstractEventLoop, tick: float) -> ReplayPacer:
    """The loop's pacer (one per event loop and tick)."""
    pacer = _pacers.get(loop)
    if pacer is None or pacer.tick != tick:
        pacer = _pacers[loop] = ReplayPacer(loop, tick)
    return pacer


def on_grid(when: float, grid: float, tick: float) -> float:
    """`when` moved back onto the grid of a replay's flush interval, so every replay of the process
    with that grid wakes, and sends, in the same loop pass: writes to many players back to back cost
    far less than the same writes spread over the ticks (each of those wakes an idle reader CPU;
    measured in docs/performance.md, fourth pass), and UDP replays share one sendmmsg per port. A
    grid point must not round into the step (or tick) before it."""
    return int(when / grid + 1e-6) * grid + tick / 2


def flush_grid(tcp_interval: float, udp_interval: float, gridded: int) -> tuple[float, float]:
    """(grid, window) of a replay with a TCP player (`tcp_interval`) or else a UDP one, while
    `gridded` playing replays have an interval: every replay of a kind wakes on the same grid, so
    all of them send in one loop pass (TCP: joined writes back to back; UDP: one sendmmsg per slot
    port for all), and each wake-up sends through the end of its grid step (TCP: plus one more
    interval, so a TCP packet leaves at most two intervals early and a UDP one at most one, plus a
    tick; never late). A UDP replay alone on the grids wakes at its own next packet instead and
    sends one interval past its tick (the same bound): about 40 wake-ups a second for a 25 fps clip
    where the grid has 50, which costs a lone replay more than it saves. Fewer wakeups and system
    calls per player; audio rides with the video frame's wakeup."""
    if tcp_interval or not udp_interval:
        return tcp_interval, tcp_interval
    if gridded > 1:
        return udp_interval, 0.0
    return 0.0, udp_interval
