"""Request-URI -> origin URL (reverse routes, forward allow-list) and URL rewriting in both directions.

Pure functions and small value objects: no sockets, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from proxyd.cluster import CLUSTER_HEADER
from proxyd.config import Config, Route
from proxyd.rtsp.auth import Credentials
from proxyd.rtsp.errors import HeaderParseError
from proxyd.rtsp.events import Headers, Response
from proxyd.rtsp.player_auth import PlayerAuthPolicy
from proxyd.rtsp.uri import RtspUrl, normalize_path, split_rtsp_url


class RoutingError(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def _routable(url: str) -> RtspUrl | None:
    """`url` parsed with its path in normal form (proxyd.rtsp.uri: "%76od/../x" is "/x", so a route
    cannot be left by dot segments), or None: not an RTSP URL, or with credentials."""
    try:
        parts = split_rtsp_url(url)
    except HeaderParseError:
        return None
    if parts.userinfo:
        return None
    return dataclasses.replace(parts, path=normalize_path(parts.path))


def _under(path: str, prefix: str) -> str | None:
    """Rest of `path` after `prefix` on a segment boundary, or None."""
    if prefix in ("", "/"):
        return path
    if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "?"):
        return path[len(prefix):]
    return None


@dataclass(frozen=True)
class Target:
    """Where one player request goes, and the two URL bases used to rewrite between the two sides."""

    origin_host: str
    origin_port: int
    origin_url: str
    proxy_base: str   # e.g. rtsp://proxy:8554/vod
    origin_base: str  # e.g. rtsp://origin:8600/base
    forward: bool
    transport: str = ""  # the route's origin transport preference (auto/udp/tcp); "" = the global flag
    credentials: Credentials | None = None  # the route's origin credentials (control plane); None: none
    live: bool = False  # the route's origin is live by policy (control plane)
    split: str = ""  # the route's split policy: always/never, "" = the global --split
    tls_verify: bool = True  # rtsps origin: check its certificate (the route's switch)
    # who may play it (None: anyone); forward: asked with 407/Proxy-Authenticate, else 401
    player_auth: PlayerAuthPolicy | None = None

    @property
    def origin_tls(self) -> bool:
        return self.origin_base.startswith("rtsps:")

    def to_origin(self, url: str) -> str:
        return _rebase(url, self.proxy_base, self.origin_base)

    def to_player(self, url: str) -> str:
        return _rebase(url, self.origin_base, self.proxy_base)


def _rebase(url: str, src: str, dst: str) -> str:
    if src == dst:
        return url
    src_parts, url_parts = _routable(src), _routable(url)
    if src_parts is None or url_parts is None or url_parts.port != src_parts.port:
        return url
    if url_parts.host != src_parts.host and not _loopback_alias(url_parts.host, src_parts.host):
        return url
    base_path = src_parts.path.rstrip("/")
    rest = _under(url_parts.path, base_path)
    if rest is None:
        return url
    return dst.rstrip("/") + rest if rest else dst


def _loopback_alias(a: str, b: str) -> bool:
    loop = {"127.0.0.1", "localhost", "::1"}
    return a in loop and b in loop


# Media from an rtsps:// origin stays inside its TLS connection (interleaved) unless the route's own
# transport preference (control plane) says udp.
TLS_MEDIA_TRANSPORT = "tcp"


class Router:
    def __init__(self, config: Config, transports: Mapping[str, str] | None = None) -> None:
        # Longest prefix first, so the first match is the most specific route.
        self.routes: tuple[Route, ...] = tuple(sorted(config.routes, key=lambda r: len(r.prefix),
                                                      reverse=True))
        self.allow_origins = config.allow_origins
        self.redirects = tuple(sorted(config.redirects, key=lambda r: len(r.prefix), reverse=True))
        self.listen_host = config.listen_host
        self.forward_auth = config.player_auth
        self.transports = dict(transports or {})  # route prefix -> origin transport (control plane)
        self.live_prefixes = config.live_prefixes

    def resolve(self, uri: str, local_host: str, local_port: int, *, peer: bool = False) -> Target:
        """`peer`: the request comes from a trusted cluster peer (proxyd.cluster), which names the
        origin URL itself (a chained proxy): a URL under a route's origin is served like that route."""
        parts = _routable(uri)
        if parts is None:
            raise RoutingError(400, "Bad Request", f"request-URI is not an rtsp URL: {uri[:200]!r}")
        scheme = "rtsps" if parts.scheme == "rtsps" else "rtsp"  # URLs handed back keep TLS
        is_self = parts.port == local_port and parts.host in {local_host, self.listen_host, "localhost",
                                                              "127.0.0.1", "::1"}
        if peer and not is_self:
            route = self._covering(parts, lambda r: True)
            if route is not None:
                return Target(route.origin_host, route.origin_port, f"{scheme}://{parts.authority}{parts.path}",
                              route.origin_url, route.origin_url, forward=True,
                              transport=self.transports.get(route.prefix, "")
                              or (TLS_MEDIA_TRANSPORT if route.origin_scheme == "rtsps" else ""),
                              credentials=route.credentials, live=route.live or self._live_path(route, parts),
                              split=route.split, tls_verify=route.tls_verify)
        if not is_self and (parts.host, parts.port) in self.allow_origins:
            base = f"{scheme}://{parts.authority}"  # an rtsps:// request-URI goes on over TLS
            return Target(parts.host, parts.port, f"{base}{parts.path}", base, base, forward=True,
                          transport=TLS_MEDIA_TRANSPORT if scheme == "rtsps" else "",
                          player_auth=self._forward_auth(parts))
        if is_self or parts.port == local_port:
            for route in self.routes:
                rest = _under(parts.path, route.prefix)
                if rest is None:
                    continue
                proxy_base = f"{scheme}://{parts.authority}{'' if route.prefix == '/' else route.prefix}"
                if rest and not rest.startswith(("/", "?")):
                    rest = "/" + rest
                origin_url = route.origin_url + rest
                return Target(route.origin_host, route.origin_port, origin_url or "/", proxy_base,
                              route.origin_url, forward=False,
                              transport=self.transports.get(route.prefix, "")
                              or (TLS_MEDIA_TRANSPORT if route.origin_scheme == "rtsps" else ""),
                              credentials=route.credentials,
                              live=route.live, split=route.split, tls_verify=route.tls_verify,
                              player_auth=route.player_auth)
        if is_self:
            raise RoutingError(404, "Not Found", f"no route for {parts.path[:200]!r}")
        raise RoutingError(403, "Forbidden", f"forward proxy to {parts.authority} is not allowed")

    def _live_path(self, route: Route, parts: RtspUrl) -> bool:
        """A peer names the origin URL: whether its players' path under `route` is under --live
        (this node judges a URL it owns as it would for its own players)."""
        path = route.prefix.rstrip("/") + (_under(parts.path, route.origin_base) or "")
        return any(_under(path, prefix) is not None for prefix in self.live_prefixes)

    def may_reach(self, host: str, port: int) -> bool:
        """An origin a route or --allow-origin names: the only ones an origin's redirect may send
        proxyd to (never an arbitrary host a Location names)."""
        return (host.lower(), port) in self.allow_origins or any(
            (r.origin_host, r.origin_port) == (host.lower(), port) for r in self.routes)

    def redirect_for(self, uri: str) -> tuple[int, str] | None:
        """(302 or 305, Location) when a --redirect / --redirect-proxy policy covers this URI's path."""
        parts = _routable(uri) if self.redirects else None
        if parts is None:
            return None
        for redirect in self.redirects:
            rest = _under(parts.path, redirect.prefix)
            if rest is None:
                continue
            if redirect.to_proxy:
                return 305, redirect.location
            if rest and not rest.startswith(("/", "?")):
                rest = "/" + rest
            return 302, redirect.location + rest
        return None

    def credentials_for(self, origin_url: str) -> Credentials | None:
        """Credentials of the most specific route whose origin URL covers `origin_url` (for work that
        starts from an origin URL, e.g. prestuff); None when no route with credentials covers it."""
        parts = _routable(origin_url)
        route = self._covering(parts, lambda r: r.credentials is not None) if parts else None
        return route.credentials if route is not None else None

    def _forward_auth(self, parts: RtspUrl) -> PlayerAuthPolicy | None:
        """A forward-proxy request for content a protected route serves needs that route's
        credentials (else the route could be bypassed); otherwise --player-auth's."""
        route = self._covering(parts, lambda r: r.player_auth is not None)
        return route.player_auth if route is not None else self.forward_auth

    def _covering(self, parts: RtspUrl, wanted) -> Route | None:
        """The most specific `wanted` route whose origin URL covers the origin-side URL `parts`."""
        best: Route | None = None
        for route in self.routes:
            same_origin = (route.origin_host, route.origin_port) == (parts.host, parts.port)
            if not wanted(route) or not same_origin or _under(parts.path, route.origin_base) is None:
                continue
            if best is None or len(route.origin_base) > len(best.origin_base):
                best = route
        return best


# --- rewriting of URLs carried in headers and SDP --------------------------------------------------

def rewrite_rtp_info(value: str, convert) -> str:
    """RTP-Info: url=...;seq=..;rtptime=..[,url=...] with every url= passed through `convert`."""
    out = []
    for item in value.split(","):
        fields = []
        for param in item.split(";"):
            name, eq, val = param.strip().partition("=")
            if eq and name.lower() == "url":
                param = f"url={convert(val.strip())}"
            fields.append(param.strip())
        out.append(";".join(fields))
    return ",".join(out)


def rewrite_sdp_controls(sdp: bytes, convert) -> bytes:
    """Rewrite absolute a=control: URLs; every other byte is kept as it was (line endings included)."""
    lines = sdp.split(b"\n")
    for i, line in enumerate(lines):
        if line[:10].lower() != b"a=control:":
            continue
        body = line[10:]
        cr = body.endswith(b"\r")
        url = (body[:-1] if cr else body).strip().decode("utf-8", "replace")
        if "://" in url:
            lines[i] = b"a=control:" + convert(url).encode() + (b"\r" if cr else b"")
    return b"\n".join(lines)


# --- per-hop header handling --------------------------------------------------------------------

URL_HEADERS = frozenset({"content-base", "content-location", "location"})
# Headers that describe one hop and are rebuilt, never copied across.
# The cluster mark is added by the peer connection itself (proxyd.cluster), never copied from a player.
HOP_HEADERS = frozenset({"cseq", "session", "transport", "content-length", "connection", "rtp-info",
                         "content-base", "content-location", "location", "public", "server", "date",
                         CLUSTER_HEADER.lower()})


def forward_headers(headers: Headers, extra: list[tuple[str, str]] | None = None) -> Headers:
    items = [(n, v) for n, v in headers.items() if n.lower() not in HOP_HEADERS]
    return Headers(items + (extra or []))


def rewrite_response_headers(resp: Response, target: Target,
                             session_header: str | None) -> list[tuple[str, str]]:
    """Origin response headers as the player should see them (URLs point at the proxy)."""
    out = []
    for name, value in resp.headers.items():
        low = name.lower()
        if low in ("cseq", "session", "transport", "content-length", "connection"):
            continue
        if low in URL_HEADERS:
            value = target.to_player(value.strip())
        elif low == "rtp-info":
            value = rewrite_rtp_info(value, target.to_player)
        out.append((name, value))
    if session_header:
        out.append(("Session", session_header))
    return out
