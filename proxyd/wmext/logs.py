"""LogPlay / LogConnect from players ([MS-RTSP] 3.2.5.9, 3.2.5.12): parsed leniently, reported as
`playlog` (a log that cannot be parsed is still reported raw, with its parse error), and a legacy
LogPlay becomes a rendering remote-log for the origin when it subscribed ([MS-WMSP] 3.2.5.11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxyd.rtsp.uri import url_key
from proxyd.wm.classify import RequestKind
from proxyd.wm.wmlog import parse_log
from proxyd.wm.wmlog_forward import forwarding_action
from proxyd.wmext.events import legacy_log_to_remote_log

if TYPE_CHECKING:
    from proxyd.serving.contracts import Player
    from proxyd.routing import Target
    from proxyd.rtsp.events import Request

MAX_RAW_CHARS = 256 * 1024
MAX_ERROR_CHARS = 2000


def handle_log(player: Player, request: Request, kind: RequestKind, target: Target,
               session_id: str | None) -> None:
    hint = "logplay" if kind is RequestKind.LOG_PLAY else "logconnect"
    log = parse_log(request.body, hint=hint)
    user_agent = (request.headers.get("User-Agent") or player.user_agent)[:512]
    url = url_key(request.uri)
    player.context.emit("playlog", {
        "session_id": session_id, "url": url, "kind": hint, "log_type": log.log_type,
        "player_addr": player.peer, "user_agent": user_agent,
        "raw": request.body[:MAX_RAW_CHARS].decode("utf-8", "replace"), "fields": dict(log.fields),
        "parse_error": "; ".join(log.errors)[:MAX_ERROR_CHARS] or None,
    })
    if kind is RequestKind.LOG_PLAY and forwarding_action(log.log_type) == "convert":
        legacy_log_to_remote_log(player, target, session_id, url, log, user_agent)
