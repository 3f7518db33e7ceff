"""ReplaySource: what a cache replay plays, a committed entry or a running fill (one playlist entry)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from proxyd.cache.playlist import Playlist
from proxyd.rtsp.uri import url_key

if TYPE_CHECKING:
    from proxyd.cache.media import EntryMedia


@dataclasses.dataclass
class ReplaySource:
    """What a replay needs from an entry or a fill; `release(bytes_served)` is called once at close."""

    media: EntryMedia
    controls: list[str]  # origin control URL per stream
    clock_rates: list[int]
    rtptime0: list[int | None]
    duration: float | None
    release: Callable[[int], None]
    served_from: str = "cache"
    content_url: str = ""  # origin URL of the presentation (the entry's URL)
    gen_id: int = 0  # X-Playlist-Gen-Id of the stored entry (0: none)
    # What the Announce of this entry carries when it follows another playlist entry:
    sdp: str = ""
    cache_control: str | None = None
    supported: str | None = None
    age: float = 0.0  # seconds since the origin answered (for the Announce's Cache-Control)
    playlist: Playlist | None = None  # every entry of a server-side playlist, this one included
    on_play: Callable[[], Awaitable[None]] | None = None  # a fill's: its upstream PLAY, before ours

    def stream_index(self, origin_url: str) -> int | None:
        """The stream whose control URL is `origin_url` (None: not one of this entry's)."""
        wanted = url_key(origin_url)
        for i, control in enumerate(self.controls):
            if url_key(control) == wanted:
                return i
        return None
