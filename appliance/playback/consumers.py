"""Dashboard websocket: authenticated, read-only fan-out of the "live" group. No DB writes, no services."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from appliance.playback.live import LIVE_GROUP

# Application close code (4000-4999) so the page can tell "log in again" from a network drop.
CLOSE_UNAUTHENTICATED = 4401


class LiveConsumer(AsyncJsonWebsocketConsumer):
    joined = False

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
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
