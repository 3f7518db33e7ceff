"""Many raw RTSP players (bench/rtsp_player.py) at once, the cheap stand-in for ffmpeg players that
lets K = 300 fit on a small machine next to proxyd: the same call and results as
bench.players_pool.run_players. The players run as threads spread over a few worker processes (one
Python process would be bound by its GIL); each plays `seconds` from its start position and counts
video frames (distinct RTP timestamps of the first stream, the video in these benches: a live
encoder's slices may each carry the marker bit) and audio packets.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from bench.players_pool import STARTUP_ALLOWANCE_S, transports_for
from bench.rtsp_player import TcpPlayer, UdpPlayer
from tests.peers.players import PlayResult

PLAYERS_PER_PROCESS = 50


def count_frames_tcp(player: TcpPlayer, seconds: float) -> tuple[int, int]:
    video = audio = 0
    last = b""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        player.sock.settimeout(left)
        try:
            frame = player.next_rtp()
        except (TimeoutError, ConnectionError):
            break
        if frame.channel == 0:
            if (stamp := frame.payload[4:8]) != last:
                video, last = video + 1, stamp
        else:
            audio += 1
    return video, audio


def count_frames_udp(player: UdpPlayer, seconds: float) -> tuple[int, int]:
    video = audio = 0
    last = b""

    def count(index: int, data: bytes) -> None:
        nonlocal video, audio, last
        if index == 0:
            if (stamp := data[4:8]) != last:
                video, last = video + 1, stamp
        else:
            audio += 1

    player.receive(seconds, count)
    return video, audio


def play_one(url: str, transport: str, seconds: float, start: float) -> PlayResult:
    launched = time.monotonic()
    kind, count = (UdpPlayer, count_frames_udp) if transport == "udp" else (TcpPlayer, count_frames_tcp)
    try:
        with kind(url, STARTUP_ALLOWANCE_S) as player:
            player.play(start)
            first = time.monotonic() - launched
            video, audio = count(player, seconds)
        return PlayResult("raw", url, transport, 0, video, audio, first, time.monotonic() - launched, False, "")
    except (OSError, ConnectionError) as exc:
        return PlayResult("raw", url, transport, 1, 0, 0, None, time.monotonic() - launched, False, str(exc))


def play_group(url: str, jobs: list[tuple[float, str, float]], seconds: float) -> list[PlayResult]:
    """One worker process: players (launch delay, transport, start position) as threads."""
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="raw-player") as pool:
        futures = []
        for delay, transport, start in jobs:
            if (wait := began + delay - time.monotonic()) > 0:
                time.sleep(wait)  # load pacing (clients arrive spread out), not synchronisation
            futures.append(pool.submit(play_one, url, transport, seconds, start))
        return [f.result() for f in futures]


def run_raw_players(url: str, count: int, seconds: float, transport: str,
                    ramp_s: float = 0.02, start_at: Callable[[int], float] | None = None) -> list[PlayResult]:
    """Like run_players: `count` raw players `ramp_s` apart, player i from npt start_at(i)."""
    transports = transports_for(count, transport)
    workers = max(1, math.ceil(count / PLAYERS_PER_PROCESS))
    groups: list[list[int]] = [list(range(w, count, workers)) for w in range(workers)]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded bench process
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(play_group, url, [(i * ramp_s, transports[i], start_at(i) if start_at else 0.0)
                                                 for i in group], seconds) for group in groups]
        by_index: dict[int, PlayResult] = {}
        for group, future in zip(groups, futures):
            by_index.update(zip(group, future.result()))
    return [by_index[i] for i in range(count)]
