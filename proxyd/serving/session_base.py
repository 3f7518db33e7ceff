"""SessionBase: what every player session kind (relay ProxySession, cache ReplaySession,
SplitSession) shares, written once: id, Session header, touch, the one loop timer (keepalive,
counters, Idle-Timeout reaping), started/ended reports, the close sequence and Resumable.

A kind implements the PlayerSession requests (setup/play/pause/teardown/origin_request), its
reports' data (`started_data`, `counters_data`) and these hooks: `release(reason, origin_teardown)`
(free its sockets, hub membership or origin session), `after_close()` (its last words, e.g. a
remote-close event), `park()`/`unpark(player)` (Resumable), `tcp_streams()` (any interleaved
stream: no idle reaping while that connection is open) and `origin_keepalive()`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine

from proxyd.log import context as log_context
from proxyd.log import get_logger
from proxyd.routing import Target
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.serving.contracts import Player, ServerContext
from proxyd.serving.resumable import Resumable
from proxyd.serving.timers import SessionTimers, TransactionCounter

log = get_logger("session")

NO_KEEPALIVE = 1e9  # seconds: a session without an origin session of its own


class SessionBase(Resumable):
    kind = "session"  # word in the end-of-session log line

    def __init__(self, context: ServerContext, player: Player, target: Target) -> None:
        self.id = secrets.token_hex(8)
        self.context = context
        self.limits = context.config.limits
        self.player = player
        self.target = target
        self.state = "init"
        self.streams: list = []
        self.loop = asyncio.get_running_loop()
        self.timers: SessionTimers | None = None
        self.timer_handle: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.tasks: set[asyncio.Task] = set()
        self.ended = False
        self.started_reported = False
        self.transactions = TransactionCounter(self.loop.time(), limit=self.limits.session_max_transactions,
                                               heartbeat=self.limits.session_heartbeat)

    @property
    def player_session_header(self) -> str:
        return f"{self.id};timeout={self.limits.session_timeout}"

    @property
    def log_ctx(self) -> str:
        return log_context(self.player.peer, None, self.id)

    @property
    def presentation_url(self) -> str:
        return self.target.origin_url

    def touch(self) -> None:
        if self.timers is not None:
            self.timers.touch(self.loop.time())

    def admit_transaction(self, method: str) -> bool:
        """False when the session sent more transactions than allowed this heartbeat (3.2.5.1: 503)."""
        return self.transactions.admit(method, self.loop.time())

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        """A task cancelled when the session closes."""
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- SelectStream: only the relay deselects streams --------------------------------------
    @property
    def pipelines_select_streams(self) -> bool:
        return False

    def addressed_stream(self, request: Request) -> object | None:
        return None

    async def deselect(self, request: Request) -> Response:
        return Response(455, "Method Not Valid in This State", Headers())

    # --- timers ------------------------------------------------------------------------------
    def start_timers(self, keepalive_interval: float = NO_KEEPALIVE) -> None:
        """At the first successful SETUP: one loop timer from now on."""
        if self.timers is not None:
            return
        # the Idle-Timeout runs a few seconds past the ;timeout= announced (3.2.5.2: 60 vs 65 s)
        idle_timeout = self.limits.session_timeout + self.limits.session_idle_margin
        self.timers = SessionTimers(self.loop.time(), keepalive_interval=keepalive_interval,
                                    idle_timeout=idle_timeout,
                                    counters_interval=self.limits.counters_interval)
        self.arm_timer()

    def arm_timer(self) -> None:
        """One loop timer per session, re-armed only when the deadline moves."""
        if self.ended or self.timers is None:
            return
        deadline = self.timers.deadline()
        if self.timer_handle is not None and deadline == self.timer_at:
            return
        if self.timer_handle is not None:
            self.timer_handle.cancel()
        self.timer_at = deadline
        self.timer_handle = self.loop.call_at(deadline, self.on_timer)

    def on_timer(self) -> None:
        self.timer_handle = None
        if self.ended:
            return
        player_active = any(s.player_seen for s in self.streams) and not self.detached
        for s in self.streams:
            s.player_seen = False
        # [MS-RTSP] 3.2.5.2: only PLAYING with RTP on the player's open TCP connection stops the
        # Idle-Timeout; READY over TCP expires like any other session.
        tcp_playing = self.state == "playing" and self.tcp_streams() and self.player.is_open
        for action in self.timers.due(self.loop.time(), player_active=player_active,
                                      reapable=not tcp_playing):
            if action == "reap":  # a detached session too, whatever RTCP still arrives
                self.close("timeout", "player idle")
                if not self.player.sessions:  # 3.2.6.2: its TCP connection is closed too
                    self.player.close_connection("session idle timeout")
                return
            if action == "keepalive":
                self.origin_keepalive()
            elif action == "counters" and self.started_reported:
                self.context.emit("session.counters", self.counters_data())
        self.arm_timer()

    def tcp_streams(self) -> bool:
        return any(s.player_writer is not None for s in self.streams)

    def origin_keepalive(self) -> None:
        """Keep the kind's own origin session alive (relay); others have none."""

    # --- reports and close -------------------------------------------------------------------
    def report_started(self) -> None:
        if not self.started_reported:
            self.started_reported = True
            self.context.emit("session.started", self.started_data())

    def close(self, reason: str, detail: str = "", *, origin_teardown: bool = True) -> None:
        """Release every socket, task and registration, report the end; idempotent."""
        if self.ended:
            return
        self.ended = True
        # A session whose first SETUP was refused was never the player's: the refusal, answered
        # after this, is its one log line, and the connection stays usable.
        held = self.detached or self.player.sessions.get(self.id) is self
        log.log(logging.INFO if held else logging.DEBUG, "%s %s ended: %s %s", self.log_ctx, self.kind,
                reason, detail)
        if self.timer_handle is not None:
            self.timer_handle.cancel()
            self.timer_handle = None
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        data = self.counters_data()
        self.release(reason, origin_teardown)
        self.player.forget_session(self)
        self.context.forget_session(self)
        if self.started_reported:
            self.context.emit("session.ended", {**data, "end_reason": reason})
        self.after_close()
        if reason == "origin_error" and held:
            self.player.close_connection("origin session lost")

    def release(self, reason: str, origin_teardown: bool) -> None:
        for stream in self.streams:
            stream.close()

    def after_close(self) -> None:
        """After the session.ended report."""

    # Implemented by each kind (PlayerSession): started_data(), counters_data(), park(), unpark().
    def started_data(self) -> dict:
        raise NotImplementedError

    def counters_data(self) -> dict:
        raise NotImplementedError
