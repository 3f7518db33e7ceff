"""OriginExchange: what one player DESCRIBE causes at the origin, shared by every strategy asked.

At a player's DESCRIBE the strategies are asked in turn (cache, split, then the relay). The first
that needs the origin's answer makes the exchange connect and DESCRIBE; the others read the same
answer. A strategy that keeps the connection (a cache fill, a split hub) takes it; otherwise the
relay leaves it for the player's SETUP; a connection nobody took is closed. So an origin sees one
DESCRIBE per player DESCRIBE, whatever the strategies decide (GetContentInfo may come in addition).

In a cache cluster the exchange may go through the peer owning the URL (`through_owner`): the
same requests go to that node as a chained proxy. A peer that cannot be reached (connect timeout
--cluster-connect-timeout, refused, no answer) is left out for --cluster-peer-retry seconds and the
URL's next owner over the nodes left is asked (the origin when that is this node), so every node
still reaches the URL through one node; the origin is asked directly when the peer answers 403 (it
does not serve that origin) or 5xx.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from proxyd.cluster import Membership, Peer, is_marked
from proxyd.log import get_logger
from proxyd.metrics.counters import CLUSTER_PEER_REQUESTS
from proxyd.routing import Target, forward_headers
from proxyd.rtsp.events import Request, Response
from proxyd.rtsp.uri import url_key
from proxyd.origin.client import OriginClient, OriginConnector, OriginError

log = get_logger("cluster")


class OriginExchange:
    def __init__(self, target: Target, request: Request, connector: OriginConnector,
                 client: OriginClient | None = None) -> None:
        """`client`: an open connection to the target's origin to continue on (the player's
        previous exchange, e.g. the one whose 401 its Authorization now answers)."""
        self.target = target
        self.request = request
        self.connector = connector
        self.client = client
        self.response: Response | None = None
        self.error: OriginError | None = None
        self.taken = False
        self.peer: Peer | None = None  # the cluster peer to ask instead of the origin
        self.membership: Membership | None = None
        self.peer_connect_timeout = 0.0

    @property
    def asked(self) -> bool:
        """The origin was asked (answered or failed): later readers get that outcome."""
        return self.response is not None or self.error is not None

    async def connection(self) -> OriginClient:
        """The exchange's origin connection, opened on first use (e.g. for a GetContentInfo)."""
        if self.error is not None:
            raise self.error
        if self.client is None or not self.client.is_open:
            while self.peer is not None:  # each one failing is left out: the loop ends
                try:
                    self.client = await self.connector.connect_peer(self.peer, self.membership,
                                                                    self.peer_connect_timeout)
                    CLUSTER_PEER_REQUESTS.inc("asked")
                    return self.client
                except OriginError as exc:
                    self._leave_peer(f"unreachable ({exc.detail})", down=True)
            try:
                self.client = await self.connector.connect_target(self.target)
            except OriginError as exc:
                self.error = exc
                raise
        return self.client

    async def reconnect(self) -> OriginClient:
        """A new connection after the current one failed (the GetContentInfo rollover of a miss)."""
        if self.client is not None and not self.taken:
            self.client.close()
        self.client, self.error = None, None
        return await self.connection()

    async def describe(self) -> Response:
        """The origin's answer to the player's DESCRIBE: asked once, then the same answer (or the
        same OriginError) for every caller."""
        if self.response is not None:
            return self.response
        client = await self.connection()
        try:
            self.response = await client.request("DESCRIBE", self.target.origin_url,
                                                 forward_headers(self.request.headers))
        except OriginError as exc:
            if self.via_peer:
                self._leave_peer(f"failed ({exc.detail})", down=True)
                return await self.describe()
            self.error = exc
            raise
        if self.via_peer and (self.response.status == 403 or self.response.status >= 500):
            self._leave_peer(f"answered {self.response.status}", down=False)
            self.response = None
            return await self.describe()
        return self.response

    def through_owner(self, membership: Membership, connect_timeout: float) -> None:
        """Cache cluster: ask the node owning the URL instead of the origin (before anything was
        asked), unless this node owns it; a request from a peer is never forwarded again."""
        if is_marked(self.request.headers) or self.client is not None or self.asked:
            return
        owner = membership.owner(self.owner_key)
        if owner is not None:
            self.peer, self.membership, self.peer_connect_timeout = owner, membership, connect_timeout

    @property
    def owner_key(self) -> str:
        return url_key(self.target.origin_url)

    @property
    def via_peer(self) -> bool:
        """The current connection goes to a cluster peer."""
        return self.peer is not None and self.client is not None

    def _leave_peer(self, why: str, *, down: bool) -> None:
        """An unreachable peer is left out and the URL's next owner asked (the origin when that is
        this node); a refusing one sends this exchange to the origin. One log line."""
        CLUSTER_PEER_REQUESTS.inc("unreachable" if down else "refused")
        following = None
        if down:
            self.membership.mark_down(self.peer)
            following = self.membership.owner(self.owner_key)
        log.warning("cluster: peer %s %s for %s; asking %s", self.peer.address, why, self.target.origin_url,
                    f"its next owner {following.address}" if following is not None else "the origin directly")
        if self.client is not None and not self.taken:
            self.client.close()
        self.client, self.error, self.peer = None, None, following

    def origin_fallback(self) -> Callable[[], Awaitable[OriginClient]] | None:
        """For a connection through a peer, how to reach the origin itself should that peer go away
        in the middle of the session (a fill resumes there); None when it goes to the origin."""
        if not self.via_peer:
            return None
        connector, target = self.connector, self.target
        return lambda: connector.connect_target(target)

    def take_client(self) -> OriginClient:
        """Hand the open connection to the caller, which now owns (and closes) it."""
        if self.client is None or self.taken:
            raise RuntimeError("no origin connection to take")
        self.taken = True
        return self.client

    @property
    def has_client(self) -> bool:
        return self.client is not None and not self.taken and self.client.is_open

    def close(self) -> None:
        """Close the connection unless someone took it; idempotent."""
        if self.client is not None and not self.taken:
            self.client.close()
            self.taken = True
