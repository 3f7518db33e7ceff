"""GetContentInfo in the server role ([MS-RTSP] 3.2.5.3): answered from the cache for downstream
proxies (so proxies can be chained), else forwarded upstream by the caller (miss policy
FORWARD_REQUEST, brief 5.6.3).

Sources are registered explicitly in the ServerContext by the app (proxyd.app.strategies):
`context.content_info_sources.append(lookup)`, `lookup(origin_url) -> ContentInfo | None`.
`lookup` answers only for a stored, unexpired entry; its Cache-Control must already be the
re-emitted one (proxyd.wm.cache_control.reemit_for_hit: max-age lowered to the remaining lifetime).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyd.rtsp.events import Headers, Response
from proxyd.serving.contracts import ServerContext
from proxyd.wm.messages import get_content_info_response


@dataclass(frozen=True)
class ContentInfo:
    cache_control: str
    last_modified: str | None = None
    etag: str | None = None


def cached_content_info(context: ServerContext, origin_url: str) -> ContentInfo | None:
    for source in context.content_info_sources:
        info = source(origin_url)
        if info is not None:
            return info
    return None


def content_info_response(info: ContentInfo) -> Response:
    """Cache-Control (mandatory), the validators we hold, empty body, no Supported (3.2.5.2)."""
    headers, body = get_content_info_response(info.cache_control)
    if info.last_modified:
        headers.append(("Last-Modified", info.last_modified))
    if info.etag:
        headers.append(("ETag", info.etag))
    return Response(200, "OK", Headers(headers), body)
