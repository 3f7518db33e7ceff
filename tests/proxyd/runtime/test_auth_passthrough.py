"""A player's own credentials through proxyd (no configured credentials) to a strict origin.

The in-process origin accepts a Digest answer only on the connection whose challenge it answers (a
nonce per connection, as RFC 7616 allows; Basic anywhere) and marks its content public, so the test
also sees that what a player's own credentials fetched is not cached. The "player" is
proxyd.rtsp.oneshot with a username: it answers the proxy's 401 on the same player connection.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re

import pytest

from proxyd.config import Config, parse_route
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, Headers, Request, Response
from proxyd.rtsp.oneshot import rtsp_request
from proxyd.app.server import ProxyServer
from tests.proxyd.wmext.harness import RecordingSink

USER, PASSWORD, REALM = "viewer", "their-own-secret", "strict"
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=strict\r\nt=0 0\r\na=control:*\r\na=range:npt=0-10\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class StrictOrigin:
    """Basic (valid on any connection) or Digest (nonce valid on its own connection only)."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.ids = itertools.count(1)
        self.log: list[tuple[int, str, int]] = []  # (connection, method, status)
        self.server = None
        self.port = 0

    async def start(self) -> StrictOrigin:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    def _authorized(self, request: Request, nonce: str) -> bool:
        value = request.headers.get("Authorization") or ""
        if self.scheme == "basic":
            return value == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        p = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', value)}
        if not value.startswith("Digest ") or p.get("nonce") != nonce or p.get("username") != USER:
            return False
        expected = md5(f"{md5(f'{USER}:{REALM}:{PASSWORD}')}:{nonce}:{md5(request.method + ':' + p['uri'])}")
        return p.get("response") == expected

    async def _client(self, reader, writer) -> None:
        number = next(self.ids)
        nonce = f"conn{number}-{hashlib.sha256(str(number).encode()).hexdigest()[:12]}"
        conn = RtspConnection(Role.SERVER)
        try:
            while data := await reader.read(65536):
                conn.receive_data(data)
                while (event := conn.next_event()) is not NEED_DATA:
                    if not isinstance(event, Request):
                        continue
                    headers = [("CSeq", str(event.cseq))]
                    if not self._authorized(event, nonce):
                        status, body = 401, b""
                        challenge = f'{self.scheme.title()} realm="{REALM}"'
                        if self.scheme == "digest":
                            challenge += f', nonce="{nonce}"'
                        headers.append(("WWW-Authenticate", challenge))
                    else:
                        status, body = 200, SDP if event.method == "DESCRIBE" else b""
                        headers += [("Content-Type", "application/sdp"),
                                    ("Cache-Control", "public, max-age=60"),
                                    ("Content-Base", f"rtsp://127.0.0.1:{self.port}/clip/")]
                    self.log.append((number, event.method, status))
                    writer.write(conn.send_response(Response(status, "X", Headers(headers), body)))
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("scheme, cache", [("digest", False), ("digest", True), ("basic", True)])
async def test_a_players_own_credentials_reach_the_connection_that_challenged_them(tmp_path, scheme, cache):
    origin = await StrictOrigin(scheme).start()
    sink = RecordingSink()
    server = ProxyServer(Config(listen_port=0, routes=(parse_route(f"/s=rtsp://127.0.0.1:{origin.port}"),),
                                cache_dir=str(tmp_path / "cache") if cache else ""), reporter=sink)
    await server.start()
    try:
        url = f"rtsp://127.0.0.1:{server.port}/s/clip"
        refused = await asyncio.to_thread(rtsp_request, url, "DESCRIBE", timeout=5)
        answered = await asyncio.to_thread(rtsp_request, url, "DESCRIBE", username=USER, password=PASSWORD,
                                           timeout=5)
    finally:
        await server.stop()
        await origin.stop()
    assert refused.status == 401 and f'realm="{REALM}"' in refused.headers.get("WWW-Authenticate")
    assert answered.status == 200 and b"m=video" in answered.body
    assert sink.of("cache.changed") == []  # public content, but fetched with the player's credentials
    challenged_on = [n for n, _, status in origin.log if status == 401][-1]
    assert origin.log[-1] == (challenged_on, "DESCRIBE", 200)
