"""proxyd configuration: frozen dataclasses, every limit and timeout in one place, validated at start."""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from dataclasses import dataclass, field

from proxyd.rtsp.auth import Credentials
from proxyd.rtsp.player_auth import PlayerAuthPolicy
from proxyd.rtsp.uri import DEFAULT_PORTS


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the flag/variable and the problem."""


# 0: a cache replay sends each wakeup only what is due within the pacing tick (exact pacing); no
# media kept loaded after its last player; a split's sockets each wake it / no wait for a frame's tail
ZERO_ALLOWED = frozenset({"cache_tcp_flush_interval", "cache_udp_flush_interval",
                          "cache_media_keep_bytes", "split_read_coalesce", "split_frame_settle"})


@dataclass(frozen=True)
class Limits:
    """Every size, count and time limit (seconds for times). Field names map to --kebab-case flags."""

    max_header_bytes: int = 8192
    max_headers: int = 64
    max_body_bytes: int = 1 << 20
    max_connections: int = 1000
    max_connections_per_address: int = 100
    request_timeout: float = 20.0
    max_sessions: int = 1000
    max_pipelined_requests: int = 16
    origin_connect_timeout: float = 5.0
    origin_response_timeout: float = 10.0
    udp_fallback_timeout: float = 3.0
    session_timeout: int = 60
    session_idle_margin: float = 5.0
    session_max_transactions: int = 240
    session_heartbeat: float = 30.0
    max_redirects: int = 3
    keepalive_fraction: float = 0.5
    write_high_water: int = 1 << 20
    write_drop_limit: int = 4 << 20
    max_dropped_packets: int = 5000
    counters_interval: float = 10.0
    shutdown_grace: float = 5.0
    rtp_port_min: int = 0
    rtp_port_max: int = 0
    split_linger: float = 10.0
    split_reconnect_wait: float = 10.0
    split_backoff_max: float = 5.0
    split_gop_max_bytes: int = 4 << 20
    split_keyframe_wait: float = 3.0
    split_media_timeout: float = 5.0
    split_tcp_flush_interval: float = 0.02
    split_read_coalesce: float = 0.05
    split_frame_settle: float = 0.002
    cache_pace_tick: float = 0.002
    cache_tcp_flush_interval: float = 0.02
    cache_udp_flush_interval: float = 0.02
    cache_media_keep_bytes: int = 128 << 20
    metrics_request_timeout: float = 5.0
    metrics_max_connections: int = 16
    ready_max_snapshot_age: float = 300.0
    ready_max_spool_bytes: int = 32 << 20
    event_spool_max_bytes: int = 64 << 20
    event_retry_interval: float = 5.0
    auth_max_failures: int = 10
    auth_failure_window: float = 300.0
    auth_nonce_lifetime: float = 300.0
    auth_max_nonces: int = 10000
    auth_max_addresses: int = 10000
    cluster_connect_timeout: float = 1.0
    cluster_peer_retry: float = 30.0

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("rtp_port_"):
                if not 0 <= value <= 65535:
                    raise ConfigError(f"--{flag(f.name)} must be 0..65535, got {value}")
            elif f.name in ZERO_ALLOWED:
                if value < 0:
                    raise ConfigError(f"--{flag(f.name)} must be >= 0, got {value}")
            elif value <= 0:
                raise ConfigError(f"--{flag(f.name)} must be positive, got {value}")
        if not 0 < self.keepalive_fraction < 1:
            raise ConfigError("--keepalive-fraction must be between 0 and 1 (exclusive)")
        if self.write_drop_limit < self.write_high_water:
            raise ConfigError("--write-drop-limit must be >= --write-high-water")
        if (self.rtp_port_min == 0) != (self.rtp_port_max == 0):
            raise ConfigError("--rtp-port-min and --rtp-port-max must be given together")
        if self.rtp_port_min and self.rtp_port_max - self.rtp_port_min < 3:
            raise ConfigError("--rtp-port-max must be at least --rtp-port-min + 3")


def flag(field_name: str) -> str:
    return field_name.replace("_", "-")


@dataclass(frozen=True)
class Route:
    """Reverse-proxy route: requests under `prefix` are served from `origin` (rtsp://host:port/base).

    `credentials`: what proxyd answers the origin's 401 with (a control-plane origin row's, or for a
    command-line route one from --origin-credentials-file); without them the players' own
    Authorization goes through. `live` and
    `split`: the origin row's live/split policy (control plane only). `player_auth`: who may play
    under it (the origin row's player access, or --player-auth for a command-line route); None: open."""

    prefix: str
    origin_host: str
    origin_port: int
    origin_base: str  # path without trailing slash, "" for the origin root
    credentials: Credentials | None = None
    live: bool = False  # the origin row says its content is live (like --live for this prefix)
    split: str = ""  # the origin row's split policy (always/never); "" defers to --split
    origin_scheme: str = "rtsp"  # rtsps: RTSP over TLS to the origin
    tls_verify: bool = True  # rtsps origin: check its certificate (an origin row may turn it off)
    player_auth: PlayerAuthPolicy | None = None

    @property
    def origin_url(self) -> str:
        authority = format_hostport(self.origin_host, self.origin_port)
        return f"{self.origin_scheme}://{authority}{self.origin_base}"


@dataclass(frozen=True)
class Redirect:
    """--redirect / --redirect-proxy ([MS-RTSP] 3.2.5.4, 3.2.7.4): a DESCRIBE under `prefix` is answered
    302 with Location = `location` + the rest of its path (another server), or, `to_proxy`, 305 with
    Location = `location` (another proxy; the player asks it for the same URL)."""

    prefix: str
    location: str
    to_proxy: bool = False


@dataclass(frozen=True)
class ControlSettings:
    url: str = ""
    token: str = ""
    node_name: str = ""
    state_dir: str = ""
    poll_interval: float = 10.0  # seconds between config snapshot polls
    request_timeout: float = 5.0  # seconds a control-plane request may take (then retried later)


@dataclass(frozen=True)
class TlsSettings:
    """RTSPS: the TLS player listener and TLS toward rtsps:// origins."""

    listen: tuple[str, int] | None = None  # --listen-tls: RTSP over TLS for players
    cert_file: str = ""  # PEM certificate chain of the TLS listener (re-read on SIGHUP)
    key_file: str = ""  # its PEM private key
    allow_udp: bool = False  # UDP media for a player that came over TLS (clear-text RTP: off by default)
    origin_ca_file: str = ""  # CA bundle for rtsps:// origins; "" = the system's trust store
    origin_verify: bool = True  # check rtsps:// origins' certificates and host names

    def validate(self) -> None:
        if self.listen and not (self.cert_file and self.key_file):
            raise ConfigError("--listen-tls needs --tls-cert and --tls-key")
        if (self.cert_file or self.key_file) and not self.listen:
            raise ConfigError("--tls-cert/--tls-key need --listen-tls")


@dataclass(frozen=True)
class Config:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8554
    routes: tuple[Route, ...] = ()
    allow_origins: frozenset[tuple[str, int]] = frozenset()
    redirects: tuple[Redirect, ...] = ()
    cache_dir: str = ""
    cache_ttl: int | None = None  # None: obey the origin; 0: never cache; N: lifetime when the origin is silent
    cache_max_bytes: int = 1 << 30  # store quota (LRU eviction beyond)
    stale_if_error: int = 0  # seconds past expiry a stale entry may be served while the origin is unreachable
    origin_transport: str = "auto"  # auto | udp | tcp
    live_prefixes: tuple[str, ...] = ()  # --live: operator says live (and splittable) under these paths
    split_policy: str = "auto"  # auto | always | never (proxyd.split.detect)
    log_level: str = "INFO"
    log_format: str = "text"  # text | json
    metrics_listen: tuple[str, int] | None = None  # --metrics-listen: /metrics, /healthz, /readyz
    metrics_allow_public: bool = False  # --metrics-allow-public: a non-loopback metrics address
    # --player-auth/--player-auth-file: players of command-line routes and --allow-origin origins
    player_auth: PlayerAuthPolicy | None = None
    control: ControlSettings = field(default_factory=ControlSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    # --cluster-peer / --cluster-self / --cluster-id (proxyd.cluster); with a control plane the
    # snapshot's cluster section applies when no peer is given here
    cluster_peers: tuple[tuple[str, int], ...] = ()
    cluster_self: tuple[str, int] | None = None
    cluster_id: str = "proxyd"
    limits: Limits = field(default_factory=Limits)

    def validate(self) -> Config:
        if not 0 <= self.listen_port <= 65535:
            raise ConfigError(f"--listen port out of range: {self.listen_port}")
        prefixes = [r.prefix for r in self.routes]
        if len(set(prefixes)) != len(prefixes):
            raise ConfigError("--route prefixes must be unique")
        if self.origin_transport not in ("auto", "udp", "tcp"):
            raise ConfigError("--origin-transport must be auto, udp or tcp")
        if self.split_policy not in ("auto", "always", "never"):
            raise ConfigError("--split must be auto, always or never")
        if self.cache_max_bytes <= 0 or self.stale_if_error < 0 or (self.cache_ttl or 0) < 0:
            raise ConfigError("--cache-max-bytes must be positive, --cache-ttl and --stale-if-error >= 0")
        if any(not p.startswith("/") for p in self.live_prefixes):
            raise ConfigError("--live prefixes must start with /")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError("--log-level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
                              f"got {self.log_level}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"--log-format must be text or json, got {self.log_format}")
        if self.metrics_listen and not self.metrics_allow_public and not is_loopback(self.metrics_listen[0]):
            raise ConfigError(f"--metrics-listen {self.metrics_listen[0]} is not a loopback address; metrics "
                              "and health show sessions and URLs: add --metrics-allow-public to serve "
                              "them there")
        if self.control.url and not self.control.url.startswith(("http://", "https://")):
            raise ConfigError("--control-url must be an http:// or https:// URL")
        if not self.control.poll_interval > 0:
            raise ConfigError("--control-poll-interval must be positive")
        self.tls.validate()
        if self.cluster_peers and self.cluster_self is None:
            raise ConfigError("--cluster-peer needs --cluster-self (this node's address as its peers reach it)")
        if not self.cluster_id or any(c in self.cluster_id for c in "\r\n,;"):
            raise ConfigError("--cluster-id must be a non-empty token without , ; or line breaks")
        if not self.control.request_timeout > 0:
            raise ConfigError("--control-request-timeout must be positive")
        self.limits.validate()
        return self


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_hostport(text: str, what: str, default_port: int | None = None) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); host lower-cased."""
    parsed = urllib.parse.urlsplit("//" + text.strip())
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"{what}: bad port in {text!r}") from None
    host = parsed.hostname
    if not host or parsed.path or parsed.query or parsed.username:
        raise ConfigError(f"{what}: expected HOST:PORT, got {text!r}")
    if port is None:
        if default_port is None:
            raise ConfigError(f"{what}: missing port in {text!r}")
        port = default_port
    return host.lower(), port


def parse_route(text: str) -> Route:
    """'/PREFIX=rtsp://HOST:PORT[/BASE]' (or rtsps://, default port 322) -> Route."""
    prefix, sep, url = text.partition("=")
    if not sep or not prefix.startswith("/"):
        raise ConfigError(f"--route: expected /PREFIX=rtsp://HOST:PORT[/BASE], got {text!r}")
    prefix = "/" + prefix.strip("/")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a bad port or an unclosed IPv6 bracket
        raise ConfigError(f"--route: bad host or port in {url!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise ConfigError(f"--route: origin must be an rtsp:// or rtsps:// URL, got {url!r}")
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(f"--route: origin URL must not carry a query, fragment or credentials: {url!r}")
    return Route(prefix=prefix, origin_host=parts.hostname.lower(), origin_port=port or DEFAULT_PORTS[scheme],
                 origin_base=parts.path.rstrip("/"), origin_scheme=scheme)



def parse_route_credentials(text: str, routes: tuple[Route, ...], source: str) -> tuple[Route, ...]:
    """`routes` with the credentials of an --origin-credentials-file: one `/PREFIX=USER:PASSWORD` per
    line (the prefix of a --route; '#' lines and blank lines skipped; the password is everything
    after the first ':')."""
    by_prefix = {r.prefix: r for r in routes}
    found: dict[str, Credentials] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        prefix, sep, userinfo = line.partition("=")
        username, colon, password = userinfo.partition(":")
        prefix = "/" + prefix.strip().strip("/")
        if not sep or not colon or not username.strip():
            raise ConfigError(f"{source} line {number}: expected /PREFIX=USER:PASSWORD")
        if prefix not in by_prefix:
            raise ConfigError(f"{source} line {number}: no --route with prefix {prefix}")
        if prefix in found:
            raise ConfigError(f"{source} line {number}: {prefix} given twice")
        found[prefix] = Credentials(username.strip(), password)
    return tuple(dataclasses.replace(r, credentials=found[r.prefix]) if r.prefix in found else r for r in routes)


def parse_redirect(text: str, to_proxy: bool) -> Redirect:
    """'/PREFIX=rtsp://HOST[:PORT][/BASE]' -> Redirect."""
    flag = "--redirect-proxy" if to_proxy else "--redirect"
    prefix, sep, url = text.partition("=")
    parts = urllib.parse.urlsplit(url.strip())
    if not sep or not prefix.startswith("/") or parts.scheme.lower() != "rtsp" or not parts.hostname:
        raise ConfigError(f"{flag}: expected /PREFIX=rtsp://HOST[:PORT][/PATH], got {text!r}")
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{flag}: the URL must not carry a query, fragment or credentials: {url!r}")
    return Redirect("/" + prefix.strip("/"), url.strip().rstrip("/") if not to_proxy else url.strip(), to_proxy)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or the name localhost (any other name may resolve to a public address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
