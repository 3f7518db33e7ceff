"""A stored entry's GetContentInfo ([MS-RTSP] 2.2.7.4, 3.1.4.1), following the origin's redirects
(3.1.5.4): a 301/302 to its Location, where the entry is revalidated from then on (the caller keeps
the answer's `url` as the entry's `moved_to`); a 305 through the proxy its Location names, the URL
kept. At most --max-redirects hops, and only to origins a route or --allow-origin names: a Location
is the origin's word, never a licence to reach an arbitrary host. A redirect not followed is an
origin error (the stale-if-error rules apply)."""

from __future__ import annotations

from dataclasses import dataclass

from proxyd.log import get_logger
from proxyd.origin.client import OriginError
from proxyd.origin.exchange import OriginExchange
from proxyd.rtsp.errors import HeaderParseError
from proxyd.rtsp.events import Headers, Response
from proxyd.rtsp.uri import same_resource, split_rtsp_url
from proxyd.serving.contracts import ServerContext
from proxyd.wm.messages import get_content_info_request

log = get_logger("cache")

REDIRECTS = {301: "moved", 302: "moved", 305: "use proxy"}


@dataclass(frozen=True)
class ContentInfoAnswer:
    response: Response
    url: str  # the URL that answered (a 301/302's Location once followed)


async def entry_content_info(context: ServerContext, exchange: OriginExchange, url: str,
                             user_agent: str) -> ContentInfoAnswer:
    headers, body = get_content_info_request([("User-Agent", user_agent)])
    request = Headers(headers)
    if same_resource(url, exchange.target.origin_url):
        client = await exchange.connection()
        resp = await client.request("GET_PARAMETER", url, request, body)
    else:  # the entry moved to another origin earlier
        resp = await _ask(context, url, url, request, body)
    for _ in range(context.config.limits.max_redirects + 1):
        if resp.status not in REDIRECTS:
            return ContentInfoAnswer(resp, url)
        location = resp.headers.get("Location") or ""
        try:
            parts = split_rtsp_url(location)
        except HeaderParseError:
            raise OriginError(502, "Bad Gateway", f"GetContentInfo {resp.status} without a usable Location") from None
        if not context.router.may_reach(parts.host, parts.port):
            raise OriginError(502, "Bad Gateway", f"GetContentInfo {resp.status} to {parts.authority}, "
                                                  "an origin no route or --allow-origin names")
        log.info("cache: GetContentInfo for %s: %d (%s) %s", url, resp.status, REDIRECTS[resp.status], location)
        if resp.status != 305:
            url = location
        resp = await _ask(context, location, url, request, body)
    raise OriginError(502, "Bad Gateway", f"GetContentInfo for {url}: more than --max-redirects redirects")


async def _ask(context: ServerContext, server_url: str, url: str, headers: Headers, body: bytes) -> Response:
    """One GetContentInfo for `url` sent to the server of `server_url` (the origin, or a proxy)."""
    server = split_rtsp_url(server_url)
    client = await context.origin_connector.connect(server.host, server.port, context.router.credentials_for(url))
    try:
        return await client.request("GET_PARAMETER", url, headers, body)
    finally:
        client.close()
