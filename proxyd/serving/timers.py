"""Session deadlines shared by every session kind: keepalive toward the origin, idle-player reaping
([MS-RTSP] 3.2.7.2 Idle-Timeout) and counters reports."""

from __future__ import annotations


class SessionTimers:
    """Deadlines of one session, driven by an injected `now`: keepalive toward the origin, idle-player
    reaping and counters reports. The session keeps one loop timer armed at `deadline()`."""

    def __init__(self, now: float, *, keepalive_interval: float, idle_timeout: float,
                 counters_interval: float) -> None:
        self.keepalive_interval = keepalive_interval
        self.idle_timeout = idle_timeout
        self.counters_interval = counters_interval
        self.next_keepalive = now + keepalive_interval
        self.next_counters = now + counters_interval
        self.last_activity = now

    def touch(self, now: float) -> None:
        self.last_activity = now

    def deadline(self) -> float:
        return min(self.next_keepalive, self.next_counters, self.last_activity + self.idle_timeout)

    def due(self, now: float, *, player_active: bool, reapable: bool) -> list[str]:
        """Actions due at `now` ("keepalive", "counters", "reap"); advances their deadlines.
        `player_active`: the player showed life since the last call (e.g. RTCP receiver reports);
        `reapable`: idle reaping applies (not while a TCP player's connection is open)."""
        actions = []
        if now >= self.next_keepalive:
            actions.append("keepalive")
            self.next_keepalive = now + self.keepalive_interval
        if now >= self.next_counters:
            actions.append("counters")
            self.next_counters = now + self.counters_interval
        idle = now >= self.last_activity + self.idle_timeout
        if player_active or (idle and not reapable):
            self.last_activity = now  # alive: the idle period starts again
        elif idle:
            actions.append("reap")
        return actions


def run_due_timer_actions(session, *, tcp_player_open: bool, keepalive=None) -> bool:
    """Run what `session.timers` says is due now (reap, keepalive, counters) for any session kind
    (relay, cache replay, split). Returns False when the session was reaped. A detached session
    (its player's connection dropped) is reaped after the Idle-Timeout whatever RTCP still arrives."""
    player_active = any(s.player_seen for s in session.streams) and not session.detached
    for s in session.streams:
        s.player_seen = False
    for action in session.timers.due(session.loop.time(), player_active=player_active,
                                     reapable=not tcp_player_open):
        if action == "reap":
            session.close("timeout", "player idle")
            return False
        if action == "keepalive" and keepalive is not None:
            keepalive()
        elif action == "counters" and session.started_reported:
            session.context.emit("session.counters", session.counters_data())
    return True


class TransactionCounter:
    """[MS-RTSP] 3.2.5.1 step 5 rate limit, as intended (the spec's counters never fire as written):
    transactions of one session per heartbeat period, a burst of per-stream SETUPs or TEARDOWNs
    counting as one. `admit` is False once more than `limit` arrived within the current heartbeat."""

    BURST_METHODS = ("SETUP", "TEARDOWN")

    def __init__(self, now: float, *, limit: int, heartbeat: float) -> None:
        self.limit = limit
        self.heartbeat = heartbeat
        self.period_end = now + heartbeat
        self.count = 0
        self.burst = ""  # SETUP or TEARDOWN while a burst of them runs

    def admit(self, method: str, now: float) -> bool:
        if now >= self.period_end:  # the heartbeat fired (maybe several times): a new period
            self.count = 0
            self.period_end = now + self.heartbeat
        if method in self.BURST_METHODS and method == self.burst:
            return self.count <= self.limit
        self.burst = method if method in self.BURST_METHODS else ""
        self.count += 1
        return self.count <= self.limit
