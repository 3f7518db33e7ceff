"""Remote events toward origins ([MS-WMSP] 2.2.5 bodies, [MS-RTSP] 2.2.7.11) as `sendevent` reports.

Each event is reported with the body to send and whether the origin subscribed to that event type
for the content; the control plane queues subscribed ones and its uplink task delivers them, or,
with no control plane, proxyd.wmext.event_sender sends them itself (never both). Player SendEvents get the [MS-WMLOG] forwarding rewrites.

API for the cache and split strategies (call on the event loop):
    remote_open(context, session)           # cached content opened / split joined for a player
    remote_close(context, session)          # ... and closed (only after a reported remote_open)
Both report only when the origin subscribed to the event type for the content.
Players' LogPlay and SendEvent are handled here for every kind of session (relay, cache, split),
so the remote-log for content served from cache or split needs no call from the strategies.
`session` needs `id` and `target` (proxyd.routing.Target); its `aggregate_url` (origin content
URL) or its hub's is used when present, else target.origin_url.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from proxyd.rtsp.uri import url_key
from proxyd.wm.remote_event import (
    EVENT_NAMES,
    REMOTE_CLOSE,
    REMOTE_LOG,
    REMOTE_OPEN,
    RemoteEvent,
    build_remote_event,
    may_forward,
    parse_remote_event,
    rebuild_with_log,
)
from proxyd.wm.wmlog import ParsedLog, parse_log
from proxyd.wm.wmlog_forward import ProxyIdentity, apply_proxy_rewrites, serialize_xml_log, to_rendering_fields
from proxyd.origin.wm_identity import PRODUCT, PROXY_HOST

if TYPE_CHECKING:
    from proxyd.serving.contracts import Player, PlayerSession, ServerContext
    from proxyd.routing import Target

MAX_REPORTED_BODY = 256 * 1024


def proxy_identity(player: Player) -> ProxyIdentity:
    """Values a forwarding proxy writes into logs ([MS-WMLOG] 2.1.41-43, 2.1.47)."""
    try:
        load = os.getloadavg()[0]
        cpu = int(100 * load / (os.cpu_count() or 1))
    except OSError:
        cpu = None
    local = player.local_host if player.local_host not in ("", "0.0.0.0", "::") else None
    return ProxyIdentity(product=PRODUCT, ip=local, dns=PROXY_HOST, cpu_util=cpu,
                         total_clients=len(player.context.connections))


def rendering_xml(log: ParsedLog, player: Player) -> str | None:
    """The rewritten rendering log for a player's log, or None when nothing could be read from it."""
    if not log.fields:
        return None
    fields = apply_proxy_rewrites(to_rendering_fields(log), player_ip=player.peer_ip,
                                  proxy=proxy_identity(player))
    return serialize_xml_log(fields, content_description=log.content_description or None)


def emit_sendevent(context: ServerContext, *, session_id: str | None, url: str, origin_url: str, event_type: int,
                   body: bytes) -> bool:
    """Report one event; returns whether the origin subscribed to it (then it will be forwarded)."""
    subscribed = may_forward(event_type, context.wm.subscription(origin_url))
    context.emit("sendevent", {
        "session_id": session_id, "url": url_key(url), "origin_url": url_key(origin_url),
        "event_type": EVENT_NAMES[event_type],
        "body": body[:MAX_REPORTED_BODY].decode("utf-8", "replace"), "subscribed": subscribed,
    })
    return subscribed


def player_sendevent(player: Player, target: Target, session_id: str | None, url: str,
                     body: bytes) -> RemoteEvent:
    """A SendEvent from a player or a downstream proxy (answered 200 by the caller at once)."""
    event = parse_remote_event(body)
    if event.event_type not in EVENT_NAMES:
        return event  # unreadable: nothing that could be forwarded (the 200 is still due)
    out = body
    if event.event_type == REMOTE_LOG:
        log = parse_log(event.remote_log or "", hint="sendevent")
        xml = rendering_xml(log, player)
        if xml is None:
            return event
        out = rebuild_with_log(event, xml, url=target.origin_url)
    emit_sendevent(player.context, session_id=session_id, url=url, origin_url=target.origin_url,
                   event_type=event.event_type, body=out)
    return event


def legacy_log_to_remote_log(player: Player, target: Target, session_id: str | None, url: str,
                             log: ParsedLog, user_agent: str) -> bool:
    """A legacy LogPlay becomes a rendering log sent as remote-log ([MS-WMSP] 3.2.5.11), if subscribed."""
    if not may_forward(REMOTE_LOG, player.context.wm.subscription(target.origin_url)):
        return False
    xml = rendering_xml(log, player)
    if xml is None:
        return False
    guid = log.fields.get("c-playerid", "")
    body = build_remote_event(REMOTE_LOG, user_agent=user_agent, user_guid=guid, url=target.origin_url,
                              rendering_log=xml)
    return emit_sendevent(player.context, session_id=session_id, url=url, origin_url=target.origin_url,
                          event_type=REMOTE_LOG, body=body)


# --- proxyd's own events for content served from cache or split ([MS-WMSP] 3.2.5.11; brief 8.4.6) ---
def content_url(session: PlayerSession) -> str:
    """The origin content URL of a cache or split session (its target may be a stream URL)."""
    return (session.presentation_url or session.target.origin_url).rstrip("/")


def _own(context: ServerContext, session: PlayerSession, event_type: int) -> bool:
    """Report one of proxyd's own events, only when the origin subscribed to it for the content."""
    origin_url = content_url(session)
    if not may_forward(event_type, context.wm.subscription(origin_url)):
        return False
    return emit_sendevent(context, session_id=session.id, url=session.target.to_player(origin_url),
                          origin_url=origin_url, event_type=event_type, body=build_remote_event(event_type))


def remote_open(context: ServerContext, session: PlayerSession) -> bool:
    """At the first PLAY of a session served from cache or split; once per session."""
    opened = context.wm.opened
    if session in opened or not _own(context, session, REMOTE_OPEN):
        return False
    opened.add(session)
    return True


def remote_close(context: ServerContext, session: PlayerSession) -> bool:
    """At the end of a session whose remote-open was reported (so the origin sees matched pairs)."""
    opened = context.wm.opened
    if session not in opened:
        return False
    opened.discard(session)
    return _own(context, session, REMOTE_CLOSE)
