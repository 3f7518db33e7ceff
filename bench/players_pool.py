"""Run many ffmpeg players against one URL at the same time (threads around subprocesses), and
explain the ones that failed."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.peers.players import PlayResult, ffmpeg_play

# A late joiner may wait up to a GOP plus ffmpeg's stream probing before its first frame; on a
# loaded 2-core machine ffmpeg's own start-up (exec, probing 5 s of input) takes several seconds.
STARTUP_ALLOWANCE_S = 20.0
MIN_SHARE_OF_EXPECTED_FRAMES = 0.5


def transports_for(count: int, transport: str) -> list[str]:
    if transport == "mixed":
        return ["udp" if i % 2 == 0 else "tcp" for i in range(count)]
    return [transport] * count


def run_players(url: str, count: int, seconds: float, transport: str,
                ramp_s: float = 0.02, start_at: Callable[[int], float] | None = None) -> list[PlayResult]:
    """Start `count` packet-copying ffmpeg players (no decoding, so the players stay cheap),
    `ramp_s` apart, each playing `seconds`; return their results in start order. Each player's
    deadline counts from its own launch. `start_at(i)`: player i's start position (npt seconds,
    sent as PLAY Range by ffmpeg's -ss)."""
    transports = transports_for(count, transport)

    def play(index: int) -> PlayResult:
        seek = ["-ss", f"{start_at(index):.3f}"] if start_at is not None else []
        return ffmpeg_play(url, transport=transports[index], duration=seconds, decode=False,
                           timeout=seconds + STARTUP_ALLOWANCE_S, extra_input_args=seek)

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="player") as pool:
        futures = []
        for index in range(count):
            if index and ramp_s:
                time.sleep(ramp_s)  # load pacing (clients arrive spread out), not synchronisation
            futures.append(pool.submit(play, index))
        return [f.result() for f in futures]


def player_ok(result: PlayResult, expected_video_frames: float) -> bool:
    return result.ok and result.video_frames >= expected_video_frames * MIN_SHARE_OF_EXPECTED_FRAMES


def failure_reason(result: PlayResult, expected_video_frames: float) -> str | None:
    """None for a successful player, else a short reason (grouped in the bench's summary)."""
    if player_ok(result, expected_video_frames):
        return None
    if result.timed_out:
        return f"killed at deadline, {'no' if not result.video_frames else 'some'} video"
    if result.returncode != 0:
        lines = [ln for ln in result.stderr_tail.strip().splitlines() if ln.strip()]
        return f"rc={result.returncode}: {lines[-1][:120] if lines else 'no stderr'}"
    if not result.video_frames:
        return "exited cleanly without video"
    return f"too few frames (< {MIN_SHARE_OF_EXPECTED_FRAMES:.0%} of expected)"


def summarize(results: list[PlayResult], expected_video_frames: float) -> str:
    """'udp 25/25 tcp 20/25; tcp: 5x killed at deadline, no video' style one-liner."""
    per_transport: dict[str, list[int]] = {}
    reasons: dict[str, collections.Counter] = {}
    for r in results:
        counts = per_transport.setdefault(r.transport, [0, 0])
        counts[1] += 1
        why = failure_reason(r, expected_video_frames)
        if why is None:
            counts[0] += 1
        else:
            reasons.setdefault(r.transport, collections.Counter())[why] += 1
    text = " ".join(f"{t} {ok}/{n}" for t, (ok, n) in sorted(per_transport.items()))
    for t, counter in sorted(reasons.items()):
        text += f"; {t}: " + ", ".join(f"{n}x {why}" for why, n in counter.most_common())
    return text
