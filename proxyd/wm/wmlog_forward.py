"""Forwarding play logs upstream: what to forward, legacy -> rendering conversion, proxy field rewrites,
and strict serialization back to the XML form the origin expects ([MS-WMLOG] 2.4, 2.7).

Forwarding rules follow [MS-WMSP] 3.2.5.11 (the closest normative text; MS-RTSP has none): a proxy
SHOULD forward rendering logs, SHOULD NOT forward streaming logs, and SHOULD turn a legacy log into a
rendering log and forward that. Field rewrites are the MUSTs of MS-WMLOG 2.1.8, 2.1.34, 2.1.41-43,
2.1.45 and 2.1.47.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from proxyd.wm.wmlog import ParsedLog
from proxyd.wm.wmlog_fields import LOG_DATA52, RENDERING_FIXED, XML_ELEMENTS

ForwardAction = Literal["forward", "convert", "keep"]
VIA_PREFIX = "_via_HTTP/1.0_"  # 2.1.34 ABNF


def forwarding_action(log_type: str) -> ForwardAction:
    """What to do with a received log when the origin subscribed to remote-log (WMSP 3.2.5.11)."""
    if log_type == "rendering":
        return "forward"
    if log_type == "legacy":
        return "convert"
    return "keep"  # streaming, connect-time, unknown: recorded locally only


def to_rendering_fields(log: ParsedLog) -> dict[str, str]:
    """The 52 rendering-log fields (2.7) built from a legacy or rendering log.

    Playback fields are copied; reception statistics become the fixed rendering values (2.7.1:
    ``protocol`` is "Cache", packet counters "-", ``c-quality`` 100). ``s-proxied`` keeps the
    sender's value (clients write 0).
    """
    fields = {name: log.fields.get(name, "-") for name in LOG_DATA52}
    if log.log_type != "rendering":
        fields.update(RENDERING_FIXED)
    if fields["s-proxied"] not in ("0", "1"):
        fields["s-proxied"] = "0"
    return fields


@dataclass(frozen=True)
class ProxyIdentity:
    """Values a forwarding proxy writes into every log it passes on."""

    product: str  # e.g. "WMCacheProxy/0.1.0.0"
    ip: str | None  # the address used to reach upstream (s-ip, rendering logs)
    dns: str | None  # our host name (s-dns), None: "-"
    cpu_util: int | None  # percent averaged over CPUs (s-cpu-util), None: "-"
    total_clients: int | None  # players connected to the proxy (s-totalclients), None: "-"


def apply_proxy_rewrites(
    fields: Mapping[str, str], *, player_ip: str, proxy: ProxyIdentity
) -> dict[str, str]:
    """The MS-WMLOG rewrites a forwarding proxy MUST apply. Returns a new dict."""
    out = dict(fields)
    out["c-ip"] = player_ip or "-"  # 2.1.8: the client's address as the proxy sees it
    out["cs-User-Agent"] = VIA_PREFIX + proxy.product  # 2.1.34: MUST begin "_via_", drop the original
    out["s-proxied"] = "1"  # 2.1.45
    out["s-ip"] = proxy.ip or "-"  # 2.1.43 (rendering logs)
    out["s-dns"] = proxy.dns or "-"  # 2.1.42
    out["s-cpu-util"] = "-" if proxy.cpu_util is None else str(min(100, max(0, proxy.cpu_util)))
    out["s-totalclients"] = "-" if proxy.total_clients is None else str(max(0, proxy.total_clients))
    return out


def w3c_value(value: str | None) -> str:
    """One W3C field: "-" when empty, spaces and other whitespace become "_" (2.2)."""
    text = "_".join((value or "").split())
    return text or "-"


def format_summary(fields: Mapping[str, str], layout: tuple[str, ...] = LOG_DATA52) -> str:
    return " ".join(w3c_value(fields.get(name)) for name in layout)


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def serialize_xml_log(
    fields: Mapping[str, str],
    *,
    layout: tuple[str, ...] = LOG_DATA52,
    content_description: Mapping[str, str] | None = None,
) -> str:
    """The xml-log of MS-WMLOG 2.4: <Summary> line, then one element per field in schema order.

    The schema has no element for cs-media-name, cs-media-role or s-proxied: they are carried in the
    summary only. ContentDescription names must be XML names; others are dropped.
    """
    parts = ["<XML>", f"<Summary>{_xml_text(format_summary(fields, layout))}</Summary>"]
    for name in XML_ELEMENTS:
        parts.append(f"<{name}>{_xml_text(w3c_value(fields.get(name)))}</{name}>")
    if content_description:
        parts.append("<ContentDescription>")
        for name, value in content_description.items():
            if name.replace("_", "a").replace("-", "a").replace(".", "a").isalnum():
                parts.append(f"<{name}>{_xml_text(w3c_value(value))}</{name}>")
        parts.append("</ContentDescription>")
    parts.append("</XML>")
    return "".join(parts)


def rendering_log_for_upstream(log: ParsedLog, *, player_ip: str, proxy: ProxyIdentity) -> str | None:
    """XML rendering log to embed as @.REMOTE_LOG upstream, or None when this log is not forwarded."""
    if forwarding_action(log.log_type) == "keep":
        return None
    fields = apply_proxy_rewrites(to_rendering_fields(log), player_ip=player_ip, proxy=proxy)
    return serialize_xml_log(fields, layout=LOG_DATA52)

