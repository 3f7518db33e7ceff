"""SelectStream deselect in a relayed session ([MS-RTSP] 2.2.7.10.2, 4.4.5): a TEARDOWN on a stream
control URL removes that stream only; the session stays. At a server-side playlist entry change the
player deselects the old entry's streams this way and then selects the new ones with SETUP, so once
no stream is left the session goes back to `ready` and accepts SETUP again."""

from __future__ import annotations

from proxyd.rtsp.events import Request, Response
from proxyd.rtsp.uri import url_key


def stream_of(session, request: Request):
    """The session's stream addressed by this request's URL, or None for the aggregate URL."""
    urls = getattr(session, "stream_urls", None)
    if not urls or request.uri == "*":
        return None
    wanted = url_key(session.target.to_origin(request.uri))
    return next((stream for url, stream in urls.items() if url_key(url) == wanted), None)


async def deselect(session, request: Request) -> Response:
    stream = stream_of(session, request)
    resp = await session.origin_request(request)
    if not 200 <= resp.status < 300:
        return resp
    session.stream_urls = {url: s for url, s in session.stream_urls.items() if s is not stream}
    session.setup_headers = {url: h for url, h in session.setup_headers.items() if url in session.stream_urls}
    session.origin_channels = {ch: entry for ch, entry in session.origin_channels.items()
                               if entry[0] is not stream}
    for channel in [c for c, s in session.player.channels.items() if s is stream]:
        del session.player.channels[channel]
    if stream in session.streams:
        session.streams.remove(stream)
    stream.close()
    if not session.streams:
        session.state = "ready"  # the next entry's streams are selected with SETUP (4.4.5)
    return resp
