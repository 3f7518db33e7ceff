"""The nodes as one cache (sans-IO): which node owns a URL, and which requests come from a peer.

Every cacheable URL has one owner: rendezvous (highest random weight) hashing of the URL's
`url_key` over the healthy members, each member known by its RTSP address "host:port". HRW needs
no ring or virtual nodes: when a member leaves, only the URLs it owned move (each to its own
second choice), and every node computes the same owner from the same member list.

A node asks the owner as a chained proxy, marking every request with the `X-Proxyd-Cluster`
header (the cluster id). A marked request is never sent to another peer (loop prevention); it is
trusted (a forward request to a route's origin) only with this node's cluster id and from a
member's address. A member whose connection failed is left out for `peer_retry` seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from proxyd.config import format_hostport

CLUSTER_HEADER = "X-Proxyd-Cluster"


@dataclass(frozen=True)
class Peer:
    host: str
    port: int
    online: bool = True  # the control plane's view (standalone: always)

    @property
    def address(self) -> str:
        return format_hostport(self.host, self.port)


def hrw_weight(address: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{address}\n{key}".encode(), digest_size=8).digest(), "big")


def rendezvous_owner(key: str, members: Iterable[Peer]) -> Peer | None:
    """The member with the highest weight for `key` (ties broken by address), None without members."""
    return max(members, key=lambda p: (hrw_weight(p.address, key), p.address), default=None)


def is_marked(headers) -> bool:
    """The request came through a cluster peer (whatever its id): it is never forwarded again."""
    return CLUSTER_HEADER in headers


class Membership:
    """This node's view of the cluster; replaced as a whole by configure() (flags or snapshot)."""

    def __init__(self, *, peer_retry: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.peer_retry = peer_retry
        self.clock = clock
        self.cluster_id = ""
        self.me: Peer | None = None
        self.members: tuple[Peer, ...] = ()
        self.down_until: dict[str, float] = {}  # address -> clock time it is tried again

    def configure(self, me: Peer | None, members: Iterable[Peer], cluster_id: str) -> None:
        """`me`: this node's own address as its peers reach it (None: clustering off); `members`
        may include it. Local down marks of members that stay are kept."""
        self.me, self.cluster_id = me, cluster_id
        unique = {p.address: p for p in members}
        if me is not None:
            unique[me.address] = me  # this node is always a candidate owner (it is serving)
        self.members = tuple(sorted(unique.values(), key=lambda p: p.address)) if me is not None else ()
        self.down_until = {a: t for a, t in self.down_until.items() if a in unique}

    @property
    def enabled(self) -> bool:
        return self.me is not None and len(self.members) > 1

    def healthy(self) -> list[Peer]:
        now = self.clock()
        return [p for p in self.members
                if p == self.me or (p.online and self.down_until.get(p.address, 0.0) <= now)]

    def owner(self, key: str) -> Peer | None:
        """The peer to fill `key` (a url_key) through, or None: this node owns it, or no cluster."""
        if not self.enabled:
            return None
        owner = rendezvous_owner(key, self.healthy())
        return None if owner is None or owner.address == self.me.address else owner

    def mark_down(self, peer: Peer) -> None:
        self.down_until[peer.address] = self.clock() + self.peer_retry

    def is_member_address(self, ip: str) -> bool:
        """A connection from a member node (its fills are many players' worth: not one player)."""
        return self.enabled and any(p.host == ip for p in self.members)

    def trusts(self, headers, peer_ip: str) -> bool:
        """A peer's request: marked with our cluster id, from a member's address."""
        return self.is_member_address(peer_ip) and headers.get(CLUSTER_HEADER, "").strip() == self.cluster_id

    def mark(self) -> tuple[tuple[str, str], ...]:
        """The header every request to a peer carries."""
        return ((CLUSTER_HEADER, self.cluster_id),)
