"""Cache benchmark: start latency of a cache hit vs the origin, origin bytes per K players, CPU cost.

    .venv/bin/python -m bench.cache --clients 1,10,100 --transport tcp

Prints, in one run:
  start     DESCRIBE -> first RTP packet (median of --repeat runs, raw RTSP client over TCP) for
            the clip directly from the origin, through proxyd without a cache (relay), and
            through proxyd from a fresh cache hit (goal: hit at least twice as fast as the origin)
  fill      for each K: K players start the same uncached clip at once; origin sessions opened
            and bytes fetched from the origin (goal: one copy whatever K is)
  cpu/css   for each K: proxyd CPU milliseconds per served client-stream-second from the cache
            (one client receiving the clip, video and audio together, for one second)
  replay    for each K of --replay-clients: K players of a 4 Mbit/s clip from the cache at staggered
            start positions, then K players of a 4 Mbit/s live stream split by proxyd, in the same
            run: CPU ms per client-stream-second and CPU us per packet delivered for both, and their
            ratio (bench/replay_cost.py); --baseline-repo DIR repeats both with DIR's proxyd.

    .venv/bin/python -m bench.cache --replay-only --replay-clients 1,10,100,300 --transport udp \
        --baseline-repo /work/wt/baseline
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import replay_cost  # noqa: E402
from bench.players_pool import run_players  # noqa: E402
from bench.procstat import cpu_seconds  # noqa: E402
from bench.rtsp_player import TcpPlayer  # noqa: E402
from tests.peers.media import ClipSpec, default_cache_dir, make_clip  # noqa: E402
from tests.peers.origin import GstOrigin, LiveOptions  # noqa: E402
from tests.peers.proxyd_proc import ProxydProcess  # noqa: E402

COMMITTED = replay_cost.COMMITTED  # proxyd's "cache: committed URL (N packets, B bytes[, E entries])" line
TIMEOUT_S = 15.0


def time_to_first_rtp(url: str) -> float:
    """Seconds from sending DESCRIBE to receiving the first interleaved RTP packet."""
    with TcpPlayer(url, TIMEOUT_S) as player:
        started = time.perf_counter()
        player.play()
        player.next_rtp()
        return time.perf_counter() - started


def committed(log: Path) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(3))) for m in COMMITTED.finditer(log.read_text(errors="replace"))]


def wait_committed(log: Path, count: int) -> list[tuple[str, int]]:
    deadline = time.monotonic() + 60
    while len(found := committed(log)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fill not committed; see {log}")
        time.sleep(0.05)  # polling another process's log
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="1,10,100")
    p.add_argument("--transport", default="tcp", choices=("tcp", "udp", "mixed"))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--clip-seconds", type=int, default=6)
    p.add_argument("--replay-clients", default="1,10,100,300", help="K for the replay-vs-split section")
    p.add_argument("--replay-clip-seconds", type=int, default=30, help="the replayed clip's length")
    p.add_argument("--seconds", type=float, default=10.0, help="replay section: play time per player")
    p.add_argument("--bitrate", type=int, default=4000, help="replay section: video kbit/s (clip and live)")
    p.add_argument("--ramp-ms", type=float, default=20.0, help="replay section: spacing of player launches")
    p.add_argument("--baseline-repo", help="replay section: also measure the proxyd of this checkout")
    p.add_argument("--no-split", action="store_true", help="replay section: skip the split")
    p.add_argument("--replay-only", action="store_true", help="run only the replay section")
    p.add_argument("--no-replay", action="store_true", help="skip the replay section")
    p.add_argument("--proxyd-arg", action="append", default=[], help="extra proxyd argument; repeatable")
    args = p.parse_args(argv)
    args.replay_clients = [int(k) for k in args.replay_clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    if not args.replay_only:
        start_fill_cpu(args, work)
    if not args.no_replay:
        spec = ClipSpec(duration_s=args.replay_clip_seconds, video_kbps=args.bitrate)
        clip = make_clip(spec, default_cache_dir())
        live = LiveOptions(bitrate_kbps=args.bitrate, pattern="snow")
        print(replay_cost.run(args, clip, live, work))
    return 0


def start_fill_cpu(args, work: Path) -> None:
    ks = [int(k) for k in args.clients.split(",")]
    clip = make_clip(ClipSpec(duration_s=args.clip_seconds), default_cache_dir())
    mounts = {"clip": clip.path, **{f"k{k}": clip.path for k in ks}}
    with GstOrigin(vod=mounts, stderr_path=work / "origin.log") as origin:
        relay = ProxydProcess(routes={"/b": origin.url("/")}, log_path=work / "relay.log").start()
        cached = ProxydProcess(routes={"/b": origin.url("/")}, log_path=work / "cache.log",
                               cache_dir=work / "cache", extra_args=["--cache-ttl", "3600"]).start()
        try:
            direct = [time_to_first_rtp(origin.url("/clip")) for _ in range(args.repeat)]
            relayed = [time_to_first_rtp(relay.url("/b/clip")) for _ in range(args.repeat)]
            run_players(cached.url("/b/clip"), 1, args.clip_seconds + 1, "tcp")
            wait_committed(cached.log_path, 1)
            hits = [time_to_first_rtp(cached.url("/b/clip")) for _ in range(args.repeat)]
            ms = {name: statistics.median(v) * 1000 for name, v in
                  (("origin", direct), ("relay", relayed), ("cache hit", hits))}
            print("start (DESCRIBE -> first RTP, median ms): " +
                  ", ".join(f"{k} {v:.1f}" for k, v in ms.items()) +
                  f"; hit is {ms['origin'] / ms['cache hit']:.1f}x faster than the origin")
            for k in ks:
                before = len(committed(cached.log_path))
                results = run_players(cached.url(f"/b/k{k}"), k, args.clip_seconds + 1, args.transport, ramp_s=0)
                url, size = wait_committed(cached.log_path, before + 1)[-1]
                print(f"fill K={k}: players ok {sum(r.ok for r in results)}/{k}, origin sessions "
                      f"{origin.session_count(f'/k{k}')}, origin bytes {size} (one copy = {size})")
            for k in ks:
                cpu0 = cpu_seconds(cached.pid)
                results = run_players(cached.url("/b/clip"), k, args.clip_seconds + 1, args.transport, ramp_s=0.01)
                cpu = cpu_seconds(cached.pid) - cpu0
                css = sum(min(r.video_frames / 25.0, args.clip_seconds) for r in results)  # client-seconds of the clip
                print(f"cache K={k}: players ok {sum(r.ok for r in results)}/{k}, cpu {cpu:.2f}s, "
                      f"cpu/css {1000 * cpu / css if css else float('nan'):.3f} ms")
        finally:
            relay.stop()
            cached.stop()


if __name__ == "__main__":
    sys.exit(main())
