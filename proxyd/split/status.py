"""`split.changed` reports of one hub (docs/architecture.md, event table).

A hub reports on every state change (starting, live, reconnecting, ended) and origin-transport
change; while live, at most once per `counters_interval` when its player count or counters moved
(one timer per hub: never a report per player join, whatever the number of players).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Protocol

from proxyd.config import Limits
from proxyd.control.reports import iso_utc
from proxyd.rtsp.uri import url_key
from proxyd.serving.contracts import ServerContext


class SplitView(Protocol):
    """What the status reads of its hub (proxyd.split.hub.Hub)."""

    context: ServerContext
    limits: Limits
    players: set
    streams: list
    aggregate_url: str
    state: str
    end_reason: str
    reconnects: int
    media_stalls: int
    use_tcp: bool


class SplitStatus:
    def __init__(self, hub: SplitView) -> None:
        self.hub = hub
        self.split_id = str(uuid.uuid4())
        self.started_at = iso_utc(time.time())
        self.player_url: str | None = None  # player-facing URL, known once a player attached
        self.peak_players = 0
        self.interval = float(hub.limits.counters_interval)
        self._reported: tuple | None = None  # what the last report said (state, transport, players, packets)
        self._timer: asyncio.TimerHandle | None = None

    def player_attached(self, player) -> None:
        self.peak_players = max(self.peak_players, len(self.hub.players))
        if self.player_url is None:
            self.player_url = url_key(player.target.to_player(self.hub.aggregate_url))

    def report(self) -> None:
        """Emit the hub's current status now (state changes call this)."""
        data = self.data()
        self._reported = self._mark(data)
        self.hub.context.emit("split.changed", data)
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data(self) -> dict:
        hub = self.hub
        ended = hub.state == "ended"
        return {
            "split_id": self.split_id, "url": url_key(hub.aggregate_url), "player_url": self.player_url,
            "state": hub.state, "players": len(hub.players), "peak_players": self.peak_players,
            "reconnects": hub.reconnects, "media_stalls": hub.media_stalls,
            "origin_transport": "tcp" if hub.use_tcp else "udp", "started_at": self.started_at,
            "end_reason": hub.end_reason.replace(" ", "_") if ended else None,
            "packets_in": sum(s.packets_in for s in hub.streams),
            "bytes_in": sum(s.bytes_in for s in hub.streams),
        }

    @staticmethod
    def _mark(data: dict) -> tuple:
        return (data["state"], data["origin_transport"], data["players"], data["packets_in"], data["bytes_in"])

    def _arm(self) -> None:
        if self._timer is None and self.hub.state != "ended" and self.interval > 0:
            self._timer = self.hub.loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.hub.state == "ended":
            return
        if self.hub.state == "live":
            data = self.data()
            if self._mark(data) != self._reported:
                self._reported = self._mark(data)
                self.hub.context.emit("split.changed", data)
        self._arm()
