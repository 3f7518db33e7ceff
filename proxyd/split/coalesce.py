"""A split's origin RTP sockets read together, so a video frame and the audio that came with it cost
one wakeup (--split-read-coalesce).

A live presentation's video frames (25 a second) and audio packets (about 47 a second) arrive
apart, and each woke proxyd; sleeping and being woken costs about 64 us on a VM, about 40 % of a
one-player split's CPU. With a window W > 0 only the lead stream's socket (the key stream, video)
wakes the hub once it has sent media: each wakeup reads every stream's socket in one pass (one
recvmmsg each, one sendmmsg per stream for a sole player, the TCP players' joined write at the end
of the pass instead of after the --split-tcp-flush-interval timer). A timer W after the last pass
reads the others if the lead falls silent, so a packet of another stream waits at most W (usually
until the next video frame); a timer pass that finds nothing goes back to watching every socket
(an idle or audio-only hub keeps no timer) until the lead wakes again.

A video frame's packets reach the socket in several bursts over about a millisecond, and the first
wakes the hub at once: with a settle time S > 0 (--split-frame-settle), a pass that ends inside a
frame (the lead's last packet lacks the RTP marker, on an origin that marks frame ends) stops
watching the lead for S and reads the rest in one pass then (the frame's tail waits at most S).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol


class OriginReader(Protocol):
    """A hub stream's origin RTP socket (proxyd.split.stream.HubStream)."""

    def rtp_fileno(self) -> int: ...

    def read_rtp(self) -> int: ...

    @property
    def frame_open(self) -> bool: ...


class PassFlushed(Protocol):
    """What wants its pending output written at the end of a pass (proxyd.split.fanout.TcpGroup)."""

    caller_flushes: bool

    def flush(self) -> None: ...


class CoalescedReads:
    def __init__(self, streams: list[OriginReader], lead: int, window: float,
                 flushed: dict[object, PassFlushed], settle: float = 0.0) -> None:
        self.streams = streams
        self.lead = lead
        self.window = window
        self.settle = settle
        self.settling: asyncio.TimerHandle | None = None  # the lead is not watched until it runs
        self.flushed = flushed  # the hub's TCP groups (live dict: players come and go)
        self.loop = asyncio.get_running_loop()
        self.coalescing = False  # True: only the lead's socket is watched
        self.timer: asyncio.TimerHandle | None = None
        self.last_pass = 0.0  # loop time of the last pass
        self.passes = self.timer_passes = self.settled_passes = 0
        self._watch_all()

    def _watch_all(self) -> None:
        for index, stream in enumerate(self.streams):
            self.loop.add_reader(stream.rtp_fileno(), self._on_readable, index)
        self.coalescing = False

    def _on_readable(self, index: int) -> None:
        if index != self.lead and not self.coalescing:
            self.streams[index].read_rtp()  # the lead is silent: this stream alone, as without coalescing
            return
        if not self.coalescing:
            for other, stream in enumerate(self.streams):
                if other != self.lead:
                    self.loop.remove_reader(stream.rtp_fileno())
            self.coalescing = True
        self._pass()
        if self.settle and self.streams[self.lead].frame_open:
            if self.settling is not None:  # (the lead was watched again by an idle timer pass)
                self.settling.cancel()
            self.loop.remove_reader(self.streams[self.lead].rtp_fileno())
            self.settling = self.loop.call_later(self.settle, self._on_settled)

    def _on_settled(self) -> None:
        self.settling = None
        self.settled_passes += 1
        self.loop.add_reader(self.streams[self.lead].rtp_fileno(), self._on_readable, self.lead)
        self._pass()

    def _on_timer(self) -> None:
        due = self.last_pass + self.window
        if self.loop.time() < due:  # the lead woke the hub since: wait a window from that pass
            self.timer = self.loop.call_at(due, self._on_timer)
            return
        self.timer = None
        self.timer_passes += 1
        if self._pass(arm=False):
            self.timer = self.loop.call_at(self.last_pass + self.window, self._on_timer)
        else:
            self._watch_all()  # nothing came in a whole window: no timer for an idle hub

    def _pass(self, arm: bool = True) -> int:
        """Read every stream's socket; the datagrams read. arm: keep a timer due a window after the pass
        (one timer: it moves itself to a window after the last pass when it runs, no cancel per pass)."""
        self.passes += 1
        self.last_pass = self.loop.time()
        groups = self._hold(self.flushed.values()) if self.flushed else ()
        read = 0
        try:
            for stream in self.streams:
                read += stream.read_rtp()
        finally:
            for group in groups:
                group.caller_flushes = False
                group.flush()
        if arm and self.timer is None:
            self.timer = self.loop.call_at(self.last_pass + self.window, self._on_timer)
        return read

    @staticmethod
    def _hold(groups: Iterable[PassFlushed]) -> list[PassFlushed]:
        held = list(groups)
        for group in held:
            group.caller_flushes = True
        return held

    def close(self) -> None:
        """Before the streams close their sockets."""
        for timer in (self.timer, self.settling):
            if timer is not None:
                timer.cancel()
        self.timer = self.settling = None
