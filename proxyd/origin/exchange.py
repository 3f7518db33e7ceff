"""OriginExchange: what one player DESCRIBE causes at the origin, shared by every strategy asked.

At a player's DESCRIBE the strategies are asked in turn (cache, split, then the relay). The first
that needs the origin's answer makes the exchange connect and DESCRIBE; the others read the same
answer. A strategy that keeps the connection (a cache fill, a split hub) takes it; otherwise the
relay leaves it for the player's SETUP; a connection nobody took is closed. So an origin sees one
DESCRIBE per player DESCRIBE, whatever the strategies decide (GetContentInfo may come in addition).
"""

from __future__ import annotations

from proxyd.routing import Target, forward_headers
from proxyd.rtsp.events import Request, Response
from proxyd.origin.client import OriginClient, OriginConnector, OriginError


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

    @property
    def asked(self) -> bool:
        """The origin was asked (answered or failed): later readers get that outcome."""
        return self.response is not None or self.error is not None

    async def connection(self) -> OriginClient:
        """The exchange's origin connection, opened on first use (e.g. for a GetContentInfo)."""
        if self.error is not None:
            raise self.error
        if self.client is None or not self.client.is_open:
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
            self.error = exc
            raise
        return self.response

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
