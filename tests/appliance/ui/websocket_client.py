"""Minimal websocket test client on asgiref's ApplicationCommunicator.

channels.testing.WebsocketCommunicator would do, but importing channels.testing pulls in daphne,
which this project does not install.
"""

from __future__ import annotations

import json

from asgiref.testing import ApplicationCommunicator


class WebsocketClient(ApplicationCommunicator):
    def __init__(self, application, path: str, headers: list[tuple[bytes, bytes]]):
        scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "headers": headers, "subprotocols": [], "client": ["127.0.0.1", 40000],
                 "server": ["testserver", 80]}
        super().__init__(application, scope)

    async def connect(self, timeout: float = 5) -> tuple[bool, int | str | None]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, response.get("subprotocol")

    async def send_json_to(self, data) -> None:
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout: float = 5):
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self, code: int = 1000, timeout: float = 5) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)
