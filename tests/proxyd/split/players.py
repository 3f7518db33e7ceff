"""Test helpers for split tests: ffmpeg players run in threads, and one ffmpeg we can SIGSTOP."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor

from tests.peers import players

DECODE_ERRORS = re.compile(r"error while decoding|decode_slice_header|non-existing PPS|no frame!|"
                           r"concealing|Invalid NAL|missing picture|corrupt", re.I)


def play_many(pool: ThreadPoolExecutor, url: str, transports: list[str], *, duration: float,
              decode: bool = False, timeout: float = 40.0) -> list[Future]:
    return [pool.submit(players.ffmpeg_play, url, transport=t, duration=duration, decode=decode,
                        timeout=timeout) for t in transports]


def ffmpeg_popen(url: str, transport: str, duration: float) -> subprocess.Popen:
    """A packet-copying ffmpeg we control directly (to SIGSTOP it)."""
    argv = [players.binary("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-rtsp_transport",
            transport, "-i", url, "-map", "0:v?", "-c", "copy", "-t", f"{duration:.1f}", "-f", "null", "-"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
