"""Logical MS-RTSP request kinds ([MS-RTSP] 2.2.7) from method, Content-Type, body and URL kind.

GET_PARAMETER and SET_PARAMETER are multiplexed by Content-Type (2.2.6.3). Media types are matched
case-insensitively with parameters such as ``;charset=UTF-8`` ignored: the spec itself writes both
``Logplaystats`` and ``logplaystats``. A TEARDOWN on a stream control URL is a SelectStream deselect
(2.2.7.10.2); on the aggregate URL it is a Teardown (2.2.7.13).
"""

from __future__ import annotations

from enum import Enum


class RequestKind(str, Enum):
    DESCRIBE = "describe"
    ANNOUNCE = "announce"
    OPTIONS = "options"
    PLAY = "play"
    PAUSE = "pause"
    TEARDOWN = "teardown"
    SELECT_STREAM = "select-stream"  # SETUP, stream-URL TEARDOWN, SET_PARAMETER streamswitch
    GET_CONTENT_INFO = "get-content-info"
    KEEP_ALIVE = "keep-alive"
    TCP_PACKET_PAIR = "tcp-packet-pair"
    UDP_PACKET_PAIR = "udp-packet-pair"
    LOG_CONNECT = "log-connect"
    LOG_PLAY = "log-play"
    SEND_EVENT = "send-event"
    END_OF_STREAM = "end-of-stream"  # server -> client
    PLAIN_PARAMETER = "plain-parameter"  # GET/SET_PARAMETER with any other content
    UNKNOWN = "unknown"


# Exact spellings to emit (2.2.6.3); lookups use the lower-case form.
CT_SDP = "application/sdp"
CT_PACKET_PAIR = "application/x-rtsp-packetpair"
CT_UDP_PACKET_PAIR = "application/x-rtsp-udp-packetpair"
CT_EXTENSION_CMD = "application/x-wms-extension-cmd"
CT_GET_CONTENT_INFO = "application/x-wms-getcontentinfo"
CT_LOG_CONNECT = "application/x-wms-Logconnectstats"
CT_LOG_PLAY = "application/x-wms-Logplaystats"
CT_SEND_EVENT = "application/x-wms-sendevent"
CT_STREAM_SWITCH = "application/x-wms-streamswitch"

_GET_KINDS = {
    CT_GET_CONTENT_INFO.lower(): RequestKind.GET_CONTENT_INFO,
    CT_PACKET_PAIR.lower(): RequestKind.TCP_PACKET_PAIR,
}
_SET_KINDS = {
    CT_LOG_PLAY.lower(): RequestKind.LOG_PLAY,
    CT_LOG_CONNECT.lower(): RequestKind.LOG_CONNECT,
    CT_SEND_EVENT.lower(): RequestKind.SEND_EVENT,
    CT_STREAM_SWITCH.lower(): RequestKind.SELECT_STREAM,
    CT_UDP_PACKET_PAIR.lower(): RequestKind.UDP_PACKET_PAIR,
    CT_EXTENSION_CMD.lower(): RequestKind.END_OF_STREAM,
}
_BY_METHOD = {
    "DESCRIBE": RequestKind.DESCRIBE,
    "ANNOUNCE": RequestKind.ANNOUNCE,
    "OPTIONS": RequestKind.OPTIONS,
    "PLAY": RequestKind.PLAY,
    "PAUSE": RequestKind.PAUSE,
    "SETUP": RequestKind.SELECT_STREAM,
}


def media_type(content_type: str | None) -> str:
    """``application/x-wms-Logplaystats;charset=UTF-8`` -> ``application/x-wms-logplaystats``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def classify_request(
    method: str, content_type: str | None, has_body: bool, *, stream_url: bool = False
) -> RequestKind:
    """Map one request to its logical kind (2.2.7). ``stream_url``: the URI is a stream control URL.

    KeepAlive is a GET_PARAMETER without Content-Type and body (2.2.7.5); we also accept an empty
    SET_PARAMETER as one, since RFC 2326 clients use either to refresh a session.
    """
    method = method.upper()
    mtype = media_type(content_type)
    if method in ("GET_PARAMETER", "SET_PARAMETER"):
        if not mtype and not has_body:
            return RequestKind.KEEP_ALIVE
        table = _GET_KINDS if method == "GET_PARAMETER" else _SET_KINDS
        return table.get(mtype, RequestKind.PLAIN_PARAMETER)
    if method == "TEARDOWN":
        return RequestKind.SELECT_STREAM if stream_url else RequestKind.TEARDOWN
    return _BY_METHOD.get(method, RequestKind.UNKNOWN)


def response_carries_supported(kind: RequestKind) -> bool:
    """Servers send Supported on every response except GetContentInfo and SendEvent (3.2.5.2)."""
    return kind not in (RequestKind.GET_CONTENT_INFO, RequestKind.SEND_EVENT)


def response_has_no_body(kind: RequestKind) -> bool:
    """LogPlay, LogConnect, SendEvent, SelectStream, Teardown and GCI responses carry no body (2.2.7)."""
    return kind in (
        RequestKind.LOG_PLAY,
        RequestKind.LOG_CONNECT,
        RequestKind.SEND_EVENT,
        RequestKind.SELECT_STREAM,
        RequestKind.TEARDOWN,
        RequestKind.GET_CONTENT_INFO,
        RequestKind.KEEP_ALIVE,
    )
