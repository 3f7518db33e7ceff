"""One origin session per live URL, shared by every player of it (MS-RTSP 4.6.2).

The first DESCRIBE creates the hub with the origin connection it used; the hub SETUPs every stream
when the first player SETUPs and PLAYs when the first player PLAYs ([MS-RTSP] 4.6.2 step 2, Figure
22); a stream whose SETUP answer named no SSRC makes it PLAY at once (UDP players need the SSRC in
their SETUP answer, known only from the first packet then). Players attach at SETUP and join the fan-out at PLAY. When the last player leaves,
the origin session lingers (`--split-linger`) then is torn down. When the origin session fails, the
hub reconnects with capped backoff while players wait; past `--split-reconnect-wait` every player
gets an RTCP BYE and its session ends (origin_error); after a broadcast's final EndOfStream a lost
origin session is not reconnected (proxyd.split.playlist). An origin session that answers PLAY but
stops sending media (or never starts) counts as lost after `split_media_timeout` seconds: players
would otherwise wait in silence for as long as the origin keeps answering keepalives.
With origin transport "auto", a UDP origin session that got no RTP at all within
`udp_fallback_timeout` (as the relay) is set up again over TCP on the same connection, and the hub
stays on TCP: a firewall dropping the origin's UDP would otherwise make every reconnect fail alike.
State and origin-transport changes are reported as `split.changed` (proxyd.split.status).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from proxyd.log import get_logger
from proxyd.net.udp import bind_port_pair, dual_stack_wildcard, peer_address
from proxyd.routing import forward_headers
from proxyd.rtp.keyframe import key_start_test
from proxyd.rtp.sdp import Sdp, parse_sdp
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Response
from proxyd.rtsp.headers import parse_session, parse_transport
from proxyd.rtsp.uri import content_base, same_resource, url_key
from proxyd.split.fanout import TcpGroup
from proxyd.split.gop import JoinBuffer
from proxyd.split.playlist import HubPlaylist
from proxyd.split.status import SplitStatus
from proxyd.split.stream import HubStream
from proxyd.origin.client import OriginClient, OriginError
from proxyd.serving.contracts import ServerContext
from proxyd.wmext.upstream_log import is_wm_origin, send_own_logplay

log = get_logger("split")
STOP_TIMEOUT = 2.0  # Pause + LogPlay before the Teardown of an ending split

BACKOFF_START = 0.25
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class HubMember(Protocol):
    """What the hub uses of its players (proxyd.split.player.HubMember)."""

    streams: list

    def relay_origin_request(self, request) -> None: ...

    def end_from_origin(self, reason: str, detail: str) -> None: ...


Reconnect = Callable[[], Awaitable[tuple[OriginClient, Response]]]


class Hub:
    def __init__(self, context: ServerContext, registry: dict, origin_url: str, describe: Response, origin: OriginClient,
                 origin_headers: Headers, transport: str = "", reconnect: Reconnect | None = None) -> None:
        """`reconnect`: a new connection with its DESCRIBE answer (e.g. through the cluster's owner
        of the URL); by default the same origin again."""
        self.context = context
        self.limits = context.config.limits
        self.registry = registry
        self.origin_url = origin_url  # the presentation URL at the origin
        self.registry_key = url_key(origin_url)
        self.describe = describe
        self.origin = origin
        self.origin_host, self.origin_port = origin.host, origin.port
        self.origin_tls, self.origin_tls_verify = origin.tls, origin.tls_verify  # reconnects reach it so too
        self.origin_credentials = origin.credentials  # the route's, for reconnects
        self.origin_headers = origin_headers  # forwarded player headers (User-Agent...) for our requests
        self.reconnect = reconnect
        self.sdp: Sdp = parse_sdp(describe.body)
        base = content_base(describe.headers, origin_url)
        self.aggregate_url = self.sdp.aggregate_url(base)
        self.media_urls = self.sdp.media_urls(base)
        self.state = "starting"  # starting | live | reconnecting | ended
        self.ready = asyncio.Event()  # set once live for the first time, or ended
        self.set_up = asyncio.Event()  # the origin answered every SETUP (first time), or ended
        self.play_wanted = asyncio.Event()  # a player PLAYs: the origin session may PLAY
        self.players: set[HubMember] = set()
        self.tcp_groups: dict[tuple, TcpGroup] = {}
        key_index, key_test = self._key_stream()
        self.join = JoinBuffer(len(self.sdp.media), key_index, self.limits.split_gop_max_bytes, key_test)
        self.join.on_key = self._on_key_frame
        self.key_waiters: list[asyncio.Future] = []
        self.streams: list[HubStream] = []
        self.origin_session: str | None = None
        self.origin_timeout = 60
        self.wm_origin = False  # its PLAY answer listed com.microsoft.wm.* (it takes our LogPlay)
        self.played_from: tuple[float, dict] = (0.0, {})  # loop time and counters at the origin PLAY
        # [MS-RTSP] 3.1.5.13 step 4: after an EndOfStream the origin session is READY (no media, no
        # Pause at the end) until our next PLAY; "finished" when no playlist entry follows
        self.origin_ready = self.origin_finished = False
        self.origin_channels: dict[int, tuple[HubStream, bool]] = {}
        self.loop = asyncio.get_running_loop()
        self.linger_handle: asyncio.TimerHandle | None = None
        self.reconnects = 0  # times the origin session was lost (entered "reconnecting")
        self.reconnect_attempts = 0
        self.end_reason = ""
        self.task: asyncio.Task | None = None
        self.media_timeout = float(self.limits.split_media_timeout)
        self.media_stalls = 0
        self.transport = transport or context.config.origin_transport  # auto | udp | tcp
        self.use_tcp = self.transport == "tcp"  # once set (461, no UDP media), for the hub's life
        self.status = SplitStatus(self)
        self.permission_expires_at: float | None = None  # loop time; None: the permission never expires
        self.permission_check: asyncio.Future | None = None  # one GetContentInfo for concurrent joiners
        self.playlist = HubPlaylist(self)  # X-Playlist-Gen-Id; a broadcast playlist's entry changes

    def permission_expired(self) -> bool:
        return self.permission_expires_at is not None and self.loop.time() >= self.permission_expires_at

    def renew_permission(self, lifetime: int | None) -> None:
        self.permission_expires_at = None if lifetime is None else self.loop.time() + lifetime

    def _key_stream(self):
        """(index, key-frame test) of the first video stream whose format has key frames we can
        find (H.264, x-asf-pf), or (None, None)."""
        for index, media in enumerate(self.sdp.media):
            fmt = media.formats[0] if media.formats else ""
            rtpmap = media.rtpmap(int(fmt)) if fmt.isdigit() else None
            test = key_start_test(rtpmap.encoding) if rtpmap is not None else None
            if media.kind == "video" and test is not None:
                return index, test
        return None, None

    @property
    def accepting(self) -> bool:
        """New players may join (a finished broadcast takes none: a new DESCRIBE starts a new hub)."""
        return self.state != "ended" and not self.origin_finished

    def start(self) -> None:
        host = dual_stack_wildcard()  # players of either family may join whatever the origin's is
        for index, (media, url) in enumerate(zip(self.sdp.media, self.media_urls, strict=True)):
            pair = bind_port_pair(host, self.limits.rtp_port_min, self.limits.rtp_port_max)
            self.streams.append(HubStream(index, url, media.clock_rate or 90000,
                                          index == self.join.video_index, pair, self.join, self.tcp_groups))
        self.registry[self.registry_key] = self
        self._arm_linger()  # a hub nobody SETUPs does not live forever
        self.status.report()

    def want_setup(self) -> None:
        """A player SETUPs: open the origin session (once)."""
        if self.task is None and self.state != "ended":
            self.task = self.loop.create_task(self._run())

    def want_play(self) -> None:
        self.play_wanted.set()

    def _set_state(self, state: str) -> None:
        """starting -> live <-> reconnecting; ended only through end()."""
        if state == self.state or self.state == "ended":
            return
        self.state = state
        if state == "reconnecting":
            self.reconnects += 1
        self.status.report()

    def stream_for(self, origin_url: str) -> HubStream | None:
        for stream in self.streams:
            if same_resource(stream.url, origin_url):
                return stream
        return None

    async def wait_ready(self, timeout: float) -> bool:
        return await self._wait(self.ready, timeout)

    async def wait_set_up(self, timeout: float) -> bool:
        return await self._wait(self.set_up, timeout)

    async def _wait(self, event: asyncio.Event, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return self.state != "ended"

    async def wait_key_frame(self, timeout: float) -> None:
        """Until the join buffer starts at a key frame (at most `timeout`); no wait without a key stream."""
        if self.join.video_index is None or self.join.active or self.state == "ended":
            return
        waiter = self.loop.create_future()
        self.key_waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass
        finally:
            if waiter in self.key_waiters:
                self.key_waiters.remove(waiter)

    def _on_key_frame(self) -> None:
        waiters, self.key_waiters = self.key_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- players --------------------------------------------------------------------------------
    def attach(self, player: HubMember) -> None:
        self.players.add(player)
        self.status.player_attached(player)
        if self.linger_handle is not None:
            self.linger_handle.cancel()
            self.linger_handle = None

    def detach(self, player: HubMember, *, linger: bool = True) -> None:
        self.players.discard(player)
        if not self.players and self.state != "ended":
            if linger and not self.origin_finished:  # no one may join a finished hub: no linger
                self._arm_linger()
            else:
                self.end("no players")

    def refresh_fanout(self, stream: HubStream) -> None:
        stream.set_udp_players([ps for p in self.players for ps in p.streams
                                if ps.hub_stream is stream and ps.playing and ps.rtp_addr is not None])

    def tcp_group(self, layout: tuple) -> TcpGroup:
        group = self.tcp_groups.get(layout)
        if group is None:
            limits = self.limits
            group = self.tcp_groups[layout] = TcpGroup(layout, high_water=limits.write_high_water,
                                                       drop_limit=limits.write_drop_limit,
                                                       max_dropped=limits.max_dropped_packets,
                                                       flush_interval=limits.split_tcp_flush_interval)
        return group

    def _arm_linger(self) -> None:
        if self.linger_handle is None and self.state != "ended":
            self.linger_handle = self.loop.call_later(self.limits.split_linger, self._linger_expired)

    def _linger_expired(self) -> None:
        self.linger_handle = None
        if not self.players:
            self.end("linger expired")

    # --- origin session -------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt, lost_at = 0, None
        while self.state != "ended":
            try:
                if self.origin is None or not self.origin.is_open:
                    await self._reconnect()
                await self._open_origin_session()
                self._set_state("live")
                self.ready.set()
                attempt, lost_at = 0, None
                while await self._keepalive_until_lost() == "udp-silent":
                    await self._fall_back_to_tcp()
                    self.status.report()  # origin_transport is tcp now
                why = "origin closed the connection"
            except OriginError as exc:
                why = exc.detail
            if self.state == "ended":
                return
            if self.origin_finished:
                self._release_finished_origin(why)
                return
            self._set_state("reconnecting")
            lost_at = lost_at if lost_at is not None else self.loop.time()
            for stream in self.streams:
                stream.remap = True
            self._drop_origin()
            waited = self.loop.time() - lost_at
            if waited >= self.limits.split_reconnect_wait:
                self.end("origin_error", f"origin unavailable for {waited:.1f}s: {why}")
                return
            delay = min(self.limits.split_backoff_max, BACKOFF_START * (2 ** attempt),
                        self.limits.split_reconnect_wait - waited)
            attempt += 1
            log.warning("split %s origin session lost (%s); reconnect %d in %.2fs", self.origin_url, why,
                        attempt, delay)
            await asyncio.sleep(delay)  # backoff, not synchronisation

    async def _reconnect(self) -> None:
        self.reconnect_attempts += 1
        if self.reconnect is not None:
            self.origin, resp = await self.reconnect()
        else:
            self.origin = await self.context.origin_connector.connect(self.origin_host, self.origin_port,
                                                                     self.origin_credentials, tls=self.origin_tls,
                                                                     verify=self.origin_tls_verify)
            resp = await self.origin.request("DESCRIBE", self.origin_url, self.origin_headers)
        if not 200 <= resp.status < 300:
            raise OriginError(502, "Bad Gateway", f"origin DESCRIBE answered {resp.status}")
        self.origin_session = None
        self.playlist.described(resp)

    async def _open_origin_session(self) -> None:
        origin = self.origin
        origin.on_frame = self._on_origin_frame
        origin.on_request = self._on_origin_request
        origin.on_lost = None
        for stream in self.streams:
            resp = await self._setup(stream, self.use_tcp)
            if resp.status == 461 and not self.use_tcp and self.transport == "auto":
                self.use_tcp = True
                resp = await self._setup(stream, True)
            if not 200 <= resp.status < 300:
                raise OriginError(502, "Bad Gateway", f"origin SETUP answered {resp.status}")
        self.set_up.set()
        if not all(stream.ssrc_fixed.is_set() for stream in self.streams):
            self.play_wanted.set()  # only the first packet tells the SSRC the players' SETUP answers name
        await self.play_wanted.wait()
        resp = await origin.request("PLAY", self.aggregate_url, self._headers())
        if not 200 <= resp.status < 300:
            raise OriginError(502, "Bad Gateway", f"origin PLAY answered {resp.status}")
        self.wm_origin = is_wm_origin(resp.headers.get("Supported"))
        self.begin_play_period()

    def _headers(self, extra: list | None = None) -> Headers:
        items = [("Session", self.origin_session)] if self.origin_session else []
        return forward_headers(self.origin_headers, items + (extra or []))

    async def _setup(self, stream: HubStream, use_tcp: bool, extra: list | None = None) -> Response:
        if use_tcp:
            channels = (2 * stream.index, 2 * stream.index + 1)
            transport = f"RTP/AVP/TCP;unicast;interleaved={channels[0]}-{channels[1]}"
        else:
            transport = f"RTP/AVP;unicast;client_port={stream.port}-{stream.port + 1}"
        resp = await self.origin.request("SETUP", stream.url, self._headers([("Transport", transport),
                                                                             *(extra or [])]))
        if not 200 <= resp.status < 300:
            return resp
        try:
            if resp.headers.get("Session"):
                parsed = parse_session(resp.headers.get("Session"))
                self.origin_session, self.origin_timeout = parsed.id, parsed.timeout or 60
            spec = parse_transport(resp.headers.get("Transport", ""))[0]
        except (RtspError, IndexError):
            raise OriginError(502, "Bad Gateway", "origin SETUP answer has a bad Session/Transport") from None
        ssrc = _ssrc_value(spec.ssrc)
        if ssrc is not None:  # players' SETUP answers can name it before the first packet
            stream.origin_named_ssrc(ssrc)
        if use_tcp:
            low, high = spec.interleaved or channels
            self.origin_channels[low] = (stream, False)
            self.origin_channels[high if high != low else low + 1] = (stream, True)
        else:
            source = spec.source or self.origin.transport.get_extra_info("peername")[0]
            stream.origin_ip = peer_address(stream.rtp.family, source)
            stream.origin_rtp_port = None
            if spec.server_port:
                low, high = spec.server_port
                stream.origin_rtp_port = low
                stream.origin_rtcp_addr = (stream.origin_ip, high if high != low else low + 1)
        return resp

    def _totals(self) -> dict:
        return {"bytes_in": sum(s.bytes_in for s in self.streams), "packets_in": self._packets_in(),
                "packets_lost": sum(s.packets_lost for s in self.streams)}

    async def _finish_origin(self, origin: OriginClient, playing: bool) -> None:
        """[MS-RTSP] 3.1.4.7 before 3.1.4.10: a Windows Media origin still sending gets Pause and our
        LogPlay, then the Teardown (all bounded, best effort)."""
        if playing and self.wm_origin:
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    resp = await origin.request("PAUSE", self.aggregate_url, self._headers())
                    if resp.status < 300:
                        await self._send_logplay(origin)
            except (OriginError, TimeoutError):
                pass
        await origin.teardown_and_close(self.aggregate_url, self.origin_session)

    async def _send_logplay(self, origin: OriginClient) -> None:
        """Our LogPlay of the play period since the origin PLAY ([MS-RTSP] 3.1.4.7, 3.1.5.13)."""
        began, before = self.played_from
        now = self._totals()
        await send_own_logplay(origin, self.aggregate_url, self.origin_session, start_npt=0.0,
                               played_s=self.loop.time() - began,
                               counters={k: now[k] - before[k] for k in now}, tcp=self.use_tcp,
                               log_ctx=f"split {self.origin_url}")

    def begin_play_period(self) -> None:
        """The origin answered our PLAY: it sends media again."""
        self.played_from = (self.loop.time(), self._totals())
        self.origin_ready = self.origin_finished = False

    def origin_end_of_stream(self, more_entries: bool) -> None:
        """The origin's EndOfStream (3.1.5.13): its session is READY; the play period is logged
        upstream (step 6). Without a next entry the media timeout no longer applies: players that
        stay get no media, and no reconnect would bring any."""
        self.origin_ready, self.origin_finished = True, not more_entries
        if self.wm_origin and self.origin is not None and self.origin_session:
            self.context.spawn(self._send_logplay(self.origin))
        if self.origin_finished and self.registry.get(self.registry_key) is self:
            del self.registry[self.registry_key]  # the URL's next DESCRIBE starts a new hub

    def _release_finished_origin(self, why: str) -> None:
        """The origin session was lost after the final EndOfStream: nothing more would come, so no
        reconnect and no PLAY; the attached players stay READY and the hub ends when they leave."""
        log.info("split %s: origin session lost after the final EndOfStream (%s); not reconnecting",
                 self.origin_url, why)
        self._drop_origin()
        if not self.players:
            self.end("no players")

    def _drop_origin(self) -> None:
        """Let go of a lost origin session's connection (freed at the origin if it is still open,
        e.g. after a media stall)."""
        origin, self.origin = self.origin, None
        if origin is not None:
            origin.on_frame = origin.on_lost = origin.on_request = None
            if self.origin_session and origin.is_open:
                self.context.spawn(origin.teardown_and_close(self.aggregate_url, self.origin_session))
            else:
                origin.close()

    # --- playlist entry change (proxyd.split.playlist) --------------------------------------------
    def next_entry(self, sdp: Sdp, base: str, describe: Response) -> None:
        """The origin's next playlist entry (Announced, or named by a reconnect's DESCRIBE): its SDP
        and control URLs from now on. The streams' next packets are a new origin source (players'
        numbering continues) and the join buffer waits for the new entry's key frame; SETUPs wait
        until the origin's are answered."""
        self.sdp, self.describe = sdp, describe
        self.aggregate_url = sdp.aggregate_url(base)
        self.media_urls = sdp.media_urls(base)
        for stream, media, url in zip(self.streams, sdp.media, self.media_urls, strict=False):  # by index
            stream.url, stream.clock_rate, stream.remap = url, media.clock_rate or 90000, True
        self.join.reset()
        self.set_up.clear()

    def request_headers(self, extra: list | None = None) -> Headers:
        """Headers of a request of ours in the origin session (its Session, the players' identity)."""
        return self._headers(extra)

    async def select_stream(self, stream: HubStream, extra: list) -> Response:
        """SETUP `stream` again over the transport in use (a new playlist entry)."""
        return await self._setup(stream, self.use_tcp, extra)

    def _packets_in(self) -> int:
        return sum(stream.packets_in for stream in self.streams)

    async def _keepalive_until_lost(self) -> str:
        """Keep the origin session alive until its connection closes ("closed"); "udp-silent" when
        a UDP session that may fall back got no RTP at all in time; raise OriginError when no media
        arrived for `media_timeout` seconds."""
        interval = max(1.0, self.origin_timeout * self.limits.keepalive_fraction)
        check = min(interval, self.media_timeout / 2)
        method = "GET_PARAMETER"
        now = self.loop.time()
        next_keepalive = now + interval
        seen, seen_at = self._packets_in(), now
        # Before the media timeout too: a UDP reconnect would meet the same firewall.
        fallback_at = None
        if not self.use_tcp and self.transport == "auto":
            fallback_at = now + min(self.limits.udp_fallback_timeout, self.media_timeout)
        while True:
            wait = check if fallback_at is None else max(0.0, min(check, fallback_at - now))
            try:
                async with asyncio.timeout(wait):
                    await self.origin.closed.wait()
                return "closed"
            except TimeoutError:
                pass
            now = self.loop.time()
            count = self._packets_in()
            if self.origin_ready:  # no media expected from a READY origin session
                seen_at = now
            if count != seen:
                seen, seen_at, fallback_at = count, now, None
            elif fallback_at is not None and now >= fallback_at:
                return "udp-silent"
            elif now - seen_at >= self.media_timeout:
                self.media_stalls += 1
                raise OriginError(504, "Gateway Timeout", f"no media from the origin for {now - seen_at:.1f}s")
            if now >= next_keepalive:
                next_keepalive = now + interval
                resp = await self.origin.request(method, self.aggregate_url, self._headers())
                if resp.status >= 400 and method != "OPTIONS":
                    method = "OPTIONS"

    async def _fall_back_to_tcp(self) -> None:
        """TEARDOWN the silent UDP origin session, then SETUP and PLAY it again interleaved."""
        log.warning("split %s no UDP media from the origin in %.1fs, switching to TCP", self.origin_url,
                    min(self.limits.udp_fallback_timeout, self.media_timeout))
        self.use_tcp = True
        if self.origin_session:
            await self.origin.request("TEARDOWN", self.aggregate_url, self._headers())
            self.origin_session = None
        await self._open_origin_session()

    def _on_origin_frame(self, channel: int, payload: bytes) -> None:
        entry = self.origin_channels.get(channel)
        if entry is not None:
            stream, is_rtcp = entry
            (stream.rtcp_frame if is_rtcp else stream.rtp_frame)(payload)

    def _on_origin_request(self, request) -> None:
        """EndOfStream/ANNOUNCE from the origin (already answered upstream): act on it as the client
        role (a playlist's next entry, proxyd.split.playlist), then tell every player."""
        self.tell_players(self.playlist.on_origin_request(request))

    def tell_players(self, request) -> None:
        """Send an EndOfStream or Announce to every attached player as its own."""
        for player in list(self.players):
            player.relay_origin_request(request)

    # --- end ------------------------------------------------------------------------------------
    def end(self, reason: str, detail: str = "") -> None:
        if self.state == "ended":
            return
        playing = self.state == "live" and not self.origin_ready
        self.state = "ended"
        self.end_reason = reason
        self.ready.set()
        self.set_up.set()
        log.info("split %s ended: %s %s (players=%d, reconnects=%d/%d attempts, udp packets/flushes %s)",
                 self.origin_url, reason, detail, len(self.players), self.reconnects, self.reconnect_attempts,
                 [f"{s.packets_sent}/{s.fanout.flushes + s.sole_sender.flushes}" for s in self.streams])
        if self.registry.get(self.registry_key) is self:
            del self.registry[self.registry_key]
        if self.linger_handle is not None:
            self.linger_handle.cancel()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        for player in list(self.players):
            player.end_from_origin(reason, detail)
        self.players.clear()
        origin, self.origin = self.origin, None
        if origin is not None:
            origin.on_frame = origin.on_lost = origin.on_request = None
            if self.origin_session and origin.is_open:
                self.context.spawn(self._finish_origin(origin, playing))
            else:
                origin.close()
        for group in self.tcp_groups.values():
            group.flush()
        for stream in self.streams:
            stream.close()
        self.status.report()
        self.status.stop()


def _ssrc_value(text: str | None) -> int | None:
    """Transport ssrc= (8 hex digits, RFC 2326 12.39, [MS-RTSP] 2.2.6.11); None when absent or
    malformed (the first packet's SSRC is used then)."""
    if not text or len(text) > 8 or not all(c in HEX_DIGITS for c in text):
        return None
    return int(text, 16)
