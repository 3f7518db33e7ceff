"""What every response to a player passes through ([MS-RTSP] 2.2.6.10, 3.2.5.2).

- Supported: our server-role features on every response except GetContentInfo and SendEvent.
  `fastcache` is listed only when the origin behind the request listed it: the relay passes Speed
  through, so only such an origin honours it (players send remote-log SendEvents only after using
  Speed, 3.1.4.9). The origin's own Supported never reaches the player.
- A Describe or GetContentInfo answer's Cache-Control is remembered per content: its x-wms-event-subscription decides
  which player events are forwarded upstream (2.2.6.2.10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxyd.routing import RoutingError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.wm.classify import classify_request, response_carries_supported
from proxyd.wm.supported import FASTCACHE, format_supported, server_role_features

if TYPE_CHECKING:
    from proxyd.serving.contracts import Player

BASE = format_supported(server_role_features(honours_speed=False))
WITH_FASTCACHE = format_supported(server_role_features(honours_speed=True))


def is_content_info(request: Request) -> bool:
    """Describe and GetContentInfo answers carry the content's Cache-Control."""
    return request.method == "DESCRIBE" or (
        request.method == "GET_PARAMETER" and (request.headers.get("Content-Type") or "").split(";")[0]
        .strip().lower() == "application/x-wms-getcontentinfo")


def respond(player: Player, request: Request, response: Response) -> Response:
    """The response as the player gets it; records what the origin told us on the way."""
    state = player.context.wm
    try:
        target = player.target_for(request) if request.uri != "*" else None
    except RoutingError:
        target = None
    origin = (target.origin_host, target.origin_port) if target is not None else None
    origin_listed = response.headers.get("Supported")
    if origin is not None:
        state.observe_origin_supported(origin, origin_listed)
        if is_content_info(request) and 200 <= response.status < 300:
            state.observe_cache_control(target.origin_url, response.headers.get("Cache-Control"))
    kind = classify_request(request.method, request.headers.get("Content-Type"), bool(request.body))
    headers = response.headers.remove("Supported") if origin_listed is not None else response.headers
    if response_carries_supported(kind):
        fastcache = origin is not None and state.origin_supports(origin, FASTCACHE)
        headers = Headers((*headers.items(), ("Supported", WITH_FASTCACHE if fastcache else BASE)))
    elif origin_listed is None:
        return response
    return Response(response.status, response.reason, headers, response.body)
