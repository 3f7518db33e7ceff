"""proxyd's own LogPlay toward a Windows Media origin ([MS-RTSP] 3.1.4.7, 2.2.7.7; [MS-WMLOG] 2.4).

When the proxy's client role stops a PLAYING origin session (a relayed player paused, tore down
while playing, or lost its connection; a split's origin session ending) it sends Pause, then a
LogPlay of its own session. proxyd
never sends remote-log of its own for that session (the players' remote-logs are forwarded as
theirs), so the log is a legacy one: a 44-field summary (a streaming log MUST carry 47, [MS-WMLOG]
2.6.1, and names no codecs, which proxyd does not know either). The proxy is the client; its
figures are what it received from the origin.
"""

from __future__ import annotations

import platform
import time

from proxyd.log import get_logger
from proxyd.origin.client import OriginClient, OriginError
from proxyd.origin.wm_identity import PRODUCT, PROXY_GUID, PROXY_HOST, proxy_user_agent
from proxyd.rtsp.events import Headers
from proxyd.wm.wmlog_fields import LOG_DATA44
from proxyd.wm.wmlog_forward import serialize_xml_log

log = get_logger("session")
CT_LOGPLAY = "application/x-wms-Logplaystats"
WM_FEATURE_PREFIX = "com.microsoft.wm."


def is_wm_origin(supported: str | None) -> bool:
    """An origin that lists a com.microsoft.wm.* feature takes LogPlay; others are never sent one."""
    return WM_FEATURE_PREFIX in (supported or "").lower()


def own_logplay(*, url: str, origin_session: str, local_ip: str, start_npt: float, played_s: float,
                counters: dict, tcp: bool) -> tuple[Headers, bytes]:
    """Headers and legacy xml-log body of the LogPlay for one play period of an origin session."""
    now = time.gmtime()
    seconds = max(0, round(played_s))
    fields = {
        "c-ip": local_ip or "-", "date": time.strftime("%Y-%m-%d", now), "time": time.strftime("%H:%M:%S", now),
        "c-dns": PROXY_HOST, "cs-uri-stem": url, "c-starttime": str(max(0, round(start_npt))),
        "x-duration": str(seconds), "c-rate": "1", "c-status": "200", "c-playerid": "{%s}" % str(PROXY_GUID).upper(),
        "c-playerversion": PRODUCT.split("/", 1)[1], "c-playerlanguage": "-", "cs-User-Agent": proxy_user_agent(),
        "c-hostexe": "proxyd", "c-os": platform.system() or "-", "c-osversion": platform.release() or "-",
        "avgbandwidth": str(8 * counters["bytes_in"] // seconds) if seconds else "0",
        "protocol": "RTSPT" if tcp else "RTSPU", "transport": "TCP" if tcp else "UDP",
        "c-bytes": str(counters["bytes_in"]), "c-pkts-received": str(counters["packets_in"]),
        "c-pkts-lost-net": str(counters["packets_lost"]), "cs-url": url,
    }
    body = serialize_xml_log(fields, layout=LOG_DATA44).encode("utf-8")
    headers = Headers([("Content-Type", f"{CT_LOGPLAY};charset=UTF-8"), ("Session", origin_session)])
    return headers, body


async def send_own_logplay(origin: OriginClient, url: str, origin_session: str, *, start_npt: float,
                           played_s: float, counters: dict, tcp: bool, log_ctx: str) -> None:
    """Send the LogPlay of one play period; a failure is logged and changes nothing else."""
    sockname = origin.transport.get_extra_info("sockname") if origin.transport else None
    headers, body = own_logplay(url=url, origin_session=origin_session, local_ip=sockname[0] if sockname else "",
                                start_npt=start_npt, played_s=played_s, counters=counters, tcp=tcp)
    try:
        resp = await origin.request("SET_PARAMETER", url, headers, body)
    except OriginError as exc:
        log.info("%s LogPlay to the origin failed: %s", log_ctx, exc.detail)
        return
    if resp.status >= 400:
        log.info("%s origin refused our LogPlay: %d", log_ctx, resp.status)
