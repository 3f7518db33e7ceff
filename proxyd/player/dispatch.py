"""A player connection's request dispatch: sans-IO events -> the pipeline -> method handlers ->
answers written in order; refusals, redirects and protocol errors end the connection."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from proxyd.log import context, get_logger
from proxyd.metrics.counters import RTSP_RESPONSES, method_label
from proxyd.origin.client import OriginError
from proxyd.origin.stream_relay import StreamRelay
from proxyd.player.pipeline import RequestPipeline
from proxyd.player.reply import Reply
from proxyd.player.targets import TargetResolution
from proxyd.routing import RoutingError
from proxyd.rtsp.connection import RtspConnection
from proxyd.rtsp.errors import RemoteProtocolError, RtspError
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed, Headers, InterleavedFrame, Request, Response
from proxyd.serving.contracts import Player
from proxyd.wmext.negotiate import respond as wm_respond

log = get_logger("downstream")

PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
CSEQ_HINT = re.compile(rb"(?im)^cseq[ \t]*:[ \t]*(\d{1,9})[ \t]*\r?$")
# proxyd's own refusal of a request (an ACL: forward origin not allowed, player not authorised):
# [MS-RTSP] 3.2.7.6 deletes the session state and closes TCP; the status is still sent, so the
# player can tell why. A redirect (302/305, 3.2.5.4) ends the connection the same way.
REJECTED = 403

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class DispatchingConnection(Player, Protocol):
    """What request dispatch needs from the player connection (its IO side)."""

    conn: RtspConnection
    requests: RequestPipeline
    dispatch: dict[str, Handler]  # RTSP method -> handler
    channels: dict[int, StreamRelay]
    last_data: bytes  # the tail of the last bytes received (a CSeq for a protocol error's answer)
    overloaded: bool
    closing: bool
    close_when_idle: bool
    ending: str | None
    targets: TargetResolution

    def arm_request_timer(self) -> None: ...

    def end_after_answer(self, why: str) -> None: ...


class RequestDispatch:
    def __init__(self, connection: DispatchingConnection) -> None:
        self.connection = connection

    def drain_events(self) -> None:
        connection = self.connection
        while not connection.closing:
            try:
                event = connection.conn.next_event()
            except RemoteProtocolError as exc:
                match = CSEQ_HINT.search(connection.last_data)
                cseq = match.group(1).decode() if match else None
                self.reject(exc.status_hint, exc.reason, str(exc), cseq)
                return
            if event is NEED_DATA:
                return
            if isinstance(event, InterleavedFrame):
                stream = connection.channels.get(event.channel)
                if stream is not None:
                    stream.rtcp_from_player(event.payload)
            elif isinstance(event, Request):
                connection.arm_request_timer()
                requests = connection.requests
                if not requests.add(event):
                    log.warning("%s %s -> 503 Service Unavailable: over --max-pipelined-requests (%d "
                                "unanswered)", context(connection.peer, event.cseq), event.method[:32],
                                requests.limit)
                if requests.full:
                    connection.transport.pause_reading()  # resumed as answers go out
            elif isinstance(event, ConnectionClosed):
                if connection.requests.unanswered:
                    connection.close_when_idle = True  # e.g. ffmpeg sends TEARDOWN and closes at once
                else:
                    connection.close_connection("player closed")
                return
            # Responses are players' answers to our relayed server requests: nothing to do.

    def reject(self, status: int, reason: str, detail: str, cseq: str | None) -> None:
        connection = self.connection
        log.warning("%s %d %s: %s", context(connection.peer, cseq), status, reason, detail)
        headers = Headers([("CSeq", cseq)] if cseq else [])
        RTSP_RESPONSES.inc("other", str(status))
        connection.transport.write(connection.conn.send_response(Response(status, reason, headers)))
        connection.close_connection(f"protocol error {status}")

    # --- requests in, answers out (proxyd.player.pipeline) ------------------------------------
    def pipelined_session(self, request: Request) -> str | None:
        """The id of the session this request is a pipelinable SelectStream of, else None: a
        stream SETUP or TEARDOWN naming a session of this connection whose kind relays them
        pipelined (the aggregate TEARDOWN ends the session: never pipelined)."""
        if request.method not in ("SETUP", "TEARDOWN"):
            return None
        value = request.headers.get("Session")
        session = self.connection.sessions.get(value.split(";")[0].strip()) if value else None
        if session is None or not session.pipelines_select_streams:
            return None
        if request.method == "TEARDOWN" and session.addressed_stream(request) is None:
            return None
        return session.id

    def answer(self, request: Request, response: Response) -> bool:
        """Write one answer; False when the connection ends with it."""
        connection = self.connection
        if connection.closing:
            return False
        response = wm_respond(connection, request, response)  # Supported; remembers origin Cache-Control
        headers = Headers((("CSeq", str(request.cseq)), *response.headers.items()))
        RTSP_RESPONSES.inc(method_label(request.method), str(response.status))
        connection.transport.write(connection.conn.send_response(Response(response.status, response.reason,
                                                                          headers, response.body)))
        if connection.ending:
            connection.end_after_answer(connection.ending)
            return False
        if connection.close_when_idle and not connection.requests.unanswered:
            connection.close_connection("player closed")
            return False
        if not connection.requests.full:
            connection.transport.resume_reading()
        return True

    async def handle(self, request: Request) -> Response:
        connection = self.connection
        session_value = request.headers.get("Session")
        session_id = session_value.split(";")[0].strip() if session_value else None
        if request.headers.get("User-Agent"):
            connection.user_agent = request.headers.get("User-Agent")[:256]
        handler = connection.dispatch.get(request.method)
        extra: tuple[tuple[str, str], ...] = ()
        try:
            if connection.overloaded:
                raise Reply(503, "Service Unavailable", "too many connections")
            if handler is None:
                raise Reply(501, "Not Implemented", f"method {request.method[:32]!r} not implemented")
            if request.method != "OPTIONS":  # OPTIONS names no content: players discover methods first
                request = connection.targets.authenticate(request)
            response = await handler(request)
            if response.status >= 400:  # origin errors passed through, session state errors
                log.warning("%s %s -> %d %s", context(connection.peer, request.cseq, session_id),
                            request.method, response.status, response.reason)
            else:
                log.debug("%s %s -> %d", context(connection.peer, request.cseq, session_id), request.method,
                          response.status)
            return response
        except Reply as exc:
            status, reason, detail = exc.status, exc.reason, exc.detail
            extra = exc.headers
        except RoutingError as exc:
            status, reason, detail = exc.status, exc.reason, exc.detail
        except OriginError as exc:
            status, reason, detail = exc.status, exc.reason, exc.detail
        except RtspError as exc:
            status, reason, detail = exc.status_hint, exc.reason, str(exc)
        except OSError as exc:
            status, reason, detail = 503, "Service Unavailable", f"local resource error: {exc}"
        except Exception as exc:  # a bug of ours: answer 500, keep the connection and other players going
            log.error("%s %s -> 500 internal error: %r", context(connection.peer, request.cseq, session_id),
                      request.method, exc)
            log.debug("internal error detail", exc_info=True)
            return Response(500, "Internal Server Error", Headers())
        log.warning("%s %s -> %d %s: %s", context(connection.peer, request.cseq, session_id), request.method,
                    status, reason, detail)
        if status == REJECTED:
            connection.ending = f"request refused ({REJECTED})"
        headers = [("Public", PUBLIC)] if status == 501 else list(extra)
        if connection.overloaded:
            asyncio.get_running_loop().call_soon(connection.close_connection, "too many connections")
        return Response(status, reason, Headers(headers))
