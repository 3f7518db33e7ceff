"""GET_PARAMETER / SET_PARAMETER from players, dispatched by kind ([MS-RTSP] 2.2.7, 2.2.6.3).

LogPlay, LogConnect and SendEvent are answered 200 with no body at once (never waiting for anything
upstream); GetContentInfo is answered from the cache when a source has the entry. Everything else
(KeepAlive, SelectStream, plain parameters, GCI misses) returns None: the caller relays it.
A UdpPacketPair is refused here (451): we never list com.microsoft.wm.srvppair, and the origin's
packet pair would measure the origin-proxy path and land on the proxy's ports, not the player's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxyd.rtsp.events import Headers, Request, Response
from proxyd.wm.classify import RequestKind, classify_request
from proxyd.wmext.events import player_sendevent
from proxyd.wmext.gci import cached_content_info, content_info_response
from proxyd.wmext.logs import handle_log

if TYPE_CHECKING:
    from proxyd.serving.contracts import Player

LOG_KINDS = (RequestKind.LOG_PLAY, RequestKind.LOG_CONNECT)


async def handle_parameter(player: Player, request: Request) -> Response | None:
    kind = classify_request(request.method, request.headers.get("Content-Type"), bool(request.body))
    if kind in LOG_KINDS:
        session = player.session_for(request, required=False)  # unknown session: 454 (3.2.5.1)
        target = player.target_for(request)
        handle_log(player, request, kind, target, session.id if session else None)
        headers = [("Session", session.player_session_header)] if session is not None else []
        return Response(200, "OK", Headers(headers))
    if kind is RequestKind.SEND_EVENT:
        target = player.target_for(request)  # no session lookup for SendEvent (3.2.5.16)
        value = request.headers.get("Session")
        session_id = value.split(";")[0].strip() if value else None
        player_sendevent(player, target, session_id if session_id in player.context.sessions else None,
                         request.uri.rstrip("/"), request.body)
        return Response(200, "OK", Headers())
    if kind is RequestKind.UDP_PACKET_PAIR:
        player.session_for(request, required=False)  # an unknown session is still 454 (3.2.5.1)
        return Response(451, "Parameter Not Understood", Headers())
    if kind is RequestKind.GET_CONTENT_INFO:
        target = player.target_for(request)
        info = cached_content_info(player.context, target.origin_url)
        if info is not None:
            return content_info_response(info)
    return None
