"""proxyd configuration: frozen dataclasses, every limit and timeout in one place, validated at start."""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from dataclasses import dataclass, field

from proxyd.rtsp.auth import Credentials


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the flag/variable and the problem."""


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
    cache_pace_tick: float = 0.002
    metrics_request_timeout: float = 5.0
    metrics_max_connections: int = 16
    ready_max_snapshot_age: float = 300.0
    ready_max_spool_bytes: int = 32 << 20
    event_spool_max_bytes: int = 64 << 20
    event_retry_interval: float = 5.0

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("rtp_port_"):
                if not 0 <= value <= 65535:
                    raise ConfigError(f"--{flag(f.name)} must be 0..65535, got {value}")
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

    `credentials`: what proxyd answers the origin's 401 with (control-plane origin rows only; a
    command-line route has none, and its players' own Authorization goes through). `live` and
    `split`: the origin row's live/split policy (control plane only)."""

    prefix: str
    origin_host: str
    origin_port: int
    origin_base: str  # path without trailing slash, "" for the origin root
    credentials: Credentials | None = None
    live: bool = False  # the origin row says its content is live (like --live for this prefix)
    split: str = ""  # the origin row's split policy (always/never); "" defers to --split

    @property
    def origin_url(self) -> str:
        return f"rtsp://{format_hostport(self.origin_host, self.origin_port)}{self.origin_base}"


@dataclass(frozen=True)
class ControlSettings:
    url: str = ""
    token: str = ""
    node_name: str = ""
    state_dir: str = ""
    poll_interval: float = 10.0  # seconds between config snapshot polls
    request_timeout: float = 5.0  # seconds a control-plane request may take (then retried later)


@dataclass(frozen=True)
class Config:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8554
    routes: tuple[Route, ...] = ()
    allow_origins: frozenset[tuple[str, int]] = frozenset()
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
    control: ControlSettings = field(default_factory=ControlSettings)
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
    """'/PREFIX=rtsp://HOST:PORT[/BASE]' -> Route."""
    prefix, sep, url = text.partition("=")
    if not sep or not prefix.startswith("/"):
        raise ConfigError(f"--route: expected /PREFIX=rtsp://HOST:PORT[/BASE], got {text!r}")
    prefix = "/" + prefix.strip("/")
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() != "rtsp" or not parts.hostname:
        raise ConfigError(f"--route: origin must be an rtsp:// URL, got {url!r}")
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(f"--route: origin URL must not carry a query, fragment or credentials: {url!r}")
    try:
        port = parts.port or 554
    except ValueError:
        raise ConfigError(f"--route: bad port in {url!r}") from None
    return Route(prefix=prefix, origin_host=parts.hostname.lower(), origin_port=port,
                 origin_base=parts.path.rstrip("/"))


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
