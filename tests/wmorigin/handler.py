"""One player/proxy TCP connection to the test origin: [MS-RTSP] 3.2.5 request processing.

Requests are classified by method and Content-Type (2.2.7). Responses carry Supported except
GetContentInfo and SendEvent responses (3.2.5.2), Session with ;timeout=60, and
X-Playlist-Gen-Id whenever the id is non-zero.

The connection reads on while it handles a request (a reader task records each request when it
arrives), and handles and answers requests one by one in arrival order, so pipelined requests are
seen as such: a request's arrival time can precede the answer time of the one before it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.wmorigin import wire
from tests.wmorigin.sdp import build_sdp
from tests.wmorigin.streaming import (
    OriginSession,
    SetupSsrc,
    deliver,
    new_session_id,
    new_stream,
    open_udp_pair,
)

if TYPE_CHECKING:
    from tests.wmorigin.server import WMOrigin

log = logging.getLogger("wmorigin")
SERVER = "WMServer/9.0.0.3372"
MEDIA_CONTROLS = {"audio": 1, "video": 2, "rtx": 65536}


class OriginConnection:
    def __init__(self, origin: WMOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.peer = "%s:%d" % writer.get_extra_info("peername")[:2]
        self.sessions: dict[str, OriginSession] = {}
        self._cseq = 0
        self.closing = False
        self.arrived = asyncio.Event()  # set by every request read (see _hold_select_streams)

    # -- I/O -------------------------------------------------------------------------------
    async def run(self) -> None:
        received: asyncio.Queue[wire.Message | wire.WireError | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(received))
        try:
            while not self.closing:
                item = await received.get()
                if item is None:
                    break
                if isinstance(item, wire.WireError):
                    log.warning("origin: bad input from %s: %s", self.peer, item)
                    reason = {413: "Request Entity Too Large", 431: "Request Header Fields Too Large",
                              505: "RTSP Version Not Supported"}.get(item.status, "Bad Request")
                    await self.send(wire.Message(status=item.status, reason=reason, headers=[("CSeq", "0")]))
                    break
                response = await self.dispatch(item)
                if response is not None:
                    await self.send(response)
        except ConnectionError:
            pass
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            for session in self.sessions.values():
                session.close()
                self.origin.drop_session(session)
            self.writer.close()

    async def _read(self, received: asyncio.Queue) -> None:
        """Record each request as it arrives (clients' answers too) and queue it for handling."""
        try:
            while True:
                item = await wire.read_item(self.reader)
                if item is None:
                    break
                if isinstance(item, wire.Frame):
                    continue  # RTCP receiver reports: not used
                if item.method:
                    self.origin.record(self.peer, item)
                    self._count_select_stream(item)
                    self.arrived.set()
                    received.put_nowait(item)
                else:
                    self.origin.record_response(self.peer, item)
        except wire.WireError as exc:
            received.put_nowait(exc)
            return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        received.put_nowait(None)

    async def send(self, msg: wire.Message) -> None:
        if msg.status:
            self.origin.record_answer(self.peer, msg)
        self.writer.write(msg.encode())
        await self.writer.drain()

    async def write_frame(self, channel: int, payload: bytes) -> None:
        self.writer.write(wire.frame(channel, payload))
        await self.writer.drain()

    async def send_request(self, method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b""):
        self._cseq += 1
        msg = wire.Message(method=method, uri=uri, headers=[("CSeq", str(self._cseq)), *headers,
                                                            ("User-Agent", SERVER)], body=body)
        self.origin.record_sent(self.peer, msg)
        await self.send(msg)

    # -- dispatch (3.2.5.1) -------------------------------------------------------------------
    async def dispatch(self, req: wire.Message) -> wire.Message:
        path = urlsplit(req.uri).path
        entry, control = self.origin.lookup(path)
        kind = self.origin.classify(req)
        if kind == "unknown":
            return self.reply(req, 451, "Parameter Not Understood")
        if not self.origin.authorizes(kind, req):
            return self.reply(req, 401, "Unauthorized", headers=[("WWW-Authenticate", self.origin.auth.challenge())])
        if entry is None and req.method not in ("OPTIONS",):
            return self.reply(req, 404, "Not Found")
        session = None
        session_header = req.header("Session")
        if session_header and kind != "SendEvent":
            sid = session_header.split(";")[0].strip()
            session = self.origin.sessions.get(sid)
            if session is None or len(sid) > 20:
                return self.reply(req, 454, "Session Not Found")
        gen = req.header("X-Playlist-Gen-Id")
        if gen and gen.strip().isdigit() and int(gen) != 0:
            current = session.gen_id if session else (entry.items[0].gen_id if entry else 0)
            allowed = {current}
            if req.method in ("PLAY", "TEARDOWN") and session:  # may name the previous entry
                allowed.add(session.previous_gen_id)
            if int(gen) not in allowed:
                return self.reply(req, 412, "Precondition Failed", session)
        redirect = self.origin.redirects.get(path.rstrip("/")) if kind == "GetContentInfo" else None
        if redirect is not None:  # 3.1.5.4: a redirect's Location names another server or a proxy
            status, location = redirect
            reason = {301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy"}[status]
            return self.reply(req, status, reason, None, [("Location", location)], supported=False)
        handler = getattr(self, "on_" + kind.lower(), None)
        if handler is None:
            return self.reply(req, 405, "Method Not Allowed", session)
        return await handler(req, entry, control, session)

    def reply(self, req, status, reason, session=None, headers=(), body=b"", supported=True):
        out = [("Server", SERVER), *headers, *self.origin.reply_headers]
        if session is not None:
            out.append(("Session", f"{session.id};timeout=60"))
            if session.gen_id:
                out.append(("X-Playlist-Gen-Id", str(session.gen_id)))
        if supported:
            out.append(("Supported", self.origin.supported))
        return wire.response(req, status, reason, out, body)

    # -- handlers -------------------------------------------------------------------------------
    async def on_options(self, req, entry, control, session):
        return self.reply(req, 200, "OK", session, [(
            "Public", "DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER, OPTIONS")])

    async def on_describe(self, req, entry, control, session):
        """3.2.5.4: SDP of the first entry with the asfv1 header; Cache-Control (2.2.7.2)."""
        base = req.uri.split("?")[0]
        item = entry.items[0]
        sdp = build_sdp(item.asf, base, session_id=item.gen_id, version=item.version,
                        features=entry.features(0), rtx=self.origin.rtx)
        headers = [("Content-Type", "application/sdp"), ("Content-Base", base.rstrip("/") + "/"),
                   ("Cache-Control", entry.cache_control_value(0)), ("Last-Modified", entry.last_modified),
                   ("Etag", entry.etag), ("X-Playlist-Gen-Id", str(item.gen_id))]
        return self.reply(req, 200, "OK", None, headers, sdp.encode())

    async def on_getcontentinfo(self, req, entry, control, session):
        """3.2.5.3: Cache-Control and validators, empty body, no Supported."""
        headers = [("Cache-Control", entry.cache_control_value(0)), ("Last-Modified", entry.last_modified),
                   ("Etag", entry.etag)]
        return self.reply(req, 200, "OK", session, headers, supported=False)

    async def on_keepalive(self, req, entry, control, session):
        return self.reply(req, 200, "OK", session)

    async def on_setup(self, req, entry, control, session):
        """SelectStream via SETUP (2.2.7.10.1, 3.2.5.6.4): the URL must be a control URL."""
        if control not in MEDIA_CONTROLS:
            return self.reply(req, 400, "Bad Request", session)
        spec = _pick_transport(req.header("Transport") or "")
        if spec is None:
            return self.reply(req, 461, "Unsupported Transport", session)
        if session is None:
            session = OriginSession(new_session_id(), entry, _aggregate(req.uri, control), self,
                                    gen_id=entry.items[0].gen_id)
            self.sessions[session.id] = session
            self.origin.add_session(session)
        stream = new_stream(MEDIA_CONTROLS[control], req.uri)
        params = dict(p.split("=", 1) if "=" in p else (p, "") for p in spec.split(";")[1:])
        if "/TCP" in spec.split(";")[0].upper():
            low = params.get("interleaved", f"{2 * len(session.streams)}-").split("-")[0]
            stream.channel = int(low)
            reply_transport = f"RTP/AVP/TCP;unicast;interleaved={params.get('interleaved', low)}"
        else:
            if "client_port" not in params:
                return self.reply(req, 461, "Unsupported Transport", session)
            rtp_port = int(params["client_port"].split("-")[0])
            if session.udp is None:
                session.udp, session.udp_rtcp, session.udp_port = open_udp_pair()
            stream.address = (self.writer.get_extra_info("peername")[0], rtp_port)
            reply_transport = (f"RTP/AVP/UDP;unicast;client_port={params['client_port']};"
                               f"server_port={session.udp_port}-{session.udp_port + 1}")
        session.streams[stream.number] = stream
        named = {"sent": stream.ssrc, "none": None, "other": stream.ssrc ^ 0xFFFFFFFF}[self.origin.setup_ssrc]
        if named is not None:
            reply_transport += f";ssrc={named:08x}"
        reply_transport += ";mode=PLAY"
        self.origin.record_setup(SetupSsrc(req.uri, named, stream.ssrc))
        await self._hold_select_streams(session)
        return self.reply(req, 200, "OK", session, [("Transport", reply_transport)])

    async def on_play(self, req, entry, control, session):
        """3.2.5.8: Range npt (seek to the preceding video key frame), Speed with fastcache."""
        if session is None:
            return self.reply(req, 454, "Session Not Found")
        if session.sender is not None:
            session.sender.cancel()
        npt = _npt_start(req.header("Range"))
        if entry.broadcast:  # joins the live timeline at the latest key frame (3.2.4.3 gating)
            npt = self.origin.live_position_ms(entry) / 1000
        start = session.item.start_index(int(npt * 1000)) if npt is not None else session.position
        if start >= len(session.item.schedule):
            start = 0
        speed = req.header("Speed")
        session.speed = 1.0
        extra: list[tuple[str, str]] = []
        if speed and "fastcache" in self.origin.supported:
            try:
                session.speed = min(max(float(speed), 0.1), 100.0)
                extra.append(("Speed", speed))
            except ValueError:
                return self.reply(req, 400, "Bad Request", session)
        schedule = session.item.schedule
        base = schedule[start].send_time if schedule else 0
        infos = [f"url={s.url};seq={s.seq};rtptime={base}" for s in session.media_streams()]
        duration = session.item.asf.duration_ms / 1000
        extra += [("Range", f"npt={base / 1000:.3f}-{duration:.3f}"), ("RTP-Info", ",".join(infos))]
        session.state = "PLAYING"
        session.pause_allowed_in_ready = False
        session.select_batch = 0
        response = self.reply(req, 200, "OK", session, extra)
        await self.send(response)  # the response goes before the first RTP packet
        session.sender = asyncio.create_task(deliver(session, start, base, self.origin.media_delay_s))
        return None

    async def on_pause(self, req, entry, control, session):
        if session is None:
            return self.reply(req, 454, "Session Not Found")
        if session.state != "PLAYING" and not session.pause_allowed_in_ready:
            return self.reply(req, 455, "Method Not Valid in This State", session)
        if session.sender is not None:
            session.sender.cancel()
            session.sender = None
        session.state = "READY"
        return self.reply(req, 200, "OK", session)

    async def on_teardown(self, req, entry, control, session):
        """Stream URL: SelectStream deselect (2.2.7.10.2). Aggregate URL: end the session and
        close the TCP connection (3.2.5.17)."""
        if session is None:
            return self.reply(req, 454, "Session Not Found")
        if control in MEDIA_CONTROLS:
            session.streams.pop(MEDIA_CONTROLS[control], None)
            await self._hold_select_streams(session)
            return self.reply(req, 200, "OK", session)
        response = self.reply(req, 200, "OK", session)
        session.close()
        self.sessions.pop(session.id, None)
        self.origin.drop_session(session)
        self.closing = True
        return response

    async def on_logplay(self, req, entry, control, session):
        return self.reply(req, 200, "OK", session)  # 3.2.5.12: always 200, no body

    on_logconnect = on_logplay  # 3.2.5.9

    async def on_sendevent(self, req, entry, control, session):
        if self.origin.send_event_gate is not None:  # a test holds the answer (the request is recorded)
            await asyncio.to_thread(self.origin.send_event_gate.wait)
        return self.reply(req, 200, "OK", None, supported=False)  # 3.2.5.16

    async def on_streamswitch(self, req, entry, control, session):
        return self.reply(req, 200, "OK", session)

    # -- SelectStream batch hold (WMOrigin.select_stream_batch) --------------------------------
    def _count_select_stream(self, req: wire.Message) -> None:
        if req.method not in ("SETUP", "TEARDOWN") or not req.header("Session"):
            return
        session = self.sessions.get(req.header("Session").split(";")[0].strip())
        control = self.origin.lookup(urlsplit(req.uri).path)[1]
        if session is not None and session.select_batch and control in MEDIA_CONTROLS:
            session.selects_arrived += 1

    async def _hold_select_streams(self, session: OriginSession) -> None:
        """After an Announce: answer no SelectStream before the batch has arrived (or the hold
        timeout passed: a client that waits for each answer gets them late, never a deadlock)."""
        if not session.select_batch:
            return
        try:
            async with asyncio.timeout(self.origin.select_hold_timeout_s):
                while session.selects_arrived < session.select_batch:
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            log.info("origin: %s sent %d of %d SelectStreams before the hold timeout", self.peer,
                     session.selects_arrived, session.select_batch)

    # -- server-originated requests ------------------------------------------------------------
    async def end_of_entry(self, session: OriginSession) -> None:
        """3.2.4.1 EndOfStream, then for a playlist 3.2.4.2 Announce of the next entry."""
        more = session.item_index + 1 < len(session.entry.items)
        body = f"Session: {session.id}\r\nEOF: true\r\n"
        if more:
            body += "End-Of-Playlist-Entry: true\r\n"
            session.pause_allowed_in_ready = True
        infos = ", ".join(f"url={s.url};seq={s.seq}" for s in session.media_streams())
        headers = [("Content-Type", "application/x-wms-extension-cmd"),
                   ("X-Notice", '2101 "End-of-Stream Reached"'), ("RTP-Info", infos),
                   ("X-Playlist-Gen-Id", str(session.gen_id)), ("Session", session.id)]
        session.eos_sent += 1
        await self.send_request("SET_PARAMETER", session.url, headers, body.encode())
        if not more:
            return
        session.item_index += 1
        session.previous_gen_id, session.gen_id = session.gen_id, session.item.gen_id
        session.select_batch, session.selects_arrived = self.origin.select_stream_batch, 0
        session.position = 0
        entry = session.entry
        sdp = build_sdp(session.item.asf, session.url, session_id=session.gen_id,
                        version=session.item.version, features=entry.features(session.item_index),
                        rtx=self.origin.rtx)
        await self.send_request("ANNOUNCE", session.url, [
            ("Content-Type", "application/sdp"), ("Session", session.id),
            ("X-Playlist-Gen-Id", str(session.gen_id)),
            ("Cache-Control", entry.cache_control_value(session.item_index)),
            ("Supported", self.origin.supported)], sdp.encode())


def _aggregate(uri: str, control: str) -> str:
    base = uri.split("?")[0].rstrip("/")
    return base[: -len(control) - 1] if control and base.endswith("/" + control) else base


def _pick_transport(value: str) -> str | None:
    for spec in value.split(","):
        spec = spec.strip().replace(" ", "")
        proto = spec.split(";")[0].upper()
        if proto in ("RTP/AVP", "RTP/AVP/UDP", "RTP/AVP/TCP"):
            return spec
    return None


def _npt_start(value: str | None) -> float | None:
    if not value or not value.strip().lower().startswith("npt="):
        return None
    start = value.strip()[4:].split("-")[0].strip()
    if start in ("", "now"):
        return 0.0
    try:
        return max(float(start), 0.0)
    except ValueError:
        return None
