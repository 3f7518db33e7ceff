"""A scripted in-process RTSP origin for cases GStreamer cannot produce on demand: it accepts UDP
SETUP but never sends UDP media (to force proxyd's TCP fallback), streams RTP only over TCP
interleaved, and sends an origin-initiated SET_PARAMETER (EndOfStream) after PLAY. With
`hold_teardown`, a TEARDOWN is answered only once the test sets `teardown_released` (a slow origin)."""

from __future__ import annotations

import asyncio
import struct

from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, Headers, Request, Response
from proxyd.rtsp.headers import parse_transport

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=scripted\r\nt=0 0\r\na=control:*\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n")


class ScriptedOrigin:
    def __init__(self, packets: int = 50, hold_teardown: bool = False) -> None:
        self.packets = packets
        self.hold_teardown = hold_teardown
        self.teardown_released = asyncio.Event()
        self.requests: list[Request] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> ScriptedOrigin:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())
        conn = RtspConnection(Role.SERVER)
        tcp_channel = None
        try:
            while data := await reader.read(65536):
                conn.receive_data(data)
                while (event := conn.next_event()) is not NEED_DATA:
                    if not isinstance(event, Request):
                        continue
                    self.requests.append(event)
                    headers = [("CSeq", str(event.cseq)), ("Session", "orig1;timeout=60")]
                    body = b""
                    if event.method == "DESCRIBE":
                        headers += [("Content-Base", f"rtsp://127.0.0.1:{self.port}/movie/"),
                                    ("Content-Type", "application/sdp")]
                        body = SDP
                    elif event.method == "SETUP":
                        spec = parse_transport(event.headers.get("Transport"))[0]
                        if spec.is_tcp:
                            tcp_channel = spec.interleaved[0]
                            headers.append(("Transport", f"RTP/AVP/TCP;unicast;interleaved={tcp_channel}-"
                                                         f"{tcp_channel + 1};ssrc=0000BEEF"))
                        else:
                            headers.append(("Transport", f"RTP/AVP;unicast;client_port={spec.client_port[0]}-"
                                                         f"{spec.client_port[1]};server_port=9-10"))
                    elif event.method == "TEARDOWN" and self.hold_teardown:
                        await self.teardown_released.wait()
                    elif event.method == "PLAY":
                        headers.append(("RTP-Info", f"url=rtsp://127.0.0.1:{self.port}/movie/track1;seq=1"))
                        if tcp_channel is not None:
                            self.tasks.add(asyncio.get_running_loop().create_task(
                                self._stream(conn, writer, tcp_channel)))
                    writer.write(conn.send_response(Response(200, "OK", Headers(headers), body)))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _stream(self, conn: RtspConnection, writer: asyncio.StreamWriter, channel: int) -> None:
        for seq in range(self.packets):
            packet = struct.pack("!BBHII", 0x80, 96, seq, seq * 3600, 0xBEEF) + bytes(100)
            writer.write(conn.send_frame(channel, packet))
            await asyncio.sleep(0.005)  # pacing of the media source, not synchronisation
        writer.write(conn.send_request(Request(
            "SET_PARAMETER", f"rtsp://127.0.0.1:{self.port}/movie/",
            Headers([("Session", "orig1"), ("Content-Type", "text/parameters")]), b"EndOfStream: 1\r\n")))
