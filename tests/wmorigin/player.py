"""A player that speaks like Windows Media Player 11 over RTSP ([MS-RTSP] client role, 3.1).

    result = await WMPlayer(url, transport="udp").run()

Sequence ([MS-RTSP] 4.4.7, 4.5, 4.4.5): DESCRIBE (User-Agent `WMPlayer/11.0.5721.5145 guid/<GUID>`,
Supported com.microsoft.wm.* tags, X-Accept-Authentication; 3.1.5.1) -> SETUP per x-asf-pf stream
(TCP interleaved or UDP sharing one client_port pair, 2.2.6.11) -> PLAY (Range, X-Playlist-Seek-Id,
Speed only if the server offered fastcache, 2.2.6.10.2) -> LogConnect with the 4.5.1 log
(3.1.5.9.1) -> RTP received and reassembled into ASF data packets (2.2.1) -> EndOfStream answered
200 (3.1.5.13) -> LogPlay with the 4.5.2 legacy log -> for a playlist entry change, Announce
answered, old streams torn down, new ones set up and played (4.4.5) -> SendEvent remote-log when
the server subscribed to it (3.1.4.9) -> TEARDOWN.

With `pipeline=True` the SelectStreams (SETUP, stream TEARDOWN) go as WMP sends them: in INIT the
first SETUP alone (it creates the session), then the rest without waiting for answers (3.1.4.3.1,
3.1.4.5), their answers taken in order afterwards; the Play once every one is answered (3.1.5.16).
Without it each request waits for its answer.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.wmorigin import asfpf, wire
from tests.wmorigin.events import build_remote_log
from tests.wmorigin.sdp import ParsedSdp, parse_sdp, resolve

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "asf"
USER_AGENT_VERSION = "WMPlayer/11.0.5721.5145"
SUPPORTED = ("com.microsoft.wm.srvppair, com.microsoft.wm.sswitch, com.microsoft.wm.eosmsg, "
             "com.microsoft.wm.predstrm, com.microsoft.wm.startupprofile")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class StreamResult:
    number: int
    url: str
    ssrc: int = 0
    maxps: int = 0
    packets: int = 0
    bytes: int = 0
    sender_reports: list[tuple[int, int]] = field(default_factory=list)  # (RTP timestamp, packet count)
    asf_packets: list[bytes] = field(default_factory=list)  # reassembled, padding restored
    send_times: list[int] = field(default_factory=list)
    depacketizer: asfpf.Depacketizer = field(default_factory=asfpf.Depacketizer)
    first_seq: int | None = None  # of the first RTP packet received (compare with RTP-Info)
    first_payload_header: bytes = b""  # its first x-asf-pf payload header (S bit: key frame, 2.2.1.2)


@dataclass
class EntryResult:
    sdp: ParsedSdp
    gen_id: int
    cache_control: str
    streams: dict[int, StreamResult] = field(default_factory=dict)
    play: wire.Message | None = None
    eos: wire.Message | None = None


@dataclass
class PlayResult:
    guid: str
    describe: wire.Message | None = None
    entries: list[EntryResult] = field(default_factory=list)
    announces: list[wire.Message] = field(default_factory=list)
    responses: list[tuple[str, wire.Message]] = field(default_factory=list)  # (request kind, response)
    server_requests: list[wire.Message] = field(default_factory=list)
    unmatched: Counter = field(default_factory=Counter)  # SSRC -> RTP packets no SETUP'd stream matched
    error: str | None = None

    def status(self, kind: str) -> list[int]:
        return [r.status for k, r in self.responses if k == kind]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handler) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr) -> None:
        self.handler(data)


class WMPlayer:
    def __init__(self, url: str, *, transport: str = "tcp", speed: float | None = None,
                 send_event: bool = True, stop_after_s: float | None = None, npt: float = 0.0,
                 timeout: float = 20.0, logplay: bytes | None = None, pipeline: bool = False) -> None:
        self.url = url
        self.pipeline = pipeline
        self.transport = transport
        self.speed = speed
        self.send_event = send_event
        self.stop_after_s = stop_after_s
        self.npt = npt
        self.timeout = timeout
        self.logplay = logplay if logplay is not None else fixture("logplay_legacy_ms_rtsp_4_5_2.xml")
        self.guid = str(uuid.uuid4()).upper()
        self.result = PlayResult(self.guid)
        self._cseq = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._server_requests: asyncio.Queue[wire.Message] = asyncio.Queue()
        self._by_ssrc: dict[int, StreamResult] = {}
        self._by_channel: dict[int, StreamResult] = {}  # TCP: interleaved RTP channel -> stream
        self.rtp_arrived = asyncio.Event()  # set by the first RTP packet, matched to a stream or not
        self._session = ""
        self._server_supported = ""
        self._udp: list[asyncio.DatagramTransport] = []
        self._udp_port = 0

    # -- plumbing -----------------------------------------------------------------------------
    async def run(self) -> PlayResult:
        parts = urlsplit(self.url)
        self.reader, self.writer = await asyncio.open_connection(parts.hostname, parts.port or 554)
        reader_task = asyncio.create_task(self._read_loop())
        try:
            await asyncio.wait_for(self._play(), self.timeout)
        except (asyncio.TimeoutError, ConnectionError, wire.WireError) as exc:
            self.result.error = f"{type(exc).__name__}: {exc}"
        finally:
            reader_task.cancel()
            await asyncio.gather(reader_task, return_exceptions=True)
            self.writer.close()
            for t in self._udp:
                t.close()
        return self.result

    async def _read_loop(self) -> None:
        while True:
            item = await wire.read_item(self.reader)
            if item is None:
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("server closed the connection"))
                return
            if isinstance(item, wire.Frame):
                if item.channel % 2:
                    self._rtcp(item.payload)
                else:
                    self._rtp(item.payload, item.channel)
            elif item.method:
                self.result.server_requests.append(item)
                await self._server_requests.put(item)
            elif item.cseq in self._pending:
                self._pending.pop(item.cseq).set_result(item)

    def _headers(self, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = [("User-Agent", f"{USER_AGENT_VERSION} guid/{self.guid}"),
               ("Accept-Charset", "UTF-8, *;q=0.1"), ("X-Accept-Authentication", "Negotiate, NTLM, Digest"),
               ("Accept-Language", "en-US, *;q=0.1")]
        if self._session:
            out.append(("Session", self._session))
        return out + extra

    async def request(self, kind: str, method: str, uri: str, extra: list[tuple[str, str]] | None = None,
                      body: bytes = b"") -> wire.Message:
        return await self._answer_to(kind, await self._send(method, uri, extra, body))

    async def _send(self, method: str, uri: str, extra: list[tuple[str, str]] | None = None,
                    body: bytes = b"") -> asyncio.Future:
        """Send a request; its answer comes in the returned future (see _answer_to)."""
        self._cseq += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._cseq] = fut
        msg = wire.Message(method=method, uri=uri, headers=[("CSeq", str(self._cseq)),
                                                            *self._headers(extra or [])], body=body)
        self.writer.write(msg.encode())
        await self.writer.drain()
        return fut

    async def _answer_to(self, kind: str, fut: asyncio.Future) -> wire.Message:
        response = await fut
        self.result.responses.append((kind, response))
        return response

    async def answer(self, req: wire.Message, status: int = 200) -> None:
        headers = [("Session", self._session)] if self._session else []
        self.writer.write(wire.response(req, status, "OK", headers).encode())
        await self.writer.drain()

    def _rtp(self, data: bytes, channel: int | None = None) -> None:
        """Streams are told apart by the SSRC SETUP announced (UDP streams share one port pair);
        over TCP a stream whose SETUP named no SSRC is known by its channel."""
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        self.rtp_arrived.set()
        marker = bool(data[1] & 0x80)
        seq, ts, ssrc = struct.unpack_from(">HII", data, 2)
        offset = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= offset + 4:
            offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
        stream = self._by_ssrc.get(ssrc)
        if stream is None and channel is not None:
            stream = self._by_channel.get(channel)
            if stream is not None and stream.ssrc:  # its SSRC is known and differs
                stream = None
        if stream is None:
            self.result.unmatched[ssrc] += 1
            return
        if stream.first_seq is None:
            stream.first_seq, stream.first_payload_header = seq, data[offset:offset + 4]
        stream.packets += 1
        stream.bytes += len(data)
        for send_time, packet in stream.depacketizer.feed(data[offset:], ts, marker):
            stream.send_times.append(send_time)
            stream.asf_packets.append(asfpf.restore_padding(packet, stream.maxps) if stream.maxps else packet)

    def _rtcp(self, data: bytes) -> None:
        """Record sender reports (RFC 3550 6.4.1) of known streams; other RTCP is ignored."""
        pos = 0
        while pos + 8 <= len(data):
            kind, words = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
            ssrc = int.from_bytes(data[pos + 4:pos + 8], "big")
            if kind == 200 and pos + 28 <= len(data) and ssrc in self._by_ssrc:
                rtp_ts, count = struct.unpack_from(">II", data, pos + 16)
                self._by_ssrc[ssrc].sender_reports.append((rtp_ts, count))
            pos += 4 * (words + 1)

    # -- the WMP sequence ----------------------------------------------------------------------
    async def _play(self) -> None:
        describe = await self.request("DESCRIBE", "DESCRIBE", self.url, [
            ("Accept", "application/sdp"), ("Supported", SUPPORTED)])
        self.result.describe = describe
        if describe.status != 200:
            self.result.error = f"DESCRIBE {describe.status}"
            return
        self._server_supported = describe.header("Supported") or ""
        base = describe.header("Content-Base") or self.url
        entry = self._entry(describe.body, describe.header("X-Playlist-Gen-Id"), describe.header("Cache-Control"))
        await self._setup_and_play(entry, base, first=True)
        while True:
            if not await self._until_end_of_entry(entry):
                break
            announce = await self._next_server_request("ANNOUNCE")
            await self.answer(announce)
            self.result.announces.append(announce)
            old = entry
            entry = self._entry(announce.body, announce.header("X-Playlist-Gen-Id"),
                                announce.header("Cache-Control"))
            await self._setup_and_play(entry, self.url, first=False, deselect=list(old.streams.values()))
        await self._finish(entry)

    def _entry(self, body: bytes, gen: str | None, cache_control: str | None) -> EntryResult:
        entry = EntryResult(parse_sdp(body.decode("utf-8", "replace")), int(gen or 0), cache_control or "")
        self.result.entries.append(entry)
        return entry

    def _gen(self, entry: EntryResult) -> list[tuple[str, str]]:
        return [("X-Playlist-Gen-Id", str(entry.gen_id))] if entry.gen_id else []

    async def _setup_and_play(self, entry: EntryResult, base: str, first: bool,
                              deselect: list[StreamResult] = ()) -> None:
        """SelectStreams (4.4.5: the old entry's streams deselected, the new ones selected), then Play."""
        unanswered: list[tuple[str, str, asyncio.Future, tuple | None]] = []  # kind, URL, answer, selected

        async def select(kind: str, url: str, extra: list, selected: tuple | None) -> None:
            unanswered.append((kind, url, await self._send(kind, url, [*extra, *self._gen(entry)]), selected))
            if not (self.pipeline and self._session):  # in INIT the first SETUP goes alone
                await take_answers()

        async def take_answers() -> None:
            while unanswered:
                kind, url, fut, selected = unanswered.pop(0)
                response = await self._answer_to(kind, fut)
                if selected is not None:
                    if response.status != 200:
                        raise wire.WireError(f"SETUP {url} -> {response.status}")
                    self._selected(entry, response, url, *selected)

        for stream in deselect:
            await select("TEARDOWN", stream.url, [], None)
        control = entry.sdp.control or base
        for index, media in enumerate(entry.sdp.media_streams()):
            url = resolve(control, media.control)
            if self.transport == "tcp":
                transport = f"RTP/AVP/TCP;unicast;interleaved={2 * index}-{2 * index + 1};mode=PLAY"
            else:
                port = await self._udp_ports()
                transport = f"RTP/AVP/UDP;unicast;client_port={port}-{port + 1};mode=PLAY"
            await select("SETUP", url, [("Transport", transport), ("Supported", SUPPORTED)], (index, media))
        await take_answers()
        play_headers = [("Range", f"npt={self.npt:.3f}-"), ("Bandwidth", "2147483647"),
                        ("X-Accelerate-Streaming", "AccelDuration=18000;AccelBandwidth=1000000"),
                        ("Supported", SUPPORTED), *self._gen(entry)]
        if entry.gen_id:
            play_headers.append(("X-Playlist-Seek-Id", str(entry.gen_id)))
        if self.speed and "com.microsoft.wm.fastcache" in self._server_supported:
            play_headers.append(("Speed", f"{self.speed:.3f}"))
        entry.play = await self.request("PLAY", "PLAY", self.url, play_headers)
        if entry.play.status != 200:
            raise wire.WireError(f"PLAY -> {entry.play.status}")
        if first:
            await self.request("LogConnect", "SET_PARAMETER", self.url, [
                ("Content-Type", "application/x-wms-Logconnectstats;charset=UTF-8")],
                fixture("logconnect_ms_rtsp_4_5_1.xml"))

    def _selected(self, entry: EntryResult, response: wire.Message, url: str, index: int, media) -> None:
        self._session = (response.header("Session") or "").split(";")[0]
        stream = StreamResult(media.stream, url, _ssrc(response.header("Transport") or ""), entry.sdp.maxps)
        entry.streams[media.stream] = stream
        self._by_ssrc[stream.ssrc] = stream
        if self.transport == "tcp":
            self._by_channel[_interleaved(response.header("Transport") or "", 2 * index)] = stream

    async def _until_end_of_entry(self, entry: EntryResult) -> bool:
        """Wait for EndOfStream (or stop early). True when another playlist entry follows."""
        if self.stop_after_s is not None:
            try:
                eos = await asyncio.wait_for(self._next_server_request("SET_PARAMETER"), self.stop_after_s)
            except asyncio.TimeoutError:
                await self.request("PAUSE", "PAUSE", self.url)
                await self._logplay()
                return False
        else:
            eos = await self._next_server_request("SET_PARAMETER")
        entry.eos = eos
        await self.answer(eos)
        await self._logplay()
        return b"end-of-playlist-entry: true" in eos.body.lower()

    async def _next_server_request(self, method: str) -> wire.Message:
        while True:
            req = await self._server_requests.get()
            if req.method == method:
                return req
            await self.answer(req, 200)

    async def _logplay(self) -> None:
        await self.request("LogPlay", "SET_PARAMETER", self.url, [
            ("Content-Type", "application/x-wms-Logplaystats;charset=UTF-8")], self.logplay)

    async def _finish(self, entry: EntryResult) -> None:
        subscribed = "remote-log" in entry.cache_control.lower()
        if self.send_event and subscribed:
            body = build_remote_log(user_agent=f"{USER_AGENT_VERSION} guid/{self.guid}", player_guid=self.guid,
                                    url=self.url, rendering_log=fixture("rendering_log.xml").decode())
            await self.request("SendEvent", "SET_PARAMETER", self.url, [
                ("Content-Type", "application/x-wms-sendevent")], body)
        await self.request("TEARDOWN", "TEARDOWN", self.url, self._gen(entry))

    async def _udp_ports(self) -> int:
        if self._udp_port:
            return self._udp_port  # all non-rtx streams share one client_port pair (2.2.7.10.1)
        loop = asyncio.get_running_loop()
        for _ in range(50):
            rtp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._rtp), local_addr=("127.0.0.1", 0))
            port = rtp.get_extra_info("sockname")[1]
            if port % 2 == 0:
                try:
                    rtcp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._rtcp),
                                                                  local_addr=("127.0.0.1", port + 1))
                except OSError:
                    rtp.close()
                    continue
                self._udp += [rtp, rtcp]
                self._udp_port = port
                return port
            rtp.close()
        raise OSError("no free UDP port pair")


def _interleaved(transport: str, default: int) -> int:
    """The RTP channel the server chose (it may change the one asked for)."""
    for part in transport.split(";"):
        if part.strip().lower().startswith("interleaved="):
            return int(part.split("=", 1)[1].split("-")[0])
    return default


def _ssrc(transport: str) -> int:
    for part in transport.split(";"):
        if part.strip().lower().startswith("ssrc="):
            return int(part.split("=", 1)[1], 16)
    return 0


def play_blocking(url: str, **options) -> PlayResult:
    """Run a WMPlayer from synchronous code (e.g. a Django test) on a private event loop."""
    return asyncio.run(WMPlayer(url, **options).run())
