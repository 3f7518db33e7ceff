"""Soak: a mix of cached, relayed and split content played by many players for a long time, with
proxyd's memory, file descriptors, threads and asyncio tasks sampled throughout.

    .venv/bin/python -m bench.soak --players 100 --seconds 3600      # the hour-long soak
    .venv/bin/python -m bench.soak                                   # short default (120 s, 30 players)

Each player loops: play, stop, start again, over three routes: /vod (a cached clip), /relay (an
origin that forbids caching: relayed) and /tv (a live stream split to all its players). Most players
are raw RTSP players (bench/rtsp_player.py: threads counting RTP, alternately interleaved TCP and
UDP), so that a hundred of them cost the 2-core machine less than proxyd; --ffmpeg-players of them are
packet-copying ffmpeg processes (a real client's RTSP stack in the mix). A raw play counts as failed
when a stream it set up got fewer than MIN_PACKETS_PER_S packets per second.

Prints one line per --sample-interval, then per resource the median of the first and last third of
the samples (after --warmup seconds) and their ratio (flat: close to 1.0), peak RSS, plays and
failures per route and player kind, and the CPU used by proxyd, the players and the origins (so
that proxyd, not a starved player, is what was measured). Exit status 1 if a resource grew more
than --max-growth times (plus a small absolute slack), a play failed, or proxyd died.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procstat import cpu_seconds, peak_rss_kib  # noqa: E402
from bench.rtsp_player import TcpPlayer, UdpPlayer  # noqa: E402
from tests.peers.media import ClipSpec, default_cache_dir, make_clip  # noqa: E402
from tests.peers.origin import GstOrigin  # noqa: E402
from tests.peers.players import ffmpeg_play  # noqa: E402
from tests.peers.proxyd_proc import ProxydProcess  # noqa: E402

ROUTES = ("vod", "relay", "tv")
# Absolute slack on top of --max-growth, so that 2 -> 3 tasks is not "growth".
NOISE = {"rss_kib": 4096, "fds": 10, "threads": 2, "tasks": 10}
# The clip carries 25 video frames/s and 43 AAC frames/s; a play keeping up gets far more than this.
MIN_PACKETS_PER_S = 10
CONNECT_TIMEOUT_S = 20.0


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


def fd_kinds(pid: int) -> str:
    """proxyd's open descriptors by kind ("socket 40, file 3, ..."): what is left after the players."""
    kinds: collections.Counter = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        kinds["file" if target.startswith("/") else target.split(":")[0]] += 1
    return ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())


def settle(proxy: ProbedProxyd, baseline_fds: int, limit: float) -> tuple[dict[str, int], float]:
    """proxyd's resources once its descriptors are back to `baseline_fds` (before the players), or at
    `limit`: sessions whose player left without a TEARDOWN processed live until the session timeout."""
    started = time.monotonic()
    current = sample(proxy)
    while current["fds"] > baseline_fds and time.monotonic() - started < limit:
        time.sleep(1.0)  # polling interval for a condition, not synchronisation
        current = sample(proxy)
    return current, time.monotonic() - started


def raw_play(url: str, transport: str, seconds: float) -> bool:
    """One play by a raw player; True when every stream it set up kept receiving RTP."""
    try:
        with (UdpPlayer if transport == "udp" else TcpPlayer)(url, CONNECT_TIMEOUT_S) as player:
            player.play()
            counts = player.count_rtp(seconds)
    except (OSError, ConnectionError, ValueError):
        return False
    return min(counts) >= MIN_PACKETS_PER_S * seconds


def ffmpeg_player_play(url: str, transport: str, seconds: float) -> bool:
    return ffmpeg_play(url, transport=transport, decode=False, duration=seconds, timeout=seconds + 30).ok


def cpu_line(label: str, seconds: float, elapsed: float) -> str:
    return f"{label} {seconds:.0f} s ({100 * seconds / elapsed:.0f} % of one core)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=30)
    parser.add_argument("--ffmpeg-players", type=int, default=6, help="how many of --players are ffmpeg")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--play-seconds", type=float, default=8, help="length of one play before it restarts")
    parser.add_argument("--sample-interval", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=20, help="seconds left out of the flatness figures")
    parser.add_argument("--max-growth", type=float, default=1.5)
    parser.add_argument("--settle", type=float, default=75,
                        help="seconds at most to wait, after the players left, for proxyd's descriptors to be back "
                             "to their count before the players (proxyd's session timeout is 60 s)")
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
                             # every player comes from 127.0.0.1; a closing connection may still count
                             extra_args=["--live", "/tv", "--cache-ttl", "3600",
                                         "--max-connections-per-address", str(2 * args.players + 20)]).start()
        urls = {"vod": proxy.url("/vod/clip"), "relay": proxy.url("/relay/clip"), "tv": proxy.url("/tv/live")}
        deadline = time.monotonic() + args.seconds
        plays: collections.Counter = collections.Counter()
        failures: collections.Counter = collections.Counter()
        lock = threading.Lock()

        def player(index: int) -> None:
            route = ROUTES[index % len(ROUTES)]
            transport = "udp" if (index // len(ROUTES)) % 2 else "tcp"  # each route gets both, in both kinds
            kind = "ffmpeg" if index < args.ffmpeg_players else "raw"
            play = ffmpeg_player_play if kind == "ffmpeg" else raw_play
            while (started_play := time.monotonic()) < deadline - 1:
                seconds = min(args.play_seconds, max(1.0, deadline - started_play))
                ok = play(urls[route], transport, seconds)
                with lock:
                    plays[route, kind, transport] += 1
                    failures[route, kind, transport] += 0 if ok else 1
                if not ok:  # a failed play must not turn into a tight retry loop: wait out its slot
                    time.sleep(max(0.0, started_play + seconds - time.monotonic()))

        def origins_cpu() -> float:
            return sum(cpu_seconds(o.pid) for o in (cached, uncacheable) if o.pid)

        before_players = sample(proxy)
        started = time.monotonic()
        cpu_at_start = (cpu_seconds(proxy.pid), origins_cpu(), os.times(), resource.getrusage(resource.RUSAGE_CHILDREN))
        load_at_start = os.getloadavg()
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
        elapsed = time.monotonic() - started
        proxyd_cpu, origin_cpu = cpu_seconds(proxy.pid) - cpu_at_start[0], origins_cpu() - cpu_at_start[1]
        own, children = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
        raw_cpu = own.user + own.system - cpu_at_start[2].user - cpu_at_start[2].system
        ffmpeg_cpu = children.ru_utime + children.ru_stime - cpu_at_start[3].ru_utime - cpu_at_start[3].ru_stime
        peak = peak_rss_kib(proxy.pid)
        at_once = sample(proxy)
        idle, settled_after = settle(proxy, before_players["fds"], args.settle)
        idle_fds = fd_kinds(proxy.pid)
        rc = proxy.stop()
    steady = [s for t, s in samples if t >= args.warmup] or [s for _, s in samples]
    third = max(1, len(steady) // 3)
    grew = False
    print(f"\n{'resource':8} {'start':>9} {'first':>9} {'last':>9} {'end':>9} {'max':>9} {'ratio':>6}"
          "   (first/last: median of the first/last third after warm-up; ratio last/first)")
    for key in ("rss_kib", "fds", "threads", "tasks"):
        first = statistics.median(s[key] for s in steady[:third])
        last = statistics.median(s[key] for s in steady[-third:])
        ratio = last / first if first > 0 else float("nan")
        grew |= last > first * args.max_growth + NOISE[key]
        unit = 1024 if key == "rss_kib" else 1  # RSS shown in MiB
        row = (samples[0][1][key], first, last, samples[-1][1][key], max(s[key] for _, s in samples))
        print(f"{'rss MiB' if unit > 1 else key:8} " + " ".join(f"{v / unit:9.1f}" for v in row) + f" {ratio:6.2f}")
    print(f"proxyd peak RSS (VmHWM) {peak / 1024 if peak else float('nan'):.1f} MiB")
    print(f"before the players: rss {before_players['rss_kib'] / 1024:.1f} MiB, fds {before_players['fds']}, "
          f"tasks {before_players['tasks']}; when they left: fds {at_once['fds']}, tasks {at_once['tasks']}")
    print(f"after the players left ({settled_after:.0f} s later): rss {idle['rss_kib'] / 1024:.1f} MiB, "
          f"fds {idle['fds']} ({idle_fds}), threads {idle['threads']}, tasks {idle['tasks']}; "
          f"proxyd exit status {rc}")
    for key in sorted(plays):
        print(f"{'/'.join(key):18} plays {plays[key]:6}  failed {failures[key]}")
    total_failed = sum(failures.values())
    print(f"all: plays {sum(plays.values())}, failed {total_failed}")
    print(f"CPU over {elapsed:.0f} s: " + ", ".join([
        cpu_line("proxyd", proxyd_cpu, elapsed), cpu_line("raw players + sampling", raw_cpu, elapsed),
        cpu_line("ffmpeg players", ffmpeg_cpu, elapsed), cpu_line("origins", origin_cpu, elapsed)]))
    print(f"load average at start {load_at_start[0]:.1f}, at end {os.getloadavg()[0]:.1f}")
    print(f"players {args.players} ({args.ffmpeg_players} ffmpeg), {args.seconds:.0f} s; proxyd log {work / 'proxyd.log'}")
    return 1 if grew or rc != 0 or total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
