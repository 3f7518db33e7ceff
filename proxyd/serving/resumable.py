"""Resumable sessions ([MS-RTSP] 3.2.7.2): a session outlives its player's TCP connection.
Used by every session kind through proxyd.serving.session_base.SessionBase."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxyd.rtsp.uri import is_within

if TYPE_CHECKING:
    from proxyd.serving.contracts import Player


class Resumable:
    """[MS-RTSP] 3.2.7.2 for every session kind. When the player's TCP connection drops, a session in
    INIT ends at once; a READY or PLAYING one is detached: its RTP stops, it moves to READY and its
    Idle-Timeout starts (the session timer reaps it with end_reason "timeout"). A request carrying
    its Session id on a new connection from the same address adopts it (proxyd.player.connection), and PLAY
    resumes it. Each kind implements `park()` (stop sending, keep the origin session, split
    membership or replay position) and `unpark(player)` (rebind the streams to `player`)."""

    detached = False
    created_ip = ""  # the player address the session was created from (set by the player connection)
    setup_uri = ""  # the player-facing URL of its first SETUP (set by the player connection)

    def detach(self) -> None:
        if self.ended:
            return
        if self.state == "init":
            self.close("connection_lost")
            return
        self.park()
        self.state = "ready"
        self.detached = True
        self.touch()  # the Idle-Timeout runs from the drop; the session timer already runs

    def attach(self, player: Player) -> None:
        self.player = player
        self.detached = False
        self.unpark(player)
        self.touch()

    def same_presentation(self, uri: str) -> bool:
        """`uri` names this session's presentation (its aggregate URL or the stream it set up
        first): a session id alone is not enough to adopt a session."""
        return uri.strip() == "*" or is_within(self.setup_uri, uri)


def park_relays(streams) -> list[tuple]:
    """Stop a StreamRelay-based session's output (relay, cache replay); returns what unpark needs."""
    parked = []
    for s in streams:
        parked.append((s.player_rtp_addr, s.player_rtcp_addr, s.player_writer is not None))
        s.player_rtp_addr = s.player_rtcp_addr = s.player_writer = None
    return parked


def unpark_relays(streams, parked: list[tuple], player: Player) -> None:
    """Send again, to the same UDP client ports or on `player`'s connection with the same channels."""
    for s, (rtp, rtcp, tcp) in zip(streams, parked, strict=True):
        if tcp:
            s.player_writer = player.media_writer()
            player.register_channel(s.player_channels[1], s)
        else:
            s.player_rtp_addr, s.player_rtcp_addr = rtp, rtcp
