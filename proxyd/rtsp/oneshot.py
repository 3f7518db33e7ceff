"""Blocking one-request RTSP client over a plain socket (Celery tasks, tests).

rtsp_request("rtsp://origin/clip.wmv", "GET_PARAMETER", headers, body) -> Response
rtsp_request(url, "DESCRIBE", username="u", password="p") -> Response

With a username or password, a 401 is answered on the same connection by sending the request again
with Authorization (Basic or Digest, proxyd.rtsp.auth; a stale Digest nonce once more); the last
response is returned, a 401 included when the credentials are refused. Without them the caller's
headers go as given.

Requests the server sends meanwhile (ANNOUNCE, EndOfStream SET_PARAMETER), interleaved frames and
responses to other CSeqs are skipped; only the response matching our CSeq is returned.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable

from proxyd.net.tls import origin_context

from .auth import ClientAuth, Credentials
from .connection import ParserLimits, Role, RtspConnection
from .errors import HeaderParseError, LocalProtocolError, RemoteProtocolError
from .events import NEED_DATA, ConnectionClosed, Headers, Request, Response
from .uri import split_rtsp_url

RECV_CHUNK = 65536


class RtspRequestError(Exception):
    """Base for everything rtsp_request raises."""


class RtspConnectError(RtspRequestError):
    """The TCP connection could not be made (refused, unreachable, DNS)."""


class RtspTimeoutError(RtspRequestError):
    """No complete response before the deadline."""


class RtspResponseError(RtspRequestError):
    """The server closed early or sent something that is not valid RTSP."""


def rtsp_request(
    url: str,
    method: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    timeout: float = 5.0,
    *,
    limits: ParserLimits | None = None,
    username: str = "",
    password: str = "",
    tls_verify: bool = True,
) -> Response:
    """Send one request to `url` (also the request-URI) and return its response.

    `timeout` bounds the whole exchange: connect, send, receive and any authentication retry.
    """
    try:
        target = split_rtsp_url(url)
    except HeaderParseError as exc:
        raise RtspConnectError(str(exc)) from exc
    conn = RtspConnection(Role.CLIENT, limits)
    request_headers = Headers(headers)
    if "CSeq" not in request_headers:
        request_headers = Headers((("CSeq", "1"), *request_headers.items()))
    attempt = None
    if username or password:
        attempt = ClientAuth(Credentials(username, password)).attempt(method, url, body)
        request_headers = request_headers.remove("Authorization")
        attempt.header()  # nothing before the first challenge

    def encode(headers: Headers) -> bytes:
        try:
            return conn.send_request(Request(method, url, headers, body))
        except LocalProtocolError as exc:
            raise RtspRequestError(f"invalid request: {exc}") from exc

    wire = encode(request_headers)
    cseq = int(request_headers.get("CSeq", "1"))
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
        if target.scheme == "rtsps":  # TLS 1.2+, the system trust store, unless tls_verify is off
            sock = origin_context(verify=tls_verify).wrap_socket(sock, server_hostname=target.host)
    except TimeoutError as exc:
        raise RtspTimeoutError(f"connect to {target.host}:{target.port} timed out") from exc
    except OSError as exc:  # ssl.SSLError included: a refused certificate
        raise RtspConnectError(f"connect to {target.host}:{target.port} failed: {exc}") from exc
    with sock:
        try:
            while True:
                _set_remaining(sock, deadline)
                sock.sendall(wire)
                response = _read_response(sock, conn, cseq, deadline)
                if attempt is None or not attempt.retry(response.status,
                                                        response.headers.get_all("WWW-Authenticate")):
                    return response
                cseq += 1
                wire = encode(request_headers.set("CSeq", str(cseq)).set("Authorization", attempt.header()))
        except TimeoutError as exc:
            raise RtspTimeoutError(f"no response from {target.host}:{target.port} within {timeout}s") from exc
        except OSError as exc:
            raise RtspResponseError(f"connection to {target.host}:{target.port} failed: {exc}") from exc


def _set_remaining(sock: socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    sock.settimeout(remaining)


def _read_response(sock: socket.socket, conn: RtspConnection, cseq: int, deadline: float) -> Response:
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            raise RtspResponseError(f"invalid RTSP from server: {exc}") from exc
        if event is NEED_DATA:
            _set_remaining(sock, deadline)
            conn.receive_data(sock.recv(RECV_CHUNK))
        elif isinstance(event, ConnectionClosed):
            raise RtspResponseError("server closed the connection before responding")
        elif isinstance(event, Response) and event.cseq == cseq and event.status >= 200:
            return event
        # anything else (server request, interleaved frame, 1xx, stray response): skip it
