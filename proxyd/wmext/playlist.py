"""Server-side playlists and EndOfStream ([MS-RTSP] 2.2.6.20-23, 2.2.7.3, 3.2.4.1-2, 3.2.5.1).

- `relay_to_player`: an origin's EndOfStream SET_PARAMETER or Announce rewritten for the player's
  connection: URLs (request-URI, RTP-Info, SDP a=control) point at the proxy, the Session header and
  the EndOfStream body's `Session:` line carry the player's session id; X-Notice, X-Playlist-Gen-Id,
  Cache-Control, X-Playlist-Change-Notice and X-Receding-PlaylistChange pass unchanged.
- `send_end_of_stream`: proxyd's own EndOfStream when it plays a playlist entry from cache.
- `generation_mismatch`: the 412 rule for X-Playlist-Gen-Id (3.2.5.1 step 3).
"""

from __future__ import annotations

import re

from proxyd.routing import HOP_HEADERS, rewrite_rtp_info, rewrite_sdp_controls
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.wm.classify import CT_EXTENSION_CMD, media_type
from proxyd.wm.messages import EosReason, end_of_stream_request

_BODY_SESSION = re.compile(rb"(?im)^(session[ \t]*:[ \t]*)[^\r\n]*")
MAX_GEN_ID = 0xFFFFFFFF


def relay_to_player(session, request: Request) -> Request:
    target = session.target
    url = target.to_player(request.uri) if request.uri != "*" else request.uri
    headers = [(n, v) for n, v in request.headers.items() if n.lower() not in HOP_HEADERS]
    rtp_info = request.headers.get("RTP-Info")
    if rtp_info:
        headers.append(("RTP-Info", rewrite_rtp_info(rtp_info, target.to_player)))
    headers.append(("Session", session.id))
    body = request.body
    if request.method == "SET_PARAMETER" and media_type(request.headers.get("Content-Type")) == \
            CT_EXTENSION_CMD.lower():
        body = _BODY_SESSION.sub(lambda m: m.group(1) + session.id.encode(), body, count=1)
    elif request.method == "ANNOUNCE":
        if body:
            body = rewrite_sdp_controls(body, target.to_player)
        if request.uri != "*":  # the next entry's Cache-Control replaces the subscription (4.4.5)
            session.context.wm.observe_cache_control(request.uri, request.headers.get("Cache-Control"))
    return Request(request.method, url, Headers(headers), body)


def send_end_of_stream(session, streams: list[tuple[str, int]], *, playlist_gen_id: int = 0,
                       more_entries: bool = False, reason: EosReason | None = None) -> None:
    """proxyd's EndOfStream to the player at the end of an entry it plays from cache (3.2.4.1).

    `streams`: (player-facing control URL, seq of the next RTP packet) per selected stream.
    """
    if more_entries and reason is None:
        reason = "end-of-playlist-entry"
    headers, body = end_of_stream_request(session_id=session.id, streams=streams,
                                          playlist_gen_id=playlist_gen_id, reason=reason)
    url = session.target.to_player(session.presentation_url)
    session.player.send_server_request(Request("SET_PARAMETER", url, Headers(headers), body))


def parse_gen_id(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > MAX_GEN_ID:
        return None
    return int(text)


def generation_mismatch(request: Request, current: int, previous: int = 0) -> Response | None:
    """412 for a request naming a playlist generation that is not the current one; Play and Teardown
    may also name the previous entry. A value of 0 or no header is never a mismatch."""
    raw = request.headers.get("X-Playlist-Gen-Id")
    if raw is None:
        return None
    gen = parse_gen_id(raw)
    if gen is None:
        return Response(400, "Bad Request", Headers())
    if gen == 0 or not current:
        return None
    allowed = {current, previous} if request.method in ("PLAY", "TEARDOWN") else {current}
    if gen in allowed:
        return None
    return Response(412, "Precondition Failed", Headers([("X-Playlist-Gen-Id", str(current))]))
