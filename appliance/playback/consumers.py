"""Dashboard websocket: read-only fan-out of the "live" group to users whose role may read the dashboard.

No DB writes, no services. The role is checked once, at connect: the feed carries player addresses,
so a logged-in user without a role is refused just as the dashboard refuses them (403).
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from appliance.core.permissions import can_read
from appliance.playback.live import LIVE_GROUP

# Application close codes (4000-4999) so the page can tell "log in again" / "not allowed" from a network drop.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class LiveConsumer(AsyncJsonWebsocketConsumer):
    joined = False

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(can_read)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(LIVE_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code):
        if self.joined:
            await self.channel_layer.group_discard(LIVE_GROUP, self.channel_name)
            self.joined = False

    async def receive_json(self, content, **kwargs):
        # Read-only channel: state changes go through forms and the REST API, never the socket.
        return

    async def live_event(self, message):
        await self.send_json({"event": message["event"], "payload": message["payload"]})

    async def live_batch(self, message):
        for event in message["events"]:  # one frame per event, as live_event sends
            await self.send_json(event)
