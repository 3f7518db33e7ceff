"""Identity and capability headers on every request proxyd sends upstream ([MS-RTSP] 3.1.5.1).

`decorate_upstream` is applied by OriginClient.request, so relayed, cache-fill, split and
proxyd's own requests (keepalive, teardown, GetContentInfo) all carry them. A request that still
holds a player's User-Agent is a relayed one: the player's agent moves to X-Proxy-Client-Agent and
its method to X-Proxy-Client-Verb; our own User-Agent replaces it.
"""

from __future__ import annotations

import socket
import uuid

from proxyd import __version__
from proxyd.rtsp.events import Headers
from proxyd.wm.identity import upstream_identity_headers, user_agent, wm_version
from proxyd.wm.supported import client_role_features, format_supported

PROXY_GUID = uuid.uuid4()  # one per process: the same for every request of an upstream session
PROXY_HOST = socket.gethostname() or "proxyd"
PRODUCT = f"WMCacheProxy/{wm_version(__version__)}"
SUPPORTED_METHODS = frozenset({"DESCRIBE", "SETUP", "PLAY"})  # client SHOULD send Supported on these
_REPLACED = ("User-Agent", "Via", "X-Proxy-Client-Agent", "X-Proxy-Client-Verb", "Supported")
CLIENT_SUPPORTED = format_supported(client_role_features())


def proxy_user_agent() -> str:
    return user_agent(__version__, PROXY_GUID)


def decorate_upstream(method: str, headers: Headers) -> Headers:
    player_agent = headers.get("User-Agent")
    player_proxy_agent = headers.get("X-Proxy-Client-Agent")
    relayed = bool(player_agent or player_proxy_agent)
    items = [(n, v) for n, v in headers.items() if n.lower() not in {h.lower() for h in _REPLACED}]
    items += upstream_identity_headers(
        version=__version__, guid=PROXY_GUID, proxy_host=PROXY_HOST,
        player_method=method if relayed else None, player_user_agent=player_agent,
        player_proxy_client_agent=player_proxy_agent, player_via=headers.get("Via"))
    if method.upper() in SUPPORTED_METHODS:
        items.append(("Supported", CLIENT_SUPPORTED))
    return Headers(items)
