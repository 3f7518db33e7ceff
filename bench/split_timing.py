"""What a split's read coalescing does to the timing a player sees, against the origin's, in one run.

    .venv/bin/python -m bench.split_timing --seconds 20 --repeats 2

One raw UDP player (bench/rtsp_player.py) plays the live origin directly, then through a fresh
proxyd split with --split-read-coalesce 0 (every socket wakes proxyd), then with the defaults
(video wakes proxyd, audio read with it, a frame's tail read once after --split-frame-settle).
Per stream it prints, past the first 3 s (a split joiner gets the buffered GOP at once), the spread of the transit time (arrival clock minus RTP timestamp in seconds,
minus its median): the 1st..99th percentile range and the largest value, in ms. The origin's own
spread is what the player would see without proxyd; coalescing adds up to one video frame interval
(bounded by --split-read-coalesce) to the audio's and up to --split-frame-settle to a frame's tail.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relay import LIVE_MOUNT, ROUTE_PREFIX  # noqa: E402
from bench.rtsp_player import UdpPlayer  # noqa: E402
from tests.peers.origin import GstOrigin, LiveOptions  # noqa: E402
from tests.peers.proxyd_proc import ProxydProcess  # noqa: E402

CLOCK_RATES = (90000, 48000)  # the live mount's video and audio (tests/peers/gst_origin.py)
SETTLE_S = 3.0  # samples of the first seconds left out: a split joiner's key-frame burst comes at once
SETUPS = (("origin", None), ("split, coalescing off", ["--split-read-coalesce", "0"]), ("split, defaults", []))


def transit_spread(samples: list[tuple[float, int]], rate: int) -> tuple[float, float, float]:
    """(p1, p99, max) of arrival minus media time in ms, around the median; RTP timestamp wrap ignored
    (a 20 s run of a random start wraps with a tiny chance: its row would show it)."""
    samples = [s for s in samples if s[0] >= samples[0][0] + SETTLE_S] if samples else []
    if len(samples) < 100:
        return (float("nan"),) * 3
    values = [arrival - stamp / rate for arrival, stamp in samples]
    middle = statistics.median(values)
    values = sorted(1000 * (v - middle) for v in values)
    return values[len(values) // 100], values[-len(values) // 100], values[-1]


def play(url: str, seconds: float) -> list[list[tuple[float, int]]]:
    samples: list[list[tuple[float, int]]] = [[], []]
    clock = time.monotonic

    def keep(index: int, data: bytes) -> None:
        if index < 2:
            samples[index].append((clock(), int.from_bytes(data[4:8], "big")))

    with UdpPlayer(url, 10.0) as player:
        player.play()
        player.receive(seconds, keep)
    return samples


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--bitrate", type=int, default=4000, help="live video bitrate, kbit/s")
    args = p.parse_args(argv)
    live = LiveOptions(bitrate_kbps=args.bitrate, gop_frames=25, pattern="snow")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-split-timing-") as tmp:
        work = Path(tmp)
        with GstOrigin(live=LIVE_MOUNT, live_options=live, stderr_path=work / "origin.log") as origin:
            for repeat in range(args.repeats):
                for name, extra in SETUPS:
                    if extra is None:
                        rows.append((repeat, name, play(origin.url(LIVE_MOUNT), args.seconds)))
                        continue
                    proxyd = ProxydProcess(routes={ROUTE_PREFIX: origin.url("/")}, log_path=work / "proxyd.log",
                                           cache_dir=work / "cache", extra_args=["--live", ROUTE_PREFIX, *extra])
                    proxyd.start()
                    try:
                        rows.append((repeat, name, play(proxyd.url(f"{ROUTE_PREFIX}/{LIVE_MOUNT}"), args.seconds)))
                    finally:
                        proxyd.stop()
    print(f"{'repeat':>6} {'path':<22} {'stream':<6} {'packets':>7} {'p1 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for repeat, name, samples in rows:
        for index, kind in enumerate(("video", "audio")):
            low, high, top = transit_spread(samples[index], CLOCK_RATES[index])
            print(f"{repeat:>6} {name:<22} {kind:<6} {len(samples[index]):>7} {low:>7.1f} {high:>7.1f} {top:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
