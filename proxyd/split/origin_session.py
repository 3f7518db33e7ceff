"""The hub's origin session lifecycle: open (SETUP every stream, PLAY), keepalive and media-stall
watch, UDP-to-TCP fallback, reconnect with capped backoff, drop, and the Pause + LogPlay + Teardown
when the hub ends (proxyd.split.hub describes the behaviour). The session state (origin connection,
Session id, transport) stays on the hub, which players, the playlist and the status read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from proxyd.config import Limits
from proxyd.log import get_logger
from proxyd.net.udp import peer_address
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Headers, Response
from proxyd.rtsp.headers import parse_session, parse_transport
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

Reconnect = Callable[[], Awaitable[tuple[OriginClient, Response]]]


class SessionHub(Protocol):
    """What the origin session uses of its hub (proxyd.split.hub.Hub)."""

    context: ServerContext
    limits: Limits
    loop: asyncio.AbstractEventLoop
    origin_url: str
    aggregate_url: str
    origin: OriginClient | None
    origin_host: str
    origin_port: int
    origin_tls: bool
    origin_tls_verify: bool
    origin_credentials: object
    origin_headers: Headers
    reconnect: Reconnect | None
    origin_session: str | None
    origin_timeout: int
    origin_channels: dict
    origin_ready: bool
    origin_finished: bool
    wm_origin: bool
    played_from: tuple[float, dict]
    state: str
    players: set
    streams: list[HubStream]
    ready: asyncio.Event
    set_up: asyncio.Event
    play_wanted: asyncio.Event
    reconnect_attempts: int
    media_timeout: float
    media_stalls: int
    transport: str
    use_tcp: bool
    status: SplitStatus
    playlist: HubPlaylist

    def set_state(self, state: str) -> None: ...

    def begin_play_period(self) -> None: ...

    def request_headers(self, extra: list | None = None) -> Headers: ...

    def tell_players(self, request) -> None: ...

    def end(self, reason: str, detail: str = "") -> None: ...


class OriginSession:
    """Runs the hub's origin session until the hub ends."""

    def __init__(self, hub: SessionHub) -> None:
        self.hub = hub

    async def run(self) -> None:
        hub = self.hub
        attempt, lost_at = 0, None
        while hub.state != "ended":
            try:
                if hub.origin is None or not hub.origin.is_open:
                    await self._reconnect()
                await self._open()
                hub.set_state("live")
                hub.ready.set()
                attempt, lost_at = 0, None
                while await self._keepalive_until_lost() == "udp-silent":
                    await self._fall_back_to_tcp()
                    hub.status.report()  # origin_transport is tcp now
                why = "origin closed the connection"
            except OriginError as exc:
                why = exc.detail
            if hub.state == "ended":
                return
            if hub.origin_finished:
                self._release_finished_origin(why)
                return
            hub.set_state("reconnecting")
            lost_at = lost_at if lost_at is not None else hub.loop.time()
            for stream in hub.streams:
                stream.remap = True
            self._drop_origin()
            waited = hub.loop.time() - lost_at
            if waited >= hub.limits.split_reconnect_wait:
                hub.end("origin_error", f"origin unavailable for {waited:.1f}s: {why}")
                return
            delay = min(hub.limits.split_backoff_max, BACKOFF_START * (2 ** attempt),
                        hub.limits.split_reconnect_wait - waited)
            attempt += 1
            log.warning("split %s origin session lost (%s); reconnect %d in %.2fs", hub.origin_url, why,
                        attempt, delay)
            await asyncio.sleep(delay)  # backoff, not synchronisation

    async def _reconnect(self) -> None:
        hub = self.hub
        hub.reconnect_attempts += 1
        if hub.reconnect is not None:
            hub.origin, resp = await hub.reconnect()
        else:
            hub.origin = await hub.context.origin_connector.connect(hub.origin_host, hub.origin_port,
                                                                    hub.origin_credentials, tls=hub.origin_tls,
                                                                    verify=hub.origin_tls_verify)
            resp = await hub.origin.request("DESCRIBE", hub.origin_url, hub.origin_headers)
        if not 200 <= resp.status < 300:
            raise OriginError(502, "Bad Gateway", f"origin DESCRIBE answered {resp.status}")
        hub.origin_session = None
        hub.playlist.described(resp)

    async def _open(self) -> None:
        hub = self.hub
        origin = hub.origin
        origin.on_frame = self._on_origin_frame
        origin.on_request = self._on_origin_request
        origin.on_lost = None
        for stream in hub.streams:
            resp = await self.setup(stream, hub.use_tcp)
            if resp.status == 461 and not hub.use_tcp and hub.transport == "auto":
                hub.use_tcp = True
                resp = await self.setup(stream, True)
            if not 200 <= resp.status < 300:
                raise OriginError(502, "Bad Gateway", f"origin SETUP answered {resp.status}")
        hub.set_up.set()
        if not all(stream.ssrc_fixed.is_set() for stream in hub.streams):
            hub.play_wanted.set()  # only the first packet tells the SSRC the players' SETUP answers name
        await hub.play_wanted.wait()
        resp = await origin.request("PLAY", hub.aggregate_url, hub.request_headers())
        if not 200 <= resp.status < 300:
            raise OriginError(502, "Bad Gateway", f"origin PLAY answered {resp.status}")
        hub.wm_origin = is_wm_origin(resp.headers.get("Supported"))
        hub.begin_play_period()

    async def setup(self, stream: HubStream, use_tcp: bool, extra: list | None = None) -> Response:
        """SETUP one stream at the origin; note its Session, SSRC and where its media comes from."""
        hub = self.hub
        if use_tcp:
            channels = (2 * stream.index, 2 * stream.index + 1)
            transport = f"RTP/AVP/TCP;unicast;interleaved={channels[0]}-{channels[1]}"
        else:
            transport = f"RTP/AVP;unicast;client_port={stream.port}-{stream.port + 1}"
        resp = await hub.origin.request("SETUP", stream.url, hub.request_headers([("Transport", transport),
                                                                                  *(extra or [])]))
        if not 200 <= resp.status < 300:
            return resp
        try:
            if resp.headers.get("Session"):
                parsed = parse_session(resp.headers.get("Session"))
                hub.origin_session, hub.origin_timeout = parsed.id, parsed.timeout or 60
            spec = parse_transport(resp.headers.get("Transport", ""))[0]
        except (RtspError, IndexError):
            raise OriginError(502, "Bad Gateway", "origin SETUP answer has a bad Session/Transport") from None
        ssrc = ssrc_value(spec.ssrc)
        if ssrc is not None:  # players' SETUP answers can name it before the first packet
            stream.origin_named_ssrc(ssrc)
        if use_tcp:
            low, high = spec.interleaved or channels
            hub.origin_channels[low] = (stream, False)
            hub.origin_channels[high if high != low else low + 1] = (stream, True)
        else:
            source = spec.source or hub.origin.transport.get_extra_info("peername")[0]
            stream.origin_ip = peer_address(stream.rtp.family, source)
            stream.origin_rtp_port = None
            if spec.server_port:
                low, high = spec.server_port
                stream.origin_rtp_port = low
                stream.origin_rtcp_addr = (stream.origin_ip, high if high != low else low + 1)
        return resp

    def packets_in(self) -> int:
        return sum(stream.packets_in for stream in self.hub.streams)

    def totals(self) -> dict:
        streams = self.hub.streams
        return {"bytes_in": sum(s.bytes_in for s in streams), "packets_in": self.packets_in(),
                "packets_lost": sum(s.packets_lost for s in streams)}

    async def finish(self, origin: OriginClient, playing: bool) -> None:
        """[MS-RTSP] 3.1.4.7 before 3.1.4.10: a Windows Media origin still sending gets Pause and our
        LogPlay, then the Teardown (all bounded, best effort)."""
        hub = self.hub
        if playing and hub.wm_origin:
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    resp = await origin.request("PAUSE", hub.aggregate_url, hub.request_headers())
                    if resp.status < 300:
                        await self.send_logplay(origin)
            except (OriginError, TimeoutError):
                pass
        await origin.teardown_and_close(hub.aggregate_url, hub.origin_session)

    async def send_logplay(self, origin: OriginClient) -> None:
        """Our LogPlay of the play period since the origin PLAY ([MS-RTSP] 3.1.4.7, 3.1.5.13)."""
        hub = self.hub
        began, before = hub.played_from
        now = self.totals()
        await send_own_logplay(origin, hub.aggregate_url, hub.origin_session, start_npt=0.0,
                               played_s=hub.loop.time() - began,
                               counters={k: now[k] - before[k] for k in now}, tcp=hub.use_tcp,
                               log_ctx=f"split {hub.origin_url}")

    def _release_finished_origin(self, why: str) -> None:
        """The origin session was lost after the final EndOfStream: nothing more would come, so no
        reconnect and no PLAY; the attached players stay READY and the hub ends when they leave."""
        hub = self.hub
        log.info("split %s: origin session lost after the final EndOfStream (%s); not reconnecting",
                 hub.origin_url, why)
        self._drop_origin()
        if not hub.players:
            hub.end("no players")

    def _drop_origin(self) -> None:
        """Let go of a lost origin session's connection (freed at the origin if it is still open,
        e.g. after a media stall)."""
        hub = self.hub
        origin, hub.origin = hub.origin, None
        if origin is not None:
            origin.on_frame = origin.on_lost = origin.on_request = None
            if hub.origin_session and origin.is_open:
                hub.context.spawn(origin.teardown_and_close(hub.aggregate_url, hub.origin_session))
            else:
                origin.close()

    async def _keepalive_until_lost(self) -> str:
        """Keep the origin session alive until its connection closes ("closed"); "udp-silent" when
        a UDP session that may fall back got no RTP at all in time; raise OriginError when no media
        arrived for `media_timeout` seconds."""
        hub = self.hub
        interval = max(1.0, hub.origin_timeout * hub.limits.keepalive_fraction)
        check = min(interval, hub.media_timeout / 2)
        method = "GET_PARAMETER"
        now = hub.loop.time()
        next_keepalive = now + interval
        seen, seen_at = self.packets_in(), now
        # Before the media timeout too: a UDP reconnect would meet the same firewall.
        fallback_at = None
        if not hub.use_tcp and hub.transport == "auto":
            fallback_at = now + min(hub.limits.udp_fallback_timeout, hub.media_timeout)
        while True:
            wait = check if fallback_at is None else max(0.0, min(check, fallback_at - now))
            try:
                async with asyncio.timeout(wait):
                    await hub.origin.closed.wait()
                return "closed"
            except TimeoutError:
                pass
            now = hub.loop.time()
            count = self.packets_in()
            if hub.origin_ready:  # no media expected from a READY origin session
                seen_at = now
            if count != seen:
                seen, seen_at, fallback_at = count, now, None
            elif fallback_at is not None and now >= fallback_at:
                return "udp-silent"
            elif now - seen_at >= hub.media_timeout:
                hub.media_stalls += 1
                raise OriginError(504, "Gateway Timeout", f"no media from the origin for {now - seen_at:.1f}s")
            if now >= next_keepalive:
                next_keepalive = now + interval
                resp = await hub.origin.request(method, hub.aggregate_url, hub.request_headers())
                if resp.status >= 400 and method != "OPTIONS":
                    method = "OPTIONS"

    async def _fall_back_to_tcp(self) -> None:
        """TEARDOWN the silent UDP origin session, then SETUP and PLAY it again interleaved."""
        hub = self.hub
        log.warning("split %s no UDP media from the origin in %.1fs, switching to TCP", hub.origin_url,
                    min(hub.limits.udp_fallback_timeout, hub.media_timeout))
        hub.use_tcp = True
        if hub.origin_session:
            await hub.origin.request("TEARDOWN", hub.aggregate_url, hub.request_headers())
            hub.origin_session = None
        await self._open()

    def _on_origin_frame(self, channel: int, payload: bytes) -> None:
        entry = self.hub.origin_channels.get(channel)
        if entry is not None:
            stream, is_rtcp = entry
            (stream.rtcp_frame if is_rtcp else stream.rtp_frame)(payload)

    def _on_origin_request(self, request) -> None:
        """EndOfStream/ANNOUNCE from the origin (already answered upstream): act on it as the client
        role (a playlist's next entry, proxyd.split.playlist), then tell every player."""
        hub = self.hub
        hub.tell_players(hub.playlist.on_origin_request(request))


def ssrc_value(text: str | None) -> int | None:
    """Transport ssrc= (8 hex digits, RFC 2326 12.39, [MS-RTSP] 2.2.6.11); None when absent or
    malformed (the first packet's SSRC is used then)."""
    if not text or len(text) > 8 or not all(c in HEX_DIGITS for c in text):
        return None
    return int(text, 16)
