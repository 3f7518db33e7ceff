"""Where a cache replay's PLAY starts: the Range it asks for, the media time it starts at, and
the stream timestamp anchors RTP-Info needs (a replay of a running fill may wait for them)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from proxyd.cache.replay_out import ReplayStream
from proxyd.cache.replay_source import ReplaySource
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Request
from proxyd.rtsp.headers import parse_range

if TYPE_CHECKING:
    from proxyd.cache.media import EntryMedia


class RangeRefused(Exception):
    """A PLAY Range the replay cannot serve: answer with `status`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status, self.reason = status, reason


def requested_position(request: Request) -> float | None:
    """The npt start of the PLAY's Range in seconds (None: go on from the current position)."""
    value = request.headers.get("Range")
    if not value:
        return None
    try:
        parsed = parse_range(value)
    except RtspError:
        raise RangeRefused(400, "Bad Request") from None
    if parsed.unit != "npt":
        raise RangeRefused(457, "Invalid Range")
    if parsed.start_now:
        return None
    return parsed.start or 0.0


def beyond(position: float | None, duration: float | None) -> bool:
    """Whether a PLAY at `position` starts past the end of the media (457)."""
    return position is not None and duration is not None and position > duration


def start_media_us(media: EntryMedia, pos: int, position: float | None, duration: float | None) -> int:
    """The media time (microseconds) a replay at packet `pos` starts from."""
    if pos < len(media):
        return media.times[pos]
    if media.finished:
        return int((duration or 0) * 1e6)
    # A growing fill with nothing recorded there yet: its next packets start at the position.
    return int(position * 1e6) if position is not None else media.times[-1] if len(media) else 0


async def await_anchors(loop: asyncio.AbstractEventLoop, source: ReplaySource,
                        outs: list[ReplayStream | None], timeout: float) -> None:
    """A PLAY just after a fill started: each stream's timestamps are anchored when the origin
    answers PLAY (RTP-Info) or sends its first packet. RTP-Info and sender reports need the
    anchor (a chained proxy filling from this replay takes its timeline from RTP-Info), so wait
    for it, at most `timeout` seconds (--origin-response-timeout)."""
    media = source.media
    deadline = loop.time() + timeout
    while any(out is not None and source.rtptime0[i] is None for i, out in enumerate(outs)) \
            and not media.finished and loop.time() < deadline:
        grown = loop.create_future()

        def wake(grown=grown) -> None:
            if not grown.done():
                grown.set_result(None)

        media.when_grown(wake)
        try:
            async with asyncio.timeout(deadline - loop.time()):
                await grown
        except TimeoutError:
            pass
        finally:
            media.forget_waiter(wake)
    for i, out in enumerate(outs):
        if out is not None and source.rtptime0[i] is not None:
            out.rtptime0 = source.rtptime0[i]
