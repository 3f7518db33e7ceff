"""Soak: a mix of cached, relayed and split content played by many players for a long time, with
proxyd's memory, file descriptors, threads and asyncio tasks sampled throughout.

    .venv/bin/python -m bench.soak --players 100 --seconds 3600      # the hour-long soak
    .venv/bin/python -m bench.soak                                   # short default (120 s, 30 players)

Players are ffmpeg processes copying packets (no decoding), each one looping: play, stop, start again,
over three routes: /vod (a cached clip), /relay (an origin that forbids caching: relayed) and /tv
(a live stream split to all its players). Prints one line per --sample-interval, then per resource
the median of the first and last third of the samples (after --warmup seconds) and their ratio
(flat: close to 1.0), plays started and failed per route. Exit status 1 if a resource grew more than
--max-growth times (plus a small absolute slack) or proxyd died.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers.media import ClipSpec, default_cache_dir, make_clip  # noqa: E402
from tests.peers.origin import GstOrigin  # noqa: E402
from tests.peers.players import ffmpeg_play  # noqa: E402
from tests.peers.proxyd_proc import ProxydProcess  # noqa: E402

ROUTES = ("vod", "relay", "tv")
# Absolute slack on top of --max-growth, so that 2 -> 3 tasks is not "growth".
NOISE = {"rss_kib": 4096, "fds": 10, "threads": 2, "tasks": 10}


class ProbedProxyd(ProxydProcess):
    """proxyd run through bench.taskprobe, which writes its asyncio task count to `probe_file`."""

    def __init__(self, *, probe_file: Path, **kwargs):
        super().__init__(env={"TASKPROBE_FILE": str(probe_file)}, **kwargs)
        self.probe_file = probe_file

    def argv(self) -> list[str]:
        argv = super().argv()
        return [argv[0], "-m", "bench.taskprobe", *argv[3:]]


def sample(proxy: ProbedProxyd) -> dict[str, int]:
    pid = proxy.pid
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        tasks = int(proxy.probe_file.read_text())
    except (FileNotFoundError, ValueError):
        tasks = -1
    return {"rss_kib": int(fields["VmRSS"].split()[0]), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(fields["Threads"]), "tasks": tasks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--play-seconds", type=float, default=8, help="length of one play before it restarts")
    parser.add_argument("--sample-interval", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=20, help="seconds left out of the flatness figures")
    parser.add_argument("--max-growth", type=float, default=1.5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    clip = make_clip(ClipSpec(duration_s=max(3, int(args.play_seconds))), default_cache_dir())
    cached = GstOrigin(vod={"clip": clip.path}, live="live", stderr_path=work / "origin.log")
    uncacheable = GstOrigin(vod={"clip": clip.path}, headers={"Cache-Control": "no-cache"},
                            stderr_path=work / "origin-nocache.log")
    with cached, uncacheable:
        proxy = ProbedProxyd(probe_file=work / "tasks", log_path=work / "proxyd.log", cache_dir=work / "cache",
                             routes={"/vod": cached.url("/"), "/relay": uncacheable.url("/"),
                                     "/tv": cached.url("/")},
                             extra_args=["--live", "/tv", "--cache-ttl", "3600"]).start()
        urls = {"vod": proxy.url("/vod/clip"), "relay": proxy.url("/relay/clip"), "tv": proxy.url("/tv/live")}
        deadline = time.monotonic() + args.seconds
        plays: collections.Counter = collections.Counter()
        failures: collections.Counter = collections.Counter()
        lock = threading.Lock()

        def player(index: int) -> None:
            route = ROUTES[index % len(ROUTES)]
            transport = "udp" if (index // len(ROUTES)) % 2 else "tcp"
            while time.monotonic() < deadline - 1:
                result = ffmpeg_play(urls[route], transport=transport, decode=False,
                                     duration=min(args.play_seconds, max(1.0, deadline - time.monotonic())),
                                     timeout=args.play_seconds + 30)
                with lock:
                    plays[route] += 1
                    failures[route] += 0 if result.ok else 1

        started = time.monotonic()
        samples: list[tuple[float, dict[str, int]]] = []
        print(f"{'t':>6} {'rss MiB':>8} {'fds':>6} {'threads':>7} {'tasks':>6}  plays", flush=True)
        with ThreadPoolExecutor(args.players, thread_name_prefix="soak-player") as pool:
            for index in range(args.players):
                pool.submit(player, index)
                time.sleep(0.05)  # arrivals spread out, as on a real node (pacing, not synchronisation)
            while time.monotonic() < deadline:
                time.sleep(min(args.sample_interval, max(0.0, deadline - time.monotonic())))
                if proxy.proc.poll() is not None:
                    print(f"proxyd died with status {proxy.proc.returncode}; log: {work / 'proxyd.log'}")
                    return 1
                t, s = time.monotonic() - started, sample(proxy)
                samples.append((t, s))
                print(f"{t:6.0f} {s['rss_kib'] / 1024:8.1f} {s['fds']:6} {s['threads']:7} {s['tasks']:6}  "
                      f"{sum(plays.values())}", flush=True)
        idle = sample(proxy)
        rc = proxy.stop()
    steady = [s for t, s in samples if t >= args.warmup] or [s for _, s in samples]
    third = max(1, len(steady) // 3)
    grew = False
    print(f"\n{'resource':8} {'first':>9} {'last':>9} {'ratio':>6}   (median of first/last third after warm-up)")
    for key in ("rss_kib", "fds", "threads", "tasks"):
        first = statistics.median(s[key] for s in steady[:third])
        last = statistics.median(s[key] for s in steady[-third:])
        ratio = last / first if first > 0 else float("nan")
        grew |= last > first * args.max_growth + NOISE[key]
        print(f"{key:8} {first:9.0f} {last:9.0f} {ratio:6.2f}")
    print(f"after the players left: rss {idle['rss_kib'] / 1024:.1f} MiB, fds {idle['fds']}, "
          f"threads {idle['threads']}, tasks {idle['tasks']}; proxyd exit status {rc}")
    for route in ROUTES:
        print(f"{route:6} plays {plays[route]:6}  failed {failures[route]}")
    print(f"players {args.players}, {args.seconds:.0f} s; proxyd log {work / 'proxyd.log'}")
    return 1 if grew or rc != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
