"""A Windows Media RTSP test origin ([MS-RTSP] server role, 3.2; sequences of 4.4 and 4.6).

Runs an asyncio server on 127.0.0.1, port 0, in a background thread with its own event loop.
The test API (called from the test thread) configures content and reads what clients sent::

    origin = WMOrigin().start()
    origin.set_entry("/clip.wmv", seed="a")                    # on-demand file
    origin.set_entry("/pl.wsx", seed="b", playlist=("c",))     # two-entry server-side playlist
    origin.set_entry("/live", seed="d", broadcast=True)        # broadcast (splittable)
    origin.set_entry("/bpl", seed="e", broadcast=True, playlist=("f",))  # broadcast playlist
    origin.end_entry_now("/bpl")  # its encoder moves on: EndOfStream, then the next entry's Announce
    origin.url("/clip.wmv") -> "rtsp://127.0.0.1:<port>/clip.wmv"
    origin.change_content("/clip.wmv")   # new version: new ASF bytes, SDP, Etag, Last-Modified
    origin.take_down(); origin.bring_up()  # listener closed (connection refused) / reopened
    origin.setup_ssrc = "none"    # SETUP answers name no ssrc ("other": one its RTP does not carry)
    origin.media_delay_s = 0.5    # first RTP packet half a second after a PLAY answer
    origin.setup_ssrcs            # per SETUP answered: url, ssrc named (or None), ssrc sent
    origin.redirects["/clip.wmv"] = (301, "rtsp://elsewhere/clip.wmv")  # GetContentInfo answered so
    origin.require_auth("u", "p", scheme="Digest")  # 401 + WWW-Authenticate without credentials
    origin.select_stream_batch = 4  # after an Announce, SelectStream answers wait until 4 arrived
    origin.requests, origin.send_events, origin.logs, origin.count("DESCRIBE", "/clip.wmv")
    origin.answers                # every answer the origin sent: peer, CSeq, status, time
    origin.wait_for(lambda: origin.count("PLAY") >= 1, timeout=5)
    origin.stop()

Every request is recorded (method, kind, url, headers, body, time, peer) when it arrives, before
it is handled, SendEvent bodies raw and parsed ([MS-WMSP] 2.2.5), so tests can check what a proxy
forwarded; every answer with the time it was sent, so tests can tell whether a client pipelined
(request N+1 arrived before the answer to request N).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.wmorigin import wire
from tests.wmorigin.auth import RequiredAuth
from tests.wmorigin.content import Entry
from tests.wmorigin.events import RemoteEvent, parse_remote_event
from tests.wmorigin.handler import OriginConnection
from tests.wmorigin.streaming import OriginSession, SetupSsrc

DEFAULT_SUPPORTED = ("com.microsoft.wm.sswitch, com.microsoft.wm.eosmsg, com.microsoft.wm.fastcache, "
                     "com.microsoft.wm.predstrm")
_KINDS = {  # (method, Content-Type) -> logical request (2.2.7, 2.2.6.3)
    ("GET_PARAMETER", "application/x-wms-getcontentinfo"): "GetContentInfo",
    ("SET_PARAMETER", "application/x-wms-logplaystats"): "LogPlay",
    ("SET_PARAMETER", "application/x-wms-logconnectstats"): "LogConnect",
    ("SET_PARAMETER", "application/x-wms-sendevent"): "SendEvent",
    ("SET_PARAMETER", "application/x-wms-streamswitch"): "StreamSwitch",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    kind: str
    url: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    time: float  # time.monotonic()
    peer: str
    authorized: bool = True  # False: answered 401 (the origin requires credentials it did not carry)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def cseq(self) -> int | None:
        value = self.header("CSeq")
        return int(value) if value and value.strip().isdigit() else None


@dataclass(frozen=True)
class RecordedAnswer:
    peer: str
    cseq: int | None
    status: int
    time: float  # time.monotonic() when the origin wrote it


@dataclass(frozen=True)
class RecordedEvent:
    url: str
    raw: bytes
    parsed: RemoteEvent | None
    error: str | None
    headers: tuple[tuple[str, str], ...]
    authorized: bool = True


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    setups: list[SetupSsrc] = field(default_factory=list)
    sent: list[wire.Message] = field(default_factory=list)
    responses: list[wire.Message] = field(default_factory=list)
    answers: list[RecordedAnswer] = field(default_factory=list)


class WMOrigin:
    def __init__(self, *, supported: str = DEFAULT_SUPPORTED, rtx: bool = True, setup_ssrc: str = "sent",
                 media_delay_s: float = 0.0) -> None:
        """`setup_ssrc`: what a SETUP answer's Transport names ([MS-RTSP] 2.2.6.11): "sent" the SSRC
        the stream's RTP carries (as WMS), "none" no ssrc parameter, "other" an SSRC its RTP does
        not carry. `media_delay_s`: time from a PLAY answer to its first RTP packet. Both are
        attributes too, read at each SETUP / PLAY."""
        if setup_ssrc not in ("sent", "none", "other"):
            raise ValueError(f"setup_ssrc {setup_ssrc!r}")
        self.supported = supported
        self.rtx = rtx
        self.setup_ssrc = setup_ssrc
        self.media_delay_s = media_delay_s
        self.auth: RequiredAuth | None = None
        self.reply_headers: list[tuple[str, str]] = []  # added to every answer
        self.send_event_gate: threading.Event | None = None  # when set: SendEvents (recorded) wait for it
        # > 0: after an Announce, the session's SelectStream answers wait until this many arrived
        # (at most select_hold_timeout_s), so a client's pipelining shows in the recorded times
        self.select_stream_batch = 0
        self.select_hold_timeout_s = 3.0
        self.port = 0
        self.entries: dict[str, Entry] = {}
        self.redirects: dict[str, tuple[int, str]] = {}  # path -> (301/302/305, Location) for GetContentInfo
        self.sessions: dict[str, OriginSession] = {}
        self._state = _State()
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[OriginConnection, asyncio.Task] = {}
        self._live_epoch = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> WMOrigin:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="wmorigin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test origin did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def take_down(self) -> None:
        """Simulate an unreachable origin: stop listening and drop every connection."""
        self._call(self._close_all())

    def bring_up(self) -> None:
        self._call(self._listen())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_all(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._connections.values())
        for conn in list(self._connections):
            conn.writer.transport.abort()  # the reader sees EOF and the handler ends cleanly
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()  # after the aborts: it waits for every open connection to end

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = OriginConnection(self, reader, writer)
        self._connections[conn] = asyncio.current_task()
        try:
            await conn.run()
        finally:
            self._connections.pop(conn, None)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- content -----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}{path}"

    def set_entry(self, path: str, seed: object = None, *, version: int = 1, cache_control: str | None = None,
                  broadcast: bool = False, playlist: tuple = (), duration_ms: int | None = None,
                  rtp_payload_limit: int = 1200, max_age: int = 86399) -> Entry:
        """Serve `path`. `cache_control` replaces the default header value entirely; `max_age`
        only changes the default's max-age. Replaces any previous entry at `path`."""
        if duration_ms is None:
            duration_ms = 20_000 if broadcast else 3000
        entry = Entry(path, path if seed is None else seed, version, cache_control, broadcast, tuple(playlist),
                      duration_ms, rtp_payload_limit, max_age)
        self.entries[path] = entry  # one assignment: atomic for the origin thread
        return entry

    def change_content(self, path: str) -> Entry:
        old = self.entries[path]
        return self.set_entry(path, old.seed, version=old.version + 1, cache_control=old.cache_control,
                              broadcast=old.broadcast, playlist=old.playlist, duration_ms=old.duration_ms,
                              rtp_payload_limit=old.rtp_payload_limit, max_age=old.max_age)

    def require_auth(self, username: str, password: str, *, scheme: str = "Basic", kinds: tuple = ()) -> None:
        """Answer 401 with a `scheme` challenge to requests of `kinds` (all when empty) that do not
        carry these credentials (tests.wmorigin.auth)."""
        self.auth = RequiredAuth(username, password, scheme, tuple(kinds))

    def set_cache_control(self, path: str, value: str | None) -> None:
        """Change only the Cache-Control of `path` (None: back to the default); content unchanged."""
        self.entries[path].cache_control = value

    def end_entry_now(self, path: str) -> int:
        """End the current item of every playing session of `path` at once, as a broadcast whose
        encoder stops: EndOfStream, then the next entry's Announce when one follows (3.2.4.1-2).
        Returns how many sessions it ended."""
        return self._call(self._end_entries(path))

    async def _end_entries(self, path: str) -> int:
        playing = [s for s in self.sessions.values() if s.entry.path == path and s.sender is not None]
        for session in playing:
            session.sender.cancel()
            session.sender, session.state = None, "READY"
            await session.connection.end_of_entry(session)
        return len(playing)

    def lookup(self, path: str) -> tuple[Entry | None, str]:
        """Entry for an aggregate or stream URL path, and the stream control name (or "")."""
        path = path.rstrip("/")
        if path in self.entries:
            return self.entries[path], ""
        parent, _, control = path.rpartition("/")
        return self.entries.get(parent), control

    def live_position_ms(self, entry: Entry) -> int:
        return int((time.monotonic() - self._live_epoch) * 1000) % entry.duration_ms

    def authorizes(self, kind: str, req: wire.Message) -> bool:
        auth = self.auth
        return auth is None or not auth.applies(kind) or auth.authorized(req.method, req.header("Authorization"))

    @staticmethod
    def classify(req: wire.Message) -> str:
        if req.method in ("DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "OPTIONS"):
            return req.method
        if req.method not in ("GET_PARAMETER", "SET_PARAMETER"):
            return "ANNOUNCE" if req.method == "ANNOUNCE" else "unknown"
        if not req.content_type:
            return "KeepAlive" if not req.body else "unknown"
        return _KINDS.get((req.method, req.content_type), "unknown")

    # -- recording (called on the origin thread) ------------------------------------------------
    def record(self, peer: str, req: wire.Message) -> None:
        path = urlsplit(req.uri).path
        kind = self.classify(req)
        rec = RecordedRequest(req.method, kind, req.uri, path, tuple(req.headers), req.body,
                              time.monotonic(), peer, self.authorizes(kind, req))
        with self._cond:
            self._state.requests.append(rec)
            self._cond.notify_all()

    def record_sent(self, peer: str, msg: wire.Message) -> None:
        with self._cond:
            self._state.sent.append(msg)
            self._cond.notify_all()

    def record_response(self, peer: str, msg: wire.Message) -> None:
        with self._cond:
            self._state.responses.append(msg)
            self._cond.notify_all()

    def record_answer(self, peer: str, msg: wire.Message) -> None:
        with self._cond:
            self._state.answers.append(RecordedAnswer(peer, msg.cseq, msg.status, time.monotonic()))
            self._cond.notify_all()

    def record_setup(self, record: SetupSsrc) -> None:
        with self._cond:
            self._state.setups.append(record)
            self._cond.notify_all()

    def add_session(self, session: OriginSession) -> None:
        with self._cond:
            self.sessions[session.id] = session
            self._cond.notify_all()

    def drop_session(self, session: OriginSession) -> None:
        with self._cond:
            self.sessions.pop(session.id, None)
            self._cond.notify_all()

    # -- queries (test thread) -------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._state.requests)

    @property
    def setup_ssrcs(self) -> list[SetupSsrc]:
        with self._cond:
            return list(self._state.setups)

    @property
    def sent_requests(self) -> list[wire.Message]:
        """Requests the origin sent to clients (EndOfStream, Announce)."""
        with self._cond:
            return list(self._state.sent)

    @property
    def client_responses(self) -> list[wire.Message]:
        with self._cond:
            return list(self._state.responses)

    @property
    def answers(self) -> list[RecordedAnswer]:
        with self._cond:
            return list(self._state.answers)

    def answer_to(self, request: RecordedRequest) -> RecordedAnswer | None:
        """The origin's answer to a recorded request (same connection and CSeq)."""
        return next((a for a in self.answers if (a.peer, a.cseq) == (request.peer, request.cseq)), None)

    def entry_change_select_streams(self) -> tuple[list[RecordedRequest], RecordedRequest]:
        """Of a two-entry playlist played once: the SelectStreams (SETUP, TEARDOWN) between the two
        PLAYs, and the second PLAY (4.4.5)."""
        requests = self.requests
        first, second = (i for i, r in enumerate(requests) if r.kind == "PLAY")
        return [r for r in requests[first:second] if r.kind in ("TEARDOWN", "SETUP")], requests[second]

    @property
    def send_events(self) -> list[RecordedEvent]:
        out = []
        for req in self.requests:
            if req.kind == "SendEvent":
                parsed, error = parse_remote_event(req.body)
                out.append(RecordedEvent(req.url, req.body, parsed, error, req.headers, req.authorized))
        return out

    @property
    def logs(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind in ("LogPlay", "LogConnect")]

    def count(self, kind: str, path: str | None = None) -> int:
        """Requests of one kind (DESCRIBE, SETUP, PLAY, GetContentInfo, LogPlay, ...) for an
        entry path, its stream URLs included."""
        return self.counts(path)[kind]

    def counts(self, path: str | None = None) -> Counter:
        return Counter(r.kind for r in self.requests if path is None or _under(r.path, path))

    def client_sessions(self) -> list[dict]:
        with self._cond:
            return [s.snapshot() for s in self.sessions.values()]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until predicate() is true (re-checked on every recorded message)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.2))
        return True

    def __enter__(self) -> WMOrigin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _under(path: str, entry_path: str) -> bool:
    path, entry_path = path.rstrip("/"), entry_path.rstrip("/")
    return path == entry_path or path.startswith(entry_path + "/")
