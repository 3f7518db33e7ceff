"""Test helpers for split tests: ffmpeg players run in threads, and one ffmpeg we can SIGSTOP."""

from __future__ import annotations

import asyncio
import re
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor

from proxyd.rtsp.events import NEED_DATA, InterleavedFrame, Request, Response
from tests.peers import players
from tests.proxyd.runtime.rawplayer import RawPlayer

DECODE_ERRORS = re.compile(r"error while decoding|decode_slice_header|non-existing PPS|no frame!|"
                           r"concealing|Invalid NAL|missing picture|corrupt", re.I)


def play_many(pool: ThreadPoolExecutor, url: str, transports: list[str], *, duration: float | None = None,
              video_span: float | None = None, decode: bool = False, timeout: float = 40.0,
              extra_input_args: tuple[str, ...] = ()) -> list[Future]:
    """One ffmpeg_play per transport: `duration` seconds of output (-t), or a `video_span`."""
    return [pool.submit(players.ffmpeg_play, url, transport=t, duration=duration, video_span=video_span,
                        decode=decode, timeout=timeout, extra_input_args=extra_input_args)
            for t in transports]


def ffmpeg_popen(url: str, transport: str, duration: float) -> subprocess.Popen:
    """A packet-copying ffmpeg we control directly (to SIGSTOP it)."""
    argv = [players.binary("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-rtsp_transport",
            transport, "-i", url, "-map", "0:v?", "-c", "copy", "-t", f"{duration:.1f}", "-f", "null", "-"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)



class RecordingPlayer(RawPlayer):
    """The scripted TCP-interleaved player of the runtime tests, keeping every frame per channel."""

    def __init__(self, reader, writer) -> None:
        self.packets: dict[int, list[bytes]] = {}
        self.packet_seen = asyncio.Event()
        super().__init__(reader, writer)

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            self.conn.receive_data(data)
            while (event := self.conn.next_event()) is not NEED_DATA:
                if isinstance(event, InterleavedFrame):
                    self.packets.setdefault(event.channel, []).append(bytes(event.payload))
                    self.packet_seen.set()
                elif isinstance(event, Response):
                    self._responses.put_nowait(event)
                elif isinstance(event, Request):
                    self.requests_from_server.append(event)

    async def wait_packets(self, channel: int, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.packets.get(channel, ())) < count:
                self.packet_seen.clear()
                await self.packet_seen.wait()
