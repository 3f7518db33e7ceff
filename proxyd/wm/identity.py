"""The proxy's identity headers on requests it relays upstream ([MS-RTSP] 3.1.5.1, 2.2.6.12, 2.2.6.24-25).

- ``User-Agent: WMCacheProxy/<ver> guid/<GUID>``: the guid part is mandatory for WMCacheProxy and is
  the same for every request of one upstream session;
- ``Via`` MUST be added when relaying (RFC 2326 12.43); we append ``RTSP/1.0 <host> (<product>/<ver>)``;
- ``X-Proxy-Client-Agent`` MUST be sent when the player's request had User-Agent or
  X-Proxy-Client-Agent: an existing one is copied unchanged, else the player's user-agent-data;
- ``X-Proxy-Client-Verb`` SHOULD carry the player's method.
"""

from __future__ import annotations

import re
import uuid

PRODUCT_TOKEN = "WMCacheProxy"
_VERSION_PART = re.compile(r"\d+")
_TOKEN_CHARS = re.compile(r"[^\x21-\x7e]")  # header token text: visible ASCII only
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # never let CR/LF reach a header line
MAX_VIA_ENTRIES = 16


def wm_version(version: str) -> str:
    """Fit any version string to ``major.minor.x.y`` (1-2, 1-2, 1-4, 1-4 digits) as 2.2.6.12 requires."""
    parts = [int(p) for p in _VERSION_PART.findall(version)][:4]
    parts += [0] * (4 - len(parts))
    limits = (99, 99, 9999, 9999)
    return ".".join(str(min(p, limit)) for p, limit in zip(parts, limits, strict=True))


def format_guid(guid: uuid.UUID) -> str:
    """Upper-case 8-4-4-4-12 form, no braces (``guid-value``)."""
    return str(guid).upper()


def user_agent(version: str, guid: uuid.UUID, *, token: str = PRODUCT_TOKEN) -> str:
    return f"{token}/{wm_version(version)} guid/{format_guid(guid)}"


def via_value(proxy_host: str, version: str, *, existing: str | None = None) -> str:
    """Append our entry to a relayed request's Via (kept bounded so a loop cannot grow it forever)."""
    host = _TOKEN_CHARS.sub("", proxy_host) or "proxy"
    ours = f"RTSP/1.0 {host} ({PRODUCT_TOKEN}/{wm_version(version)})"
    entries = [e.strip() for e in (existing or "").split(",") if e.strip()][-(MAX_VIA_ENTRIES - 1):]
    return ", ".join([*entries, ours])


def proxy_client_agent(
    player_user_agent: str | None, player_proxy_client_agent: str | None
) -> str | None:
    """X-Proxy-Client-Agent to send, or None when the player sent neither header."""
    for value in (player_proxy_client_agent, player_user_agent):
        cleaned = _CONTROL_CHARS.sub("", value or "").strip()
        if cleaned:
            return cleaned
    return None


def upstream_identity_headers(
    *,
    version: str,
    guid: uuid.UUID,
    proxy_host: str,
    player_method: str | None = None,
    player_user_agent: str | None = None,
    player_proxy_client_agent: str | None = None,
    player_via: str | None = None,
) -> list[tuple[str, str]]:
    """Headers identifying the proxy on one upstream request. ``player_method`` None: our own request."""
    headers = [
        ("User-Agent", user_agent(version, guid)),
        ("Via", via_value(proxy_host, version, existing=player_via)),
    ]
    agent = proxy_client_agent(player_user_agent, player_proxy_client_agent)
    if agent is not None:
        headers.append(("X-Proxy-Client-Agent", agent))
    if player_method:
        headers.append(("X-Proxy-Client-Verb", player_method.strip().upper()))
    return headers
