"""Run many ffmpeg players against one URL at the same time (threads around subprocesses)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.peers.players import PlayResult, ffmpeg_play

# A late joiner may wait up to a GOP plus ffmpeg's stream probing before its first frame.
STARTUP_ALLOWANCE_S = 20.0


def transports_for(count: int, transport: str) -> list[str]:
    if transport == "mixed":
        return ["udp" if i % 2 == 0 else "tcp" for i in range(count)]
    return [transport] * count


def run_players(url: str, count: int, seconds: float, transport: str,
                ramp_s: float = 0.02) -> list[PlayResult]:
    """Start `count` packet-copying ffmpeg players (no decoding, so the players stay cheap),
    `ramp_s` apart, each playing `seconds`; return their results in start order."""
    transports = transports_for(count, transport)

    def play(index: int) -> PlayResult:
        return ffmpeg_play(url, transport=transports[index], duration=seconds, decode=False,
                           timeout=seconds + STARTUP_ALLOWANCE_S + ramp_s * count)

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="player") as pool:
        futures = []
        for index in range(count):
            if index and ramp_s:
                time.sleep(ramp_s)  # load pacing (clients arrive spread out), not synchronisation
            futures.append(pool.submit(play, index))
        return [f.result() for f in futures]
