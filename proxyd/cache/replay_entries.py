"""Server-side playlist entries in a cache replay.

A server-side playlist is played entry by entry ([MS-RTSP] 3.2.4.1-2, 3.2.5.8): at the end of an
entry an EndOfStream with End-Of-Playlist-Entry, then the Announce of the next entry (its SDP,
X-Playlist-Gen-Id and Cache-Control); the player deselects the old streams (TEARDOWN of a stream
URL), selects the new ones and plays. X-Playlist pl-offset skips, X-Playlist-Seek-Id naming the
previous entry resends the EndOfStream. The last EndOfStream leaves the session READY.
"""

from __future__ import annotations

from collections.abc import Callable

from proxyd.cache.replay_source import ReplaySource
from proxyd.routing import rewrite_sdp_controls
from proxyd.rtsp.events import Headers, Request
from proxyd.wm.cache_control import parse_cache_control, reemit_for_hit


def entry_announce(entry: ReplaySource, url: str, session_id: str, to_player: Callable[[str], str]) -> Request:
    """ANNOUNCE of `entry` at player URL `url`: its SDP (controls as the player sees them, through
    `to_player`), X-Playlist-Gen-Id, Cache-Control and Supported."""
    headers = [("Content-Type", "application/sdp"), ("Session", session_id)]
    if entry.gen_id:
        headers.append(("X-Playlist-Gen-Id", str(entry.gen_id)))
    if entry.cache_control:
        value = reemit_for_hit(parse_cache_control(entry.cache_control), age_seconds=entry.age)
        if value:
            headers.append(("Cache-Control", value))
    if entry.supported:
        headers.append(("Supported", entry.supported))
    body = rewrite_sdp_controls(entry.sdp.encode("latin-1"), to_player)
    return Request("ANNOUNCE", url, Headers(headers), body)


PLAYLIST_OFFSETS = {"pl-offset=1": 1, "pl-offset=-1": -1}


def requested_offset(request: Request) -> int | None:
    """The entry step an X-Playlist header asks for (None: no such header; 0: not a valid offset)."""
    value = (request.headers.get("X-Playlist") or "").replace(" ", "").lower()
    return PLAYLIST_OFFSETS.get(value, 0) if value else None
