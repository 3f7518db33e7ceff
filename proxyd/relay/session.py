"""ProxySession: one player session <-> its own origin session (streams, SETUP/PLAY/PAUSE, keepalive,
UDP -> TCP fallback, SelectStream deselect); the shared machinery is proxyd.serving.session_base."""

from __future__ import annotations

import asyncio
import dataclasses

from proxyd.log import get_logger
from proxyd.net.udp import bind_port_pair, peer_address, wildcard_for
from proxyd.origin.stream_relay import StreamRelay, UdpPair, aggregate_counters
from proxyd.routing import Target, forward_headers, rewrite_response_headers
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Request, Response
from proxyd.rtsp.headers import TransportSpec, format_transport, parse_range, parse_session, parse_transport
from proxyd.origin.client import OriginClient, OriginError
from proxyd.rtsp.uri import same_resource, url_key
from proxyd.serving.contracts import Player, ServerContext
from proxyd.serving.resumable import park_relays, unpark_relays
from proxyd.serving.session_base import SessionBase
from proxyd.wm.classify import CT_EXTENSION_CMD, media_type
from proxyd.wm.messages import parse_end_of_stream_body
from proxyd.wmext.playlist import relay_to_player
from proxyd.wmext.upstream_log import is_wm_origin, send_own_logplay

log = get_logger("session")

TEARDOWN_TIMEOUT = 2.0


class ProxySession(SessionBase):
    kind = "session"

    def __init__(self, context: ServerContext, player: Player, target: Target, origin: OriginClient) -> None:
        super().__init__(context, player, target)
        self.origin = origin
        self.streams: list[StreamRelay] = []
        self.stream_urls: dict[str, StreamRelay] = {}
        self.selecting: dict[str, StreamRelay] = {}  # origin URL -> stream whose SETUP is upstream
        self.deselecting: set[StreamRelay] = set()  # streams whose TEARDOWN is upstream
        self.origin_channels: dict[int, tuple[StreamRelay, bool]] = {}
        self.upstream_tcp: bool | None = None
        self.fallback_done = False
        self.origin_session: str | None = None
        self.origin_timeout = 60
        self.keepalive_method = "GET_PARAMETER"
        self.setup_headers: dict[str, Headers] = {}
        self.last_play: Request | None = None
        self.aggregate_url = target.origin_url  # replaced by the PLAY URL once the player plays
        self.wm_origin = False  # its PLAY answer listed com.microsoft.wm.* (it takes our LogPlay)
        self.play_began = (0.0, 0.0, None)  # loop time, npt and counters of the current play period
        self.change_notice = False  # the last PLAY answer carried X-Playlist-Change-Notice: true
        self.announced_entry = False  # an Announce named a new playlist entry not yet played
        origin.on_frame = self._on_origin_frame
        origin.on_request = self._on_origin_request
        origin.on_lost = lambda why: self.close("origin_error", why)

    @property
    def presentation_url(self) -> str:
        return self.aggregate_url

    @property
    def pipelines_select_streams(self) -> bool:
        return True  # setup() and deselect() claim their stream before they wait

    @property
    def origin_transport(self) -> str:
        """auto/udp/tcp: the route's preference from the control plane, else --origin-transport; tcp
        from a cluster peer (one connection between nodes; no UDP source address to match)."""
        if self.origin.is_peer:
            return "tcp"
        return self.target.transport or self.context.config.origin_transport

    # --- SETUP ---------------------------------------------------------------------------------
    async def setup(self, request: Request, origin_url: str, spec: TransportSpec,
                    clock_rate: int) -> Response:
        if self.state == "playing":
            return Response(455, "Method Not Valid in This State", Headers())
        if self._selected(origin_url):
            return Response(459, "Aggregate Operation Not Allowed", Headers())
        stream = StreamRelay(self._free_index(), clock_rate)
        if spec.is_tcp:
            channels = spec.interleaved or (2 * stream.index, 2 * stream.index + 1)
            if channels[1] == channels[0]:
                channels = (channels[0], channels[0] + 1)
            stream.player_channels = channels
            stream.player_writer = self.player.media_writer()
        else:
            ip = self.player.peer_ip
            stream.player_rtp_addr = (ip, spec.client_port[0])
            stream.player_rtcp_addr = (ip, spec.client_port[1] if spec.client_port[1] != spec.client_port[0]
                                       else spec.client_port[0] + 1)
        use_tcp = self.upstream_tcp
        if use_tcp is None:
            use_tcp = self.origin_transport == "tcp"
        self.selecting[origin_url] = stream
        try:
            resp = await self._setup_upstream(stream, origin_url, request.headers, use_tcp)
            if resp.status == 461 and not use_tcp and self.upstream_tcp is None \
                    and self.origin_transport == "auto":
                use_tcp = True
                resp = await self._setup_upstream(stream, origin_url, request.headers, use_tcp)
        except BaseException:
            stream.close()
            raise
        finally:
            del self.selecting[origin_url]
        if not 200 <= resp.status < 300:
            stream.close()
            headers = Headers(rewrite_response_headers(resp, self.target, None))
            return Response(resp.status, resp.reason, headers, resp.body)
        if spec.is_tcp:
            self.player.register_channel(stream.player_channels[1], stream)  # player RTCP in
        self.upstream_tcp = use_tcp
        self.streams.append(stream)
        self.stream_urls[origin_url] = stream
        self.setup_headers[origin_url] = request.headers
        self.state = "ready"
        self.start_timers(max(1.0, self.origin_timeout * self.limits.keepalive_fraction))
        player_spec = dataclasses.replace(
            spec, destination=None, source=None, mode=None, extra=(),
            interleaved=stream.player_channels if spec.is_tcp else None,
            server_port=None if spec.is_tcp else (stream.pair.rtp_port, stream.pair.rtp_port + 1),
            ssrc=self._origin_ssrc(resp), delivery="unicast")
        headers = rewrite_response_headers(resp, self.target, self.player_session_header)
        headers.append(("Transport", format_transport(player_spec)))
        return Response(resp.status, resp.reason, Headers(headers), resp.body)

    def _selected(self, origin_url: str) -> bool:
        """Selected and not being deselected, or being selected: a pipelined SETUP may name the
        URL of an old entry's stream whose TEARDOWN is still upstream (4.4.5)."""
        kept = [url for url, stream in self.stream_urls.items() if stream not in self.deselecting]
        return any(same_resource(origin_url, url) for url in (*kept, *self.selecting))

    def _free_index(self) -> int:
        """The lowest stream index (upstream channels 2i, 2i+1) no selected stream or SETUP in
        flight holds, so pipelined SETUPs never share one and entries reuse freed ones."""
        used = {stream.index for stream in (*self.streams, *self.selecting.values())}
        return next(index for index in range(len(used) + 1) if index not in used)

    @staticmethod
    def _origin_ssrc(resp: Response) -> str | None:
        try:
            return parse_transport(resp.headers.get("Transport", ""))[0].ssrc
        except (RtspError, IndexError):
            return None

    async def _setup_upstream(self, stream: StreamRelay, origin_url: str, player_headers: Headers,
                              use_tcp: bool) -> Response:
        """SETUP one stream at the origin; allocates the UDP pair when either side uses UDP."""
        needs_pair = not use_tcp or stream.player_writer is None
        if needs_pair and stream.pair is None:
            origin_ip = self.origin.transport.get_extra_info("peername")[0]
            rtp, rtcp = bind_port_pair(wildcard_for(self.player.peer_ip, origin_ip),
                                       self.limits.rtp_port_min, self.limits.rtp_port_max)
            stream.pair = UdpPair(rtp, rtcp, stream)
            if stream.player_rtp_addr is not None:  # an IPv4 player of a dual-stack pair
                stream.player_rtp_addr = _as_peer(rtp.family, stream.player_rtp_addr)
                stream.player_rtcp_addr = _as_peer(rtp.family, stream.player_rtcp_addr)
        if use_tcp:
            channels = (2 * stream.index, 2 * stream.index + 1)
            transport = f"RTP/AVP/TCP;unicast;interleaved={channels[0]}-{channels[1]}"
        else:
            transport = f"RTP/AVP;unicast;client_port={stream.pair.rtp_port}-{stream.pair.rtp_port + 1}"
        extra = [("Transport", transport)]
        if self.origin_session:
            extra.append(("Session", self.origin_session))
        resp = await self.origin.request("SETUP", origin_url, forward_headers(player_headers, extra))
        if not 200 <= resp.status < 300:
            return resp
        session_value = resp.headers.get("Session")
        if session_value:
            try:
                parsed = parse_session(session_value)
                self.origin_session = parsed.id
                self.origin_timeout = parsed.timeout or 60
            except RtspError:
                raise OriginError(502, "Bad Gateway",
                                  f"origin sent a bad Session header {session_value!r}") from None
        try:
            origin_spec = parse_transport(resp.headers.get("Transport", ""))[0]
        except (RtspError, IndexError):
            raise OriginError(502, "Bad Gateway", "origin SETUP response has no usable Transport") from None
        if use_tcp:
            channels = origin_spec.interleaved or channels
            rtcp_channel = channels[1] if channels[1] != channels[0] else channels[0] + 1
            stream.origin_channels = (channels[0], rtcp_channel)
            stream.origin_frame_sender = self.origin.send_frame
            self.origin_channels[stream.origin_channels[0]] = (stream, False)
            self.origin_channels[stream.origin_channels[1]] = (stream, True)
        else:
            source = origin_spec.source or self.origin.transport.get_extra_info("peername")[0]
            origin_ip = peer_address(stream.pair.rtp.family, source)
            stream.origin_ip = origin_ip
            if origin_spec.server_port:
                low, high = origin_spec.server_port
                stream.origin_rtcp_addr = (origin_ip, high if high != low else low + 1)
            stream.origin_frame_sender = None
        return resp

    # --- PLAY / PAUSE / TEARDOWN / parameters --------------------------------------------------
    async def play(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        if self.announced_entry and request.headers.get("X-Playlist-Seek-Id") is not None:
            # [MS-RTSP] 3.1.5.16.1: the Play after an Announce starts the new entry: no Range upstream
            # (a Play in READY may seek within an entry with Range, 3.1.5.9.1)
            request = dataclasses.replace(request, headers=request.headers.remove("Range"))
        resp = await self.origin_request(request)
        if 200 <= resp.status < 300:
            self.state = "playing"
            self.announced_entry = False
            self.last_play = request
            self.wm_origin = self.wm_origin or is_wm_origin(resp.headers.get("Supported"))
            self.change_notice = (resp.headers.get("X-Playlist-Change-Notice") or "").strip().lower() == "true"
            self.play_began = (self.loop.time(), _npt_start(request.headers.get("Range")),
                               aggregate_counters(self.streams))
            if request.uri != "*":
                self.aggregate_url = self.target.to_origin(request.uri)
            self.report_started()
            auto = self.origin_transport == "auto"
            if not self.upstream_tcp and not self.fallback_done and auto:
                self.spawn(self._udp_watchdog())
        return resp

    async def pause(self, request: Request) -> Response:
        if self.state not in ("ready", "playing"):
            return Response(455, "Method Not Valid in This State", Headers())
        was_playing = self.state == "playing"
        resp = await self.origin_request(request)
        if 200 <= resp.status < 300:
            self.state = "ready"
            if was_playing:
                self.spawn(self._own_logplay())  # after the player's answer, never delaying it
        return resp

    async def teardown(self, request: Request) -> Response:
        if self.state == "playing" and self.wm_origin:  # [MS-RTSP] 3.1.4.7: stop, log, then finish
            try:
                async with asyncio.timeout(TEARDOWN_TIMEOUT):
                    if await self._pause_upstream():
                        await self._own_logplay()
            except TimeoutError:
                log.info("%s origin slow to PAUSE/LogPlay before TEARDOWN", self.log_ctx)
        try:
            resp = await self.origin_request(request, timeout=TEARDOWN_TIMEOUT)
        except OriginError:
            resp = None
        self.close("teardown", origin_teardown=False)
        return Response(200, "OK", Headers(rewrite_response_headers(resp, self.target, None) if resp else []))

    async def origin_request(self, request: Request, timeout: float | None = None) -> Response:
        """Forward a player request within this session and rewrite the answer for the player."""
        url = self.target.to_origin(request.uri) if request.uri != "*" else request.uri
        extra = [("Session", self.origin_session)] if self.origin_session else []
        coro = self.origin.request(request.method, url, forward_headers(request.headers, extra), request.body)
        if timeout is not None:
            try:
                async with asyncio.timeout(timeout):
                    resp = await coro
            except TimeoutError:
                raise OriginError(504, "Gateway Timeout", f"origin did not answer {request.method}") from None
        else:
            resp = await coro
        headers = rewrite_response_headers(resp, self.target, self.player_session_header)
        return Response(resp.status, resp.reason, Headers(headers), resp.body)

    # --- player connection lost / resumed ([MS-RTSP] 3.2.7.2, see serving.Resumable) ------------
    def park(self) -> None:
        if self.state == "playing" and self.origin_session:  # READY at the origin too, until resumed
            self.spawn(self._pause_and_log())
        self.parked = park_relays(self.streams)

    def unpark(self, player: Player) -> None:
        unpark_relays(self.streams, self.parked, player)

    async def _pause_upstream(self) -> bool:
        try:
            resp = await self.origin.request("PAUSE", self.aggregate_url,
                                             Headers([("Session", self.origin_session)]))
        except OriginError as exc:
            log.info("%s PAUSE at the origin failed: %s", self.log_ctx, exc.detail)
            return False
        if resp.status >= 400:  # its RTP is dropped here until the player resumes
            log.info("%s origin refused PAUSE: %d", self.log_ctx, resp.status)
            return False
        return True

    async def _pause_and_log(self) -> None:
        if await self._pause_upstream():
            await self._own_logplay()

    async def _own_logplay(self) -> None:
        """[MS-RTSP] 3.1.4.7: once the origin paused, the client role's LogPlay of the play period
        (Windows Media origins only; its failure changes nothing for the player)."""
        if not (self.wm_origin and self.origin_session and self.origin.is_open):
            return
        began, npt, before = self.play_began
        now = aggregate_counters(self.streams)
        period = {key: now[key] - (before or {}).get(key, 0) for key in ("bytes_in", "packets_in", "packets_lost")}
        await send_own_logplay(self.origin, self.aggregate_url, self.origin_session, start_npt=npt,
                               played_s=self.loop.time() - began, counters=period, tcp=bool(self.upstream_tcp),
                               log_ctx=self.log_ctx)

    # --- origin events -------------------------------------------------------------------------
    def _on_origin_frame(self, channel: int, payload: bytes) -> None:
        entry = self.origin_channels.get(channel)
        if entry is None:
            return
        stream, is_rtcp = entry
        if is_rtcp:
            stream.rtcp_from_origin(payload)
        else:
            stream.rtp_from_origin(payload)

    def _on_origin_request(self, request: Request) -> None:
        """EndOfStream SET_PARAMETER, ANNOUNCE...: already answered upstream; relay to the player."""
        self.player.send_server_request(relay_to_player(self, request))  # URLs, Session, RTP-Info
        if request.method == "ANNOUNCE":
            self.announced_entry = True
        if request.method != "SET_PARAMETER" or self.state != "playing" \
                or media_type(request.headers.get("Content-Type")) != CT_EXTENSION_CMD.lower():
            return
        eos = parse_end_of_stream_body(request.body)
        if eos.eof or eos.end_of_playlist_entry:
            self.state = "ready"  # [MS-RTSP] 3.1.5.13: READY at the origin; no Pause at a later stop
            if eos.end_of_playlist_entry and not self.change_notice:
                # the client role logs the entry that ended, unless the Play that led to it was
                # answered with X-Playlist-Change-Notice (skipped, not played)
                self.spawn(self._own_logplay())

    # --- timers ------------------------------------------------------------------------------
    def origin_keepalive(self) -> None:
        self.spawn(self._keepalive())

    async def _keepalive(self) -> None:
        """GET_PARAMETER (OPTIONS if the origin refuses it) so the origin session never times out."""
        headers = Headers([("Session", self.origin_session)] if self.origin_session else [])
        try:
            resp = await self.origin.request(self.keepalive_method, self.aggregate_url, headers)
        except OriginError as exc:
            self.close("origin_error", f"keepalive failed: {exc.detail}")
            return
        if resp.status >= 400 and self.keepalive_method != "OPTIONS":
            self.keepalive_method = "OPTIONS"

    async def _udp_watchdog(self) -> None:
        waits = [asyncio.ensure_future(s.first_packet.wait()) for s in self.streams]
        done, pending = await asyncio.wait(waits, timeout=self.limits.udp_fallback_timeout,
                                           return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()
        if done or self.ended:
            return
        log.warning("%s no UDP media from origin in %.1fs, switching to TCP", self.log_ctx,
                    self.limits.udp_fallback_timeout)
        self.fallback_done = True
        try:
            await self._switch_to_tcp()
        except OriginError as exc:
            self.close("origin_error", f"TCP fallback failed: {exc.detail}")

    async def _switch_to_tcp(self) -> None:
        if self.origin_session:
            await self.origin.request("TEARDOWN", self.aggregate_url,
                                      Headers([("Session", self.origin_session)]))
        self.origin_session = None
        for url, stream in self.stream_urls.items():
            resp = await self._setup_upstream(stream, url, self.setup_headers[url], use_tcp=True)
            if not 200 <= resp.status < 300:
                raise OriginError(502, "Bad Gateway", f"origin refused TCP SETUP: {resp.status}")
        self.upstream_tcp = True
        if self.last_play is not None:
            play = self.last_play
            extra = [("Session", self.origin_session)] if self.origin_session else []
            await self.origin.request("PLAY", self.target.to_origin(play.uri),
                                      forward_headers(play.headers.remove("Range"), extra))

    # --- reports and teardown ------------------------------------------------------------------
    def started_data(self) -> dict:
        player_url = self.last_play.uri if self.last_play and self.last_play.uri != "*" else \
            self.target.to_player(self.aggregate_url)
        return {"session_id": self.id, "url": url_key(player_url),
                "origin_url": url_key(self.aggregate_url), "player_addr": self.player.peer,
                "user_agent": self.player.user_agent,
                "transports": [s.player_transport for s in self.streams],
                "served_from": "origin"}

    def counters_data(self) -> dict:
        return {"session_id": self.id, **aggregate_counters(self.streams)}

    def release(self, reason: str, origin_teardown: bool) -> None:
        super().release(reason, origin_teardown)
        origin = self.origin
        origin.on_frame = origin.on_request = origin.on_lost = None
        if origin_teardown and self.origin_session and origin.is_open:
            self.context.spawn(origin.teardown_and_close(self.aggregate_url, self.origin_session))
        else:
            origin.close()

    # --- SelectStream deselect ([MS-RTSP] 2.2.7.10.2, 4.4.5) -----------------------------------
    def addressed_stream(self, request: Request) -> StreamRelay | None:
        """The stream this request's URL names, or None for the aggregate URL."""
        if not self.stream_urls or request.uri == "*":
            return None
        wanted = url_key(self.target.to_origin(request.uri))
        return next((stream for url, stream in self.stream_urls.items() if url_key(url) == wanted), None)

    async def deselect(self, request: Request) -> Response:
        """A TEARDOWN on a stream control URL removes that stream only; the session stays. At a
        server-side playlist entry change the player deselects the old entry's streams this way and
        selects the new ones with SETUP, so once no stream is left the session is `ready` again."""
        stream = self.addressed_stream(request)
        if stream is not None:
            self.deselecting.add(stream)
        try:
            resp = await self.origin_request(request)
        finally:
            self.deselecting.discard(stream)
        if not 200 <= resp.status < 300 or stream is None:
            return resp
        self.stream_urls = {url: s for url, s in self.stream_urls.items() if s is not stream}
        self.setup_headers = {url: h for url, h in self.setup_headers.items() if url in self.stream_urls}
        self.origin_channels = {ch: entry for ch, entry in self.origin_channels.items() if entry[0] is not stream}
        self.player.unregister_stream(stream)
        if stream in self.streams:
            self.streams.remove(stream)
        stream.close()
        if not self.streams:
            self.state = "ready"  # the next entry's streams are selected with SETUP (4.4.5)
        return resp


def _as_peer(family: int, addr: tuple[str, int]) -> tuple[str, int]:
    return peer_address(family, addr[0]), addr[1]


def _npt_start(value: str | None) -> float:
    """Where a PLAY's Range starts (0 when absent, "now" or not npt): c-starttime of our LogPlay."""
    try:
        start = parse_range(value).start if value else None
    except RtspError:
        return 0.0
    return start if isinstance(start, float) else 0.0
