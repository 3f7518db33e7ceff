"""A split broadcast moving to its next playlist entry ([MS-RTSP] 3.1.5.13, 3.1.5.15, 3.1.4.5,
3.1.5.16.1, 4.4.5), done once by the hub as one player would do it.

At an EndOfStream the origin session is READY and the hub logs the ended entry upstream (own
LogPlay, Windows Media origins); after the final one (no End-Of-Playlist-Entry) it stays READY: no
media timeout, no Pause when the hub ends, and the players are READY too; the hub is finished: it
takes no new player (a new DESCRIBE starts a new hub), a PLAY in it is 455, and a lost origin
connection is not reconnected. At the Announce it takes
the new entry's SDP, Cache-Control and X-Playlist-Gen-Id (new joiners' DESCRIBE answers carry
them), points its streams at the new entry's control URLs, then deselects the old streams at the
origin (TEARDOWN of each stream URL), selects the new ones (SETUP with X-Playlist-Gen-Id),
pipelined, and PLAYs with X-Playlist-Seek-Id = the new id and no Range. The hub streams keep the
players' SSRC and sequence numbering across the change (proxyd.split.stream remaps the new origin
source), so each attached player keeps receiving the new entry's RTP; a player that re-selects
(TEARDOWN, SETUP, PLAY: answered by its split session, never forwarded) starts again at the new
entry's first key frame (the join buffer restarts at the Announce). A reconnect whose DESCRIBE
names another entry tells the players so too (EndOfStream with End-Of-Playlist-Entry, Announce).

Choice: the streams are matched to the hub's by position; a new entry with more streams than the
first selects only as many (the hub's port pairs and join buffer are sized at the first DESCRIBE).
Predictive stream selection (X-RTP-Info in the Announce) is not used: every stream is selected again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Protocol

from proxyd.log import get_logger
from proxyd.origin.client import OriginClient, OriginError
from proxyd.rtp.errors import SdpError
from proxyd.rtp.sdp import Sdp, parse_sdp
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import format_rtp_info, parse_rtp_info
from proxyd.rtsp.uri import content_base
from proxyd.wm.classify import CT_EXTENSION_CMD, media_type
from proxyd.wm.messages import end_of_stream_request, parse_end_of_stream_body
from proxyd.wmext.playlist import parse_gen_id

log = get_logger("split")


class PlaylistHub(Protocol):
    """What an entry change uses of the hub (proxyd.split.hub.Hub)."""

    origin_url: str
    describe: Response
    origin: OriginClient | None
    aggregate_url: str
    media_urls: list[str]
    streams: list
    state: str
    loop: asyncio.AbstractEventLoop
    set_up: asyncio.Event

    def stream_for(self, origin_url: str): ...

    def next_entry(self, sdp: Sdp, base: str, describe: Response) -> None: ...

    def request_headers(self, extra: list | None = None) -> Headers: ...

    async def select_stream(self, stream, extra: list) -> Response: ...

    def origin_end_of_stream(self, more_entries: bool) -> None: ...

    def begin_play_period(self) -> None: ...

    def tell_players(self, request: Request) -> None: ...


class HubPlaylist:
    """The hub's server-side playlist state: current and previous X-Playlist-Gen-Id, entry changes."""

    def __init__(self, hub: PlaylistHub) -> None:
        self.hub = hub
        self.gen_id = parse_gen_id(hub.describe.headers.get("X-Playlist-Gen-Id")) or 0
        self.previous_gen_id = 0
        self.selection: asyncio.Task | None = None  # the running entry change (a strong reference)

    def on_origin_request(self, request: Request) -> Request:
        """An EndOfStream or Announce from the origin (already answered): act on it as the client
        role and return it as every player should get it (RTP-Info seq in the players' numbering)."""
        if request.method == "ANNOUNCE":
            self._announced(request)
        elif request.method == "SET_PARAMETER" and \
                media_type(request.headers.get("Content-Type")) == CT_EXTENSION_CMD.lower():
            eos = parse_end_of_stream_body(request.body)
            if eos.eof or eos.end_of_playlist_entry:
                self.hub.origin_end_of_stream(more_entries=eos.end_of_playlist_entry)
            rtp_info = request.headers.get("RTP-Info")
            if rtp_info:
                request = dataclasses.replace(request, headers=request.headers.set(
                    "RTP-Info", self.players_rtp_info(rtp_info)))
        return request

    def players_rtp_info(self, value: str) -> str:
        """The origin's RTP-Info with each seq as the players see it (after a remap it differs)."""
        try:
            entries = parse_rtp_info(value)
        except RtspError:
            return value
        out = []
        for entry in entries:
            stream = self.hub.stream_for(entry.url)
            if stream is not None and entry.seq is not None:
                entry = dataclasses.replace(entry, seq=stream.players_seq(entry.seq))
            out.append(entry)
        return format_rtp_info(out)

    def _announced(self, announce: Request) -> None:
        hub = self.hub
        try:
            sdp = parse_sdp(announce.body)
        except SdpError:
            log.warning("split %s: the origin's Announce has no usable SDP; entry not selected",
                        hub.origin_url)
            return
        gen_id = parse_gen_id(announce.headers.get("X-Playlist-Gen-Id")) or 0
        if gen_id:
            self.previous_gen_id, self.gen_id = self.gen_id, gen_id
        base = content_base(announce.headers, announce.uri if announce.uri != "*" else hub.origin_url)
        urls = sdp.media_urls(base)
        if len(urls) > len(hub.streams):
            log.warning("split %s: the next entry has %d streams, the split %d; only as many are selected",
                        hub.origin_url, len(urls), len(hub.streams))
        old_urls = [stream.url for stream in hub.streams]
        hub.next_entry(sdp, base, self._describe_for_joiners(announce, base))
        log.info("split %s: next playlist entry (gen id %d); selecting its %d streams at the origin",
                 hub.origin_url, self.gen_id, min(len(urls), len(hub.streams)))
        self.selection = hub.loop.create_task(self._select(old_urls))

    def described(self, describe: Response) -> None:
        """A reconnect's DESCRIBE names the origin's current entry, which may differ from the one
        the hub played (the entry changed meanwhile, or a new origin session starts the playlist
        again): its X-Playlist-Gen-Id, SDP and control URLs from now on."""
        hub = self.hub
        gen_id = parse_gen_id(describe.headers.get("X-Playlist-Gen-Id")) or 0
        if gen_id == self.gen_id:
            return
        try:
            sdp = parse_sdp(describe.body)
        except SdpError:
            log.warning("split %s: the reconnect's DESCRIBE has no usable SDP; entry kept", hub.origin_url)
            return
        log.info("split %s: the origin now plays entry gen id %d (was %d)", hub.origin_url, gen_id,
                 self.gen_id)
        ended_gen_id, self.previous_gen_id, self.gen_id = self.gen_id, self.gen_id, gen_id
        hub.next_entry(sdp, content_base(describe.headers, hub.origin_url), describe)
        # Attached players are told as at an entry change (3.2.4.1-2): the entry they played ended,
        # this one follows; they reselect (answered locally) and play it. Each gets its own session
        # id in place of "0" (proxyd.wmext.playlist.relay_to_player).
        headers, body = end_of_stream_request(session_id="0", streams=[], playlist_gen_id=ended_gen_id,
                                              reason="end-of-playlist-entry")
        hub.tell_players(Request("SET_PARAMETER", hub.origin_url, Headers(headers), body))
        announce = [("Content-Type", "application/sdp"), *self._entry_headers(describe)]
        hub.tell_players(Request("ANNOUNCE", hub.origin_url, Headers(announce), describe.body))

    def _describe_for_joiners(self, announce: Request, base: str) -> Response:
        """What a player joining now is told: the current entry's SDP and Cache-Control."""
        headers = self.hub.describe.headers.set("Content-Base", base)
        for name, value in self._entry_headers(announce):
            headers = headers.set(name, value)
        return Response(200, "OK", headers, announce.body)

    @staticmethod
    def _entry_headers(message: Request | Response) -> list[tuple[str, str]]:
        """An entry's Cache-Control and X-Playlist-Gen-Id (what an Announce of it carries)."""
        return [(name, message.headers.get(name)) for name in ("Cache-Control", "X-Playlist-Gen-Id")
                if message.headers.get(name)]

    async def _select(self, old_urls: list[str]) -> None:
        """3.1.4.5 then 3.1.5.16.1: deselect the old streams, select the new ones (pipelined), then
        Play with X-Playlist-Seek-Id and no Range. A failure closes the origin connection: the hub
        reconnects as after any lost origin session."""
        hub = self.hub
        origin = hub.origin
        if origin is None or not origin.is_open:
            return  # reconnecting: the new session sets the streams up at the new URLs
        gen = [("X-Playlist-Gen-Id", str(self.gen_id))] if self.gen_id else []
        try:
            answers = await asyncio.gather(
                *(origin.request("TEARDOWN", url, hub.request_headers(gen)) for url in old_urls),
                *(hub.select_stream(stream, gen) for stream in hub.streams[:len(hub.media_urls)]))
            refused = [r.status for r in answers[len(old_urls):] if not 200 <= r.status < 300]
            if refused:
                raise OriginError(502, "Bad Gateway", f"origin SETUP of the next entry answered {refused[0]}")
            hub.set_up.set()
            seek = [("X-Playlist-Seek-Id", str(self.gen_id))] if self.gen_id else []
            resp = await origin.request("PLAY", hub.aggregate_url, hub.request_headers(gen + seek))
            if not 200 <= resp.status < 300:
                raise OriginError(502, "Bad Gateway", f"origin PLAY of the next entry answered {resp.status}")
            hub.begin_play_period()
        except OriginError as exc:
            if hub.state != "ended" and hub.origin is origin:
                log.warning("split %s: selecting the next playlist entry failed (%s); reconnecting",
                            hub.origin_url, exc.detail)
                origin.close()  # the hub's reconnect sets the streams up again (and sets set_up)
