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
State and origin-transport changes are reported as `split.changed` (proxyd.split.status); the
origin session's lifecycle (open, keepalive, fallback, reconnect, finish) is proxyd.split.origin_session.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from proxyd.log import get_logger
from proxyd.net.udp import bind_port_pair, dual_stack_wildcard
from proxyd.routing import forward_headers
from proxyd.rtp.keyframe import key_start_test
from proxyd.rtp.sdp import Sdp, parse_sdp
from proxyd.rtsp.events import Headers, Response
from proxyd.rtsp.uri import content_base, same_resource, url_key
from proxyd.split.coalesce import CoalescedReads
from proxyd.split.fanout import TcpGroup
from proxyd.split.gop import JoinBuffer
from proxyd.split.origin_session import OriginSession, Reconnect
from proxyd.split.playlist import HubPlaylist
from proxyd.split.status import SplitStatus
from proxyd.split.stream import HubStream
from proxyd.origin.client import OriginClient
from proxyd.serving.contracts import ServerContext

log = get_logger("split")


class HubMember(Protocol):
    """What the hub uses of its players (proxyd.split.player.HubMember)."""

    streams: list

    def relay_origin_request(self, request) -> None: ...

    def end_from_origin(self, reason: str, detail: str) -> None: ...



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
        self.coalesced_reads: CoalescedReads | None = None  # --split-read-coalesce (a UDP origin's streams)
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
        self.origin_lifecycle = OriginSession(self)  # open, keepalive, reconnect, finish (origin_session.py)

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

    def _lead_stream(self) -> int | None:
        """The stream whose packets wake a coalescing hub: the key stream, else the first video."""
        if self.join.video_index is not None:
            return self.join.video_index
        return next((index for index, media in enumerate(self.sdp.media) if media.kind == "video"), None)

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
        lead = self._lead_stream()
        if self.limits.split_read_coalesce and lead is not None and len(self.streams) > 1:
            self.coalesced_reads = CoalescedReads(self.streams, lead, self.limits.split_read_coalesce,
                                                  self.tcp_groups, self.limits.split_frame_settle)
        self.registry[self.registry_key] = self
        self._arm_linger()  # a hub nobody SETUPs does not live forever
        self.status.report()

    def want_setup(self) -> None:
        """A player SETUPs: open the origin session (once)."""
        if self.task is None and self.state != "ended":
            self.task = self.loop.create_task(self.origin_lifecycle.run())

    def want_play(self) -> None:
        self.play_wanted.set()

    def set_state(self, state: str) -> None:
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
    def begin_play_period(self) -> None:
        """The origin answered our PLAY: it sends media again."""
        self.played_from = (self.loop.time(), self.origin_lifecycle.totals())
        self.origin_ready = self.origin_finished = False

    def origin_end_of_stream(self, more_entries: bool) -> None:
        """The origin's EndOfStream (3.1.5.13): its session is READY; the play period is logged
        upstream (step 6). Without a next entry the media timeout no longer applies: players that
        stay get no media, and no reconnect would bring any."""
        self.origin_ready, self.origin_finished = True, not more_entries
        if self.wm_origin and self.origin is not None and self.origin_session:
            self.context.spawn(self.origin_lifecycle.send_logplay(self.origin))
        if self.origin_finished and self.registry.get(self.registry_key) is self:
            del self.registry[self.registry_key]  # the URL's next DESCRIBE starts a new hub

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
        items = [("Session", self.origin_session)] if self.origin_session else []
        return forward_headers(self.origin_headers, items + (extra or []))

    async def select_stream(self, stream: HubStream, extra: list) -> Response:
        """SETUP `stream` again over the transport in use (a new playlist entry)."""
        return await self.origin_lifecycle.setup(stream, self.use_tcp, extra)

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
        reads = self.coalesced_reads
        passes = ("off" if reads is None else
                  f"{reads.passes} ({reads.timer_passes} by the timer, {reads.settled_passes} frame tails)")
        log.info("split %s ended: %s %s (players=%d, reconnects=%d/%d attempts, udp packets/flushes %s, "
                 "coalesced read passes %s)", self.origin_url, reason, detail, len(self.players), self.reconnects,
                 self.reconnect_attempts,
                 [f"{s.packets_sent}/{s.fanout.flushes + s.sole_sender.flushes}" for s in self.streams], passes)
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
                self.context.spawn(self.origin_lifecycle.finish(origin, playing))
            else:
                origin.close()
        for group in self.tcp_groups.values():
            group.flush()
        if self.coalesced_reads is not None:
            self.coalesced_reads.close()
        for stream in self.streams:
            stream.close()
        self.status.report()
        self.status.stop()
