"""The config snapshot from GET /internal/v1/snapshot as small frozen dataclasses.

`parse_snapshot` validates types and enumerations and raises SnapshotError naming the bad field;
unknown keys are ignored so the control plane can add fields without breaking older nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
CACHE_POLICIES = ("obey", "force_ttl", "never")
TRANSPORTS = ("auto", "udp", "tcp")
SPLIT_MODES = ("auto", "always", "never")
PLAYER_ACCESS = ("open", "basic", "digest")


class SnapshotError(ValueError):
    """The snapshot document does not match the contract."""


@dataclass(frozen=True, slots=True)
class PlayerUser:
    """One player credential of an origin: H(A1) per algorithm (hex; "" when not stored)."""

    username: str
    md5: str
    sha256: str

    def __repr__(self) -> str:  # the hashes are password equivalents for the realm
        return f"PlayerUser({self.username!r})"


@dataclass(frozen=True, slots=True)
class OriginConfig:
    id: int
    name: str
    route_prefix: str
    base_url: str
    allowed: bool
    cache_policy: str
    cache_ttl: int
    stale_if_error: int
    transport: str
    live: bool
    split: str
    username: str
    password: str
    tls_verify: bool = True  # rtsps:// origins: check the certificate (absent from older control planes)
    # who may play it (proxyd.rtsp.player_auth): open, basic or digest with these users' hashes
    player_access: str = "open"
    player_realm: str = ""
    player_users: tuple[PlayerUser, ...] = ()

    def __repr__(self) -> str:  # keep origin passwords out of logs
        return f"OriginConfig(id={self.id}, name={self.name!r}, base_url={self.base_url!r})"


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    id: int
    url: str
    prefix: bool


@dataclass(frozen=True, slots=True)
class PrestuffRequest:
    id: int
    url: str


@dataclass(frozen=True, slots=True)
class RevalidatedItem:
    url: str
    expires_at: str | None
    state: str


@dataclass(frozen=True, slots=True)
class ClusterMember:
    name: str
    address: str  # HOST:PORT its peers reach it at
    online: bool


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The cache cluster (proxyd.cluster): off, or every member with the cluster id."""

    enabled: bool = False
    id: str = ""
    nodes: tuple[ClusterMember, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    schema_version: int
    etag: str
    generated_at: str
    node_name: str
    origins: tuple[OriginConfig, ...]
    purges: tuple[PurgeRequest, ...]
    prestuff: tuple[PrestuffRequest, ...]
    revalidated: tuple[RevalidatedItem, ...]
    terminate_sessions: tuple[str, ...]
    # seconds a report event may wait for its batch, as the control plane asks (None: the node's own)
    report_batch_delay: float | None = None
    # seconds between snapshot polls, as the control plane asks (None: the node's own)
    poll_interval: float | None = None
    cluster: ClusterConfig = ClusterConfig()


def _field(obj: dict, key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    if key not in obj:
        if default is ...:
            raise SnapshotError(f"{where}.{key}: missing")
        return default
    value = obj[key]
    # bool is an int subclass: do not accept true for a number or 1 for a flag.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise SnapshotError(f"{where}.{key}: expected {_names(kind)}, got {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(kind))


def _choice(obj: dict, key: str, choices: tuple[str, ...], where: str, default: str) -> str:
    value = _field(obj, key, str, where, default)
    if value not in choices:
        raise SnapshotError(f"{where}.{key}: {value!r} is not one of {', '.join(choices)}")
    return value


def _objects(doc: dict, key: str) -> list[tuple[str, dict]]:
    items = _field(doc, key, list, "snapshot", [])
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise SnapshotError(f"{where}: expected object")
        out.append((where, item))
    return out


def _origin(o: dict, w: str) -> OriginConfig:
    return OriginConfig(
        id=_field(o, "id", int, w), name=_field(o, "name", str, w),
        route_prefix=_field(o, "route_prefix", str, w), base_url=_field(o, "base_url", str, w),
        allowed=_field(o, "allowed", bool, w, True),
        cache_policy=_choice(o, "cache_policy", CACHE_POLICIES, w, "obey"),
        cache_ttl=_non_negative(o, "cache_ttl", w), stale_if_error=_non_negative(o, "stale_if_error", w),
        transport=_choice(o, "transport", TRANSPORTS, w, "auto"), live=_field(o, "live", bool, w, False),
        split=_choice(o, "split", SPLIT_MODES, w, "auto"),
        username=_field(o, "username", str, w, ""), password=_field(o, "password", str, w, ""),
        tls_verify=_field(o, "tls_verify", bool, w, True),
        player_access=_choice(o, "player_access", PLAYER_ACCESS, w, "open"),
        player_realm=_field(o, "player_realm", str, w, ""),
        player_users=tuple(_player_user(u, f"{w}.player_users[{i}]")
                           for i, u in enumerate(_field(o, "player_users", list, w, []))))


def _player_user(u: Any, w: str) -> PlayerUser:
    if not isinstance(u, dict):
        raise SnapshotError(f"{w}: expected object")
    return PlayerUser(username=_field(u, "username", str, w), md5=_field(u, "md5", str, w, ""),
                      sha256=_field(u, "sha256", str, w, ""))


def _non_negative(o: dict, key: str, where: str) -> int:
    value = _field(o, key, int, where, 0)
    if value < 0:
        raise SnapshotError(f"{where}.{key}: must be >= 0")
    return value


def parse_snapshot(doc: Any) -> Snapshot:
    if not isinstance(doc, dict):
        raise SnapshotError("snapshot: expected a JSON object")
    version = _field(doc, "schema_version", int, "snapshot")
    if version != SCHEMA_VERSION:
        raise SnapshotError(f"snapshot.schema_version: unsupported version {version} (want {SCHEMA_VERSION})")
    node = _field(doc, "node", dict, "snapshot")
    terminate = _field(doc, "terminate_sessions", list, "snapshot", [])
    if not all(isinstance(s, str) for s in terminate):
        raise SnapshotError("snapshot.terminate_sessions: expected a list of strings")
    return Snapshot(
        schema_version=version,
        etag=_field(doc, "etag", str, "snapshot"),
        generated_at=_field(doc, "generated_at", str, "snapshot", ""),
        node_name=_field(node, "name", str, "snapshot.node"),
        origins=tuple(_origin(o, w) for w, o in _objects(doc, "origins")),
        purges=tuple(PurgeRequest(id=_field(p, "id", int, w), url=_field(p, "url", str, w),
                                  prefix=_field(p, "prefix", bool, w, False))
                     for w, p in _objects(doc, "purges")),
        prestuff=tuple(PrestuffRequest(id=_field(p, "id", int, w), url=_field(p, "url", str, w))
                       for w, p in _objects(doc, "prestuff")),
        revalidated=tuple(RevalidatedItem(url=_field(r, "url", str, w),
                                          expires_at=_field(r, "expires_at", (str, type(None)), w, None),
                                          state=_field(r, "state", str, w, ""))
                          for w, r in _objects(doc, "revalidated")),
        terminate_sessions=tuple(terminate),
        report_batch_delay=_seconds(_field(doc, "reporting", dict, "snapshot", {}), "batch_delay",
                                    "snapshot.reporting", MAX_REPORT_BATCH_DELAY),
        poll_interval=_seconds(_field(doc, "polling", dict, "snapshot", {}), "interval", "snapshot.polling",
                               MAX_POLL_INTERVAL),
        cluster=_cluster(_field(doc, "cluster", dict, "snapshot", {})),
    )


def _cluster(obj: dict) -> ClusterConfig:
    if not _field(obj, "enabled", bool, "snapshot.cluster", False):
        return ClusterConfig()
    nodes = tuple(ClusterMember(name=_field(n, "name", str, w), address=_field(n, "address", str, w),
                                online=_field(n, "online", bool, w, True))
                  for w, n in _objects(obj, "nodes"))
    return ClusterConfig(enabled=True, id=_field(obj, "id", str, "snapshot.cluster"), nodes=nodes)


MAX_REPORT_BATCH_DELAY = 60.0  # seconds; a longer wait would make the dashboard useless
MAX_POLL_INTERVAL = 300.0  # seconds; terminations and purges wait up to one poll


def _seconds(obj: dict, key: str, where: str, maximum: float) -> float | None:
    value = _field(obj, key, (int, float), where, None)
    if value is not None and not 0 < value <= maximum:
        raise SnapshotError(f"{where}.{key}: must be in (0, {maximum:g}]")
    return None if value is None else float(value)
