"""Fill: one origin session (RTP over TCP interleaved) recorded into an EntryMedia, then committed.

At most one fill runs per URL (the strategy keeps the registry). Players of a URL being filled are
replayed from the growing recording, so the origin sees one session whatever the number of
players, and the fill completes even when the first player stops early. A fill is committed only
when every stream reached the presentation's end (within a tolerance); otherwise it is reported
`incomplete` and discarded. With `com.microsoft.wm.fastcache` the fill asks for `Speed`.

A server-side playlist ([MS-RTSP] 3.2.4.1-2) is recorded whole: at an EndOfStream with
End-Of-Playlist-Entry the fill waits for the Announce of the next entry, deselects the old streams,
selects the new ones and plays with X-Playlist-Seek-Id (4.4.5, 3.1.5.16.1); every entry is one
FillItem, and the presentation is committed only when every entry was recorded to its end.

A fill taken through a cache-cluster peer (the node owning the URL) whose peer goes away before the
end (connection lost, stalled, refused) resumes at the origin itself from where the recording
stopped: DESCRIBE (the content must be unchanged), SETUP, PLAY with Range; the new session's RTP
timestamps are moved onto the recording's timeline and what was already recorded is skipped, so
the players replaying the fill go on and the copy committed is whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from proxyd.cache.fill_item import FillItem, rtcp_has_bye, supported_of
from proxyd.cache.freshness import describe_changed, sdp_duration
from proxyd.cache.playlist import Playlist, stored_gen_id
from proxyd.cache.replay_source import ReplaySource
from proxyd.cache.store import CacheStore, Entry
from proxyd.log import get_logger
from proxyd.rtp.packet import ts_diff
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import parse_range, parse_rtp_info, parse_session
from proxyd.rtsp.uri import same_resource
from proxyd.origin.client import OriginClient, OriginError
from proxyd.wm.messages import parse_end_of_stream_body
from proxyd.wm.supported import FASTCACHE, parse_supported
from proxyd.wmext.playlist import parse_gen_id
from proxyd.wmext.upstream_log import is_wm_origin, send_own_logplay

log = get_logger("cache.fill")

FASTCACHE_SPEED = "5.000"
END_TOLERANCE_S = 1.0  # a stream ending this close to the announced duration counts as complete
IDLE_END_S = 3.0  # no media this long after the end was reached: the fill is over
STALL_S = 20.0  # no media this long at all: the fill failed
ANNOUNCE_WAIT_S = 10.0  # an EndOfStream announcing more entries, then no Announce this long: failed
STOP_TIMEOUT = 2.0  # Pause + LogPlay before the Teardown of a fill stopped early


class Fill:
    def __init__(self, store: CacheStore, client: OriginClient, body: dict, *, max_bytes: int,
                 on_done=None, resume: Callable[[], Awaitable[OriginClient]] | None = None) -> None:
        """`resume`: how to reach the origin itself when `client` goes to a cluster peer."""
        self.store = store
        self.client = client
        self.body = body
        self.url = body["url"]
        self.max_bytes = max_bytes
        self.on_done = on_done
        first = FillItem({"sdp": body["sdp"], "content_base": body["content_base"],
                          "cache_control": body.get("cache_control"), "gen_id": stored_gen_id(body),
                          "duration": body.get("duration"), "supported": supported_of(body["headers"])},
                         self.url)
        self.items = [first]
        self.playlist: Playlist[ReplaySource] = Playlist([first.source], complete=False)
        self.item = first
        self.streams, self.media, self.aggregate = first.streams, first.media, first.aggregate
        self.entry: Entry | None = None
        self.failed = False
        self.session: str | None = None
        self.loop = asyncio.get_running_loop()
        self.play_at = 0.0
        self.last_packet_at = 0.0
        self.ended = asyncio.Event()
        self.more_entries = False  # the last EndOfStream said another entry follows
        self.announce: Request | None = None
        self.announced = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.upstream_playing: asyncio.Future[bool] = self.loop.create_future()  # the first PLAY's outcome
        self.abandon_handle: asyncio.TimerHandle | None = None
        self.resume = resume
        self.resume_us = 0  # where the current upstream session started (npt, microseconds)

    @property
    def duration(self) -> float | None:
        return self.item.meta.get("duration")

    @property
    def bytes(self) -> int:
        return sum(item.media.bytes for item in self.items)

    def start(self) -> Fill:
        if self.task is not None:
            return self
        if self.abandon_handle is not None:
            self.abandon_handle.cancel()
            self.abandon_handle = None
        self.store.report(None, "filling", self.body)
        self.task = self.loop.create_task(self._run())
        return self

    def start_when_played(self, idle_timeout: float) -> Fill:
        """[MS-RTSP] Figure 21: the download's SETUP and PLAY go upstream at a player's PLAY
        (`played`), not at its DESCRIBE; a fill nobody plays within `idle_timeout` is dropped."""
        self.abandon_handle = self.loop.call_later(idle_timeout, self._abandon)
        return self

    async def played(self) -> None:
        """A player's PLAY: the download starts if it has not, and this returns once the origin
        answered its PLAY (the player's Play response and RTP come after that)."""
        self.start()
        if not await asyncio.shield(self.upstream_playing):
            raise OriginError(502, "Bad Gateway", f"the origin did not play {self.url}")

    def _abandon(self) -> None:
        self.abandon_handle = None
        if self.task is not None:
            return
        log.info("cache: %s was described but never played; no download", self.url)
        self.failed = True
        self.client.close()
        self.upstream_playing.set_result(False)
        self.playlist.close()
        self.media.finish()
        if self.on_done is not None:
            self.on_done(self)

    async def _run(self) -> None:
        try:
            try:
                await self._setup_and_play()
            except (OriginError, RtspError, OSError) as exc:
                if not self._resumable():
                    raise
                await self._resume(exc)
            while True:
                await self._watch()
                self.item.complete = not self.failed and self._reached_end()
                if not self.item.complete and self._resumable():
                    await self._resume("it stopped before the end")
                    continue
                if not self.item.complete or not self.more_entries:
                    break
                await self._next_entry()
        except (OriginError, RtspError, OSError, ValueError) as exc:
            log.warning("cache: fill of %s failed: %s", self.url, exc)
            self.failed = True
        finally:
            await self._finish()

    def _resumable(self) -> bool:
        """Its peer failed it: the origin can give the rest (a playlist is not resumed)."""
        return self.resume is not None and not self.failed and len(self.items) == 1

    async def _resume(self, why) -> None:
        """Go on at the origin from the earliest point a stream was recorded to (once)."""
        sending = [s for s in self.streams if s.packets]
        self.resume_us = min(s.last_us for s in sending) if sending else 0
        old, connect, self.resume = self.client, self.resume, None
        log.warning("cache: fill of %s lost its source %s (%s); resuming at npt=%.3f from the origin", self.url,
                    old.label, why, self.resume_us / 1e6)
        old.on_frame = old.on_request = old.on_lost = None
        old.close()
        self.client = await connect()
        resp = await self.client.request("DESCRIBE", self.url, Headers([("Accept", "application/sdp")]))
        if resp.status != 200 or describe_changed(self.body, resp):
            raise OriginError(502, "Bad Gateway", f"the origin answered DESCRIBE {resp.status} or the content "
                                                  "changed: the recording cannot be continued")
        for stream in self.streams:
            anchored = stream.rtptime0 is not None  # else anchored by this session as any first one
            stream.resumed_after, stream.shift, stream.bye = stream.last_us if anchored else None, None, False
        self.session = None
        self.ended = asyncio.Event()
        await self._setup_and_play(start=self.resume_us / 1e6)

    async def _next_entry(self) -> None:
        """After an EndOfStream with End-Of-Playlist-Entry: the Announce names the next entry (3.2.4.2)."""
        try:
            async with asyncio.timeout(ANNOUNCE_WAIT_S):
                await self.announced.wait()
        except TimeoutError:
            raise OriginError(504, "Gateway Timeout", "no Announce after an entry's EndOfStream") from None
        announce, self.announce = self.announce, None
        self.announced.clear()
        previous = self.item
        gen_id = parse_gen_id(announce.headers.get("X-Playlist-Gen-Id")) or 0
        item = FillItem({"sdp": announce.body.decode("latin-1"), "content_base": announce.uri,
                         "cache_control": announce.headers.get("Cache-Control"), "gen_id": gen_id,
                         "duration": sdp_duration(announce.body),
                         "supported": announce.headers.get("Supported") or previous.meta.get("supported")},
                        self.url)
        self.items.append(item)
        self.item, self.streams, self.media, self.aggregate = item, item.streams, item.media, item.aggregate
        self.ended = asyncio.Event()
        self.more_entries = False
        self.playlist.add(item.source)
        previous.media.finish()  # replays at its end now know what follows
        session = [("Session", self.session)] if self.session else []
        for stream in previous.streams:  # SelectStream: the old entry's streams go (4.4.5)
            await self.client.request("TEARDOWN", stream.control, Headers(session))
        await self._setup_and_play([("X-Playlist-Gen-Id", str(gen_id)), ("X-Playlist-Seek-Id", str(gen_id))]
                                   if gen_id else [])

    async def _setup_and_play(self, playlist_headers: list[tuple[str, str]] | None = None, start: float = 0.0) -> None:
        """SETUP every stream of the current item and PLAY it; the first item from `start` (npt 0
        unless resumed), a later playlist entry with X-Playlist-Seek-Id and no Range (3.1.5.16.1)."""
        c = self.client
        c.on_frame = self._on_frame
        c.on_request = self._on_request
        c.on_lost = self._on_lost
        timeout = 60
        extra = playlist_headers or []
        for i, stream in enumerate(self.streams):
            headers = [("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"), *extra]
            if self.session:
                headers.append(("Session", self.session))
            resp = await c.request("SETUP", stream.control, Headers(headers))
            if resp.status != 200:
                raise OriginError(resp.status, resp.reason, f"origin refused SETUP over TCP: {resp.status}")
            if self.session is None and resp.headers.get("Session"):
                parsed = parse_session(resp.headers.get("Session"))
                self.session, timeout = parsed.id, parsed.timeout or 60
        headers = list(extra) if playlist_headers else [("Range", f"npt={start:.3f}-")]
        if self.session:
            headers.append(("Session", self.session))
        if FASTCACHE in parse_supported(", ".join(h for n, h in self.body["headers"] if n.lower() == "supported")):
            headers.append(("Speed", FASTCACHE_SPEED))
        self.play_at = self.last_packet_at = self.loop.time()
        resp = await c.request("PLAY", self.aggregate, Headers(headers))
        if resp.status != 200:
            raise OriginError(resp.status, resp.reason, f"origin refused PLAY: {resp.status}")
        info = resp.headers.get("RTP-Info")
        started = self._range_start(resp, start)
        for entry in parse_rtp_info(info) if info else []:
            for i, stream in enumerate(self.streams):
                if entry.rtptime is None or not (same_resource(entry.url, stream.control)
                                                 or entry.url.rstrip("/") == stream.control.rsplit("/", 1)[-1]):
                    continue
                # A resumed stream is placed by its first packet instead, at the Range answered: after
                # a seek not every server's RTP-Info names that point (gst-rtsp-server's video one not).
                if stream.rtptime0 is None:
                    self.item.anchor(i, (entry.rtptime - int(started * stream.clock_rate)) & 0xFFFFFFFF)
                    stream.shift = 0
        self.resume_us = int(started * 1e6)
        self.keepalive_every = max(1.0, timeout / 2)
        if not self.upstream_playing.done():
            self.upstream_playing.set_result(True)
        log.info("cache: filling %s (%d streams) from %s%s", self.url, len(self.streams), self.client.label,
                 f" at npt={started:.3f}" if start else "")

    @staticmethod
    def _range_start(resp: Response, asked: float) -> float:
        """Where the origin says this PLAY starts (its Range answer), else where it was asked to."""
        try:
            answered = parse_range(resp.headers.get("Range")) if resp.headers.get("Range") else None
        except RtspError:
            answered = None
        return answered.start if answered is not None and answered.start is not None else asked

    async def _watch(self) -> None:
        next_keepalive = self.loop.time() + self.keepalive_every
        while not self.ended.is_set():
            try:
                async with asyncio.timeout(0.5):
                    await self.ended.wait()
            except TimeoutError:
                pass
            now = self.loop.time()
            if all(s.bye for s in self.streams):
                break
            idle = now - self.last_packet_at
            if (self._reached_end() and idle >= IDLE_END_S) or idle >= STALL_S:
                break
            if self.bytes > self.max_bytes:
                log.warning("cache: %s exceeds the entry limit (%d bytes); not cached", self.url, self.max_bytes)
                self.failed = True
                break
            if now >= next_keepalive:
                next_keepalive = now + self.keepalive_every
                try:
                    await self.client.request("GET_PARAMETER", self.aggregate,
                                              Headers([("Session", self.session)] if self.session else []))
                except OriginError:
                    break  # _finish decides from what was recorded

    async def _pause_and_log(self) -> None:
        """[MS-RTSP] 3.1.4.7 at a Windows Media origin: Pause, then our LogPlay (bounded, best effort)."""
        supported = ", ".join(v for n, v in self.body["headers"] if n.lower() == "supported")
        if not is_wm_origin(supported):
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                resp = await self.client.request("PAUSE", self.aggregate, Headers([("Session", self.session)]))
                if resp.status < 300:
                    counters = {"bytes_in": self.bytes, "packets_in": sum(len(i.media) for i in self.items),
                                "packets_lost": 0}
                    await send_own_logplay(self.client, self.aggregate, self.session, start_npt=0.0,
                                           played_s=self.loop.time() - self.play_at, counters=counters,
                                           tcp=True, log_ctx=f"cache fill {self.url}")
        except (OriginError, TimeoutError):
            pass

    def _reached_end(self) -> bool:
        if self.duration is None:
            return False
        need = (self.duration - END_TOLERANCE_S) * 1e6
        # Streams the origin sends nothing on (e.g. the WM rtx stream) are empty in the copy too.
        sending = [s for s in self.streams if s.packets]
        return bool(sending) and all(s.last_us >= need for s in sending)

    # --- media in (hot path for the fill only) ---
    def _on_frame(self, channel: int, payload: bytes) -> None:
        index = channel >> 1
        if index >= len(self.streams) or len(payload) < 12:
            return
        stream = self.streams[index]
        if channel & 1:
            if rtcp_has_bye(payload):
                stream.bye = True
                if all(s.bye for s in self.streams):
                    self.ended.set()
            return
        now = self.loop.time()
        self.last_packet_at = now
        ts = int.from_bytes(payload[4:8], "big")
        if stream.rtptime0 is None:  # no RTP-Info: anchor at arrival time
            elapsed = self.resume_us / 1e6 + now - self.play_at
            self.item.anchor(index, (ts - int(elapsed * stream.clock_rate)) & 0xFFFFFFFF)
            stream.shift = 0
        timestamp = None
        resumed_after = stream.resumed_after
        if resumed_after is not None:  # a resumed session: onto the recording's timeline
            if stream.shift is None:  # its first packet is at the Range the origin answered
                stream.shift = (stream.rtptime0 + self.resume_us * stream.clock_rate // 1_000_000 - ts) & 0xFFFFFFFF
            ts = timestamp = (ts + stream.shift) & 0xFFFFFFFF
        media_us = max(0, ts_diff(ts, stream.rtptime0) * 1_000_000 // stream.clock_rate)
        if resumed_after is not None and media_us <= resumed_after:
            return  # recorded before the source went away
        key = stream.is_key(payload) if stream.is_key is not None else False
        stream.packets += 1
        if media_us > stream.last_us:
            stream.last_us = media_us
        self.media.append(index, payload, media_us, key, timestamp)

    def _on_request(self, request: Request) -> None:
        if request.method == "ANNOUNCE":  # the next playlist entry (3.2.4.2)
            self.announce = request
            self.announced.set()
        elif "2101" in (request.headers.get("X-Notice") or ""):  # EndOfStream (MS-RTSP 2.2.7.3)
            self.more_entries = parse_end_of_stream_body(request.body).end_of_playlist_entry
            for s in self.streams:
                s.bye = True
            self.ended.set()

    def _on_lost(self, why) -> None:
        self.more_entries = False
        self.ended.set()

    async def _finish(self) -> None:
        if not self.upstream_playing.done():
            self.upstream_playing.set_result(False)
        c = self.client
        c.on_frame = c.on_request = c.on_lost = None
        if self.session and c.is_open:
            if not self.ended.is_set():  # stopped while the origin still sends (limit, stall, shutdown)
                await self._pause_and_log()
            await c.teardown_and_close(self.aggregate, self.session)
        else:
            c.close()
        complete = not self.failed and all(item.complete for item in self.items)
        if complete:
            now = time.time()
            ttl = self.body["ttl"]
            first, *more = self.items
            body = {**self.body, "fetched_at": now, "expires_at": now + ttl, "streams": first.stored()["streams"]}
            if more:
                body["playlist"] = [item.stored() for item in more]
            try:
                self.entry = self.store.commit(body, [item.media for item in self.items])
                log.info("cache: committed %s (%d packets, %d bytes, %d entries)", self.url,
                         sum(len(item.media) for item in self.items), self.bytes, len(self.items))
            except OSError as exc:
                log.warning("cache: cannot store %s: %s", self.url, exc)
        else:
            log.info("cache: fill of %s incomplete (%d packets); discarded", self.url, len(self.media))
            self.store.report(None, "incomplete", self.body)
            self.failed = True
        self.playlist.close()
        self.media.finish()
        if self.on_done is not None:
            self.on_done(self)
