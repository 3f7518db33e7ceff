"""A cache replay waiting for a slow TCP player.

Recorded media can wait, so a TCP player whose connection buffer is past --write-high-water is not
dropped packets as a live player is: its replay stops pacing until the buffer drains, then goes on
from where it stopped (its media clock shifted by the wait); other replays are not held up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from proxyd.cache.replay_out import ReplayStream
from proxyd.log import get_logger
from proxyd.origin.stream_relay import InterleavedWriter

log = get_logger("cache.replay")


def congested_writer(outs: list[ReplayStream | None]) -> InterleavedWriter | None:
    """The TCP connection of these streams that is past its high-water mark, if any."""
    for out in outs:
        if out is not None:
            writer = out.relay.player_writer
            if writer is not None and writer.congested:
                return writer
    return None


class DrainWait:
    """One replay's wait for its player's connection to drain; `resume(waited_seconds)` at the end."""

    def __init__(self, loop: asyncio.AbstractEventLoop, resume: Callable[[float], None]) -> None:
        self.loop, self.resume = loop, resume
        self.writer: InterleavedWriter | None = None  # the TCP writer waited on (None: not waiting)
        self.since = 0.0
        self.stalls = 0

    def start(self, writer: InterleavedWriter, now: float, log_ctx: str) -> None:
        self.writer, self.since = writer, now
        self.stalls += 1
        if self.stalls == 1:  # once per session: a slow reader may stall on every drain cycle
            log.info("%s slow player: replay paused until its connection drains (%d bytes buffered)",
                     log_ctx, writer.buffered)
        writer.when_drained(self.drained)

    def cancel(self) -> None:
        if self.writer is not None:
            self.writer.forget_drained(self.drained)
            self.writer = None

    def drained(self) -> None:
        if self.writer is None:
            return
        self.writer = None
        self.resume(self.loop.time() - self.since)
