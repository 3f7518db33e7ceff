"""Cache replay against the live split, same machine, same run: CPU per client-stream-second and
CPU µs per RTP packet delivered (bench.cache's `replay` section).

For each K, K ffmpeg players replay a committed 4 Mbit/s clip from proxyd's cache, each starting at
its own position (player i at npt i/K of the clip's spare length, so no two read the same packets
at the same time); then K players of a 4 Mbit/s live stream split by a fresh proxyd (`--live`).
Packets delivered = client-stream-seconds x the stream's packets per second: the committed entry's
packet count over its duration for the cache, a raw RTSP client's count on the live origin for the
split. With --baseline-repo the same two measurements run again with the proxyd of that checkout.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from bench.players_pool import run_players, summarize
from bench.procstat import cpu_times
from bench.relay import LIVE_MOUNT, ROUTE_PREFIX, ModeResult, measure
from bench.rtsp_player import TcpPlayer
from tests.peers.origin import GstOrigin
from tests.peers.proxyd_proc import REPO_ROOT, ProxydProcess

COMMITTED = re.compile(r"cache: committed (\S+) \((\d+) packets, (\d+) bytes(?:, \d+ entries)?\)")
TIMEOUT_S = 15.0


@dataclasses.dataclass
class CostRow:
    kind: str  # "cache" or "split"
    code: str  # "this" or "baseline"
    clients: int
    ok: int
    css: float  # client-stream-seconds delivered
    cpu_s: float
    sys_s: float
    packets_per_s: float
    summary: str = ""

    @property
    def ms_per_css(self) -> float:
        return 1000 * self.cpu_s / self.css if self.css else float("nan")

    @property
    def us_per_packet(self) -> float:
        packets = self.css * self.packets_per_s
        return 1e6 * self.cpu_s / packets if packets else float("nan")


def count_rtp_packets(url: str, seconds: float) -> float:
    """RTP packets per second (all streams) that one RTSP/TCP player of `url` receives."""
    with TcpPlayer(url, TIMEOUT_S) as player:
        player.play()
        player.next_rtp()
        started = now = time.monotonic()  # from the first packet: set-up time is not stream time
        packets = 0
        while now - started < seconds:
            player.next_rtp()
            now = time.monotonic()
            packets += 1
        return packets / (now - started)


def entry_packet_rate(log: Path, clip_seconds: float) -> float | None:
    found = COMMITTED.findall(log.read_text(errors="replace"))
    return int(found[-1][1]) / clip_seconds if found else None


def wait_for_entry(log: Path) -> None:
    deadline = time.monotonic() + 60
    while not COMMITTED.search(log.read_text(errors="replace")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"fill not committed; see {log}")
        time.sleep(0.05)  # polling another process's log


def measure_cache(code: str, repo: Path, clip, ks: list[int], args, workdir: Path) -> list[CostRow]:
    """Fill the clip once through a fresh proxyd of `repo`, then K staggered players per K."""
    with GstOrigin(vod={"clip": clip.path}, stderr_path=workdir / f"replay-origin-{code}.log") as origin:
        proxyd = ProxydProcess(routes={"/b": origin.url("/")}, log_path=workdir / f"replay-{code}.log",
                               cache_dir=workdir / f"replay-cache-{code}", repo=repo,
                               extra_args=["--cache-ttl", "3600", *args.proxyd_arg]).start()
        try:
            url = proxyd.url("/b/clip")
            run_players(url, 1, clip.duration_s + 1, "tcp")  # the fill
            wait_for_entry(proxyd.log_path)
            pps = entry_packet_rate(proxyd.log_path, clip.duration_s)
            spare = max(0.0, clip.duration_s - args.seconds - 1)
            rows = []
            for k in ks:
                before = cpu_times(proxyd.pid)
                results = run_players(url, k, args.seconds, args.transport, ramp_s=args.ramp_ms / 1000,
                                      start_at=lambda i, k=k: spare * i / k)
                user, system = cpu_times(proxyd.pid)
                expected = args.seconds * clip.spec.fps
                css = sum(min(r.video_frames / clip.spec.fps, args.seconds) for r in results)
                rows.append(CostRow("cache", code, k, sum(r.ok and r.video_frames >= 0.95 * expected
                                                          for r in results),
                                    css, user + system - sum(before), system - before[1], pps or 0.0,
                                    summarize(results, expected)))
            return rows
        finally:
            proxyd.stop()


def measure_split(code: str, repo: Path, ks: list[int], args, live, workdir: Path) -> list[CostRow]:
    """K players of the live stream through a fresh splitting proxyd of `repo`, per K."""
    rows = []
    origin_log = workdir / f"split-origin-{code}.log"
    with GstOrigin(live=LIVE_MOUNT, live_options=live, stderr_path=origin_log) as origin:
        pps = count_rtp_packets(origin.url(LIVE_MOUNT), 3.0)
        for k in ks:
            origin.restart()
            proxyd = ProxydProcess(routes={ROUTE_PREFIX: origin.url("/")},
                                   log_path=workdir / f"split-{code}-k{k}.log", repo=repo,
                                   extra_args=["--live", ROUTE_PREFIX, *args.proxyd_arg]).start()
            try:
                row: ModeResult = measure("proxyd", proxyd.url(f"{ROUTE_PREFIX}/{LIVE_MOUNT}"), k, args,
                                          proxyd=proxyd, origin=origin)
            finally:
                proxyd.stop()
            expected = args.seconds * live.fps
            rows.append(CostRow("split", code, k, sum(r.ok and r.video_frames >= 0.95 * expected
                                                      for r in row.results),
                                row.client_stream_seconds(live.fps), row.cpu_s or 0.0, row.sys_s or 0.0, pps,
                                summarize(row.results, expected)))
    return rows


def format_rows(rows: list[CostRow]) -> str:
    header = (f"{'code':<9} {'kind':<6} {'K':>4} {'ok>=95%':>8} {'css':>8} {'cpu s':>7} {'sys%':>5} "
              f"{'pkt/s':>6} {'cpu ms/css':>10} {'cpu us/pkt':>10}")
    lines = [header, "-" * len(header)]
    for r in rows:
        sys_share = 100 * r.sys_s / r.cpu_s if r.cpu_s else 0.0
        lines.append(f"{r.code:<9} {r.kind:<6} {r.clients:>4} {f'{r.ok}/{r.clients}':>8} {r.css:>8.1f} "
                     f"{r.cpu_s:>7.2f} {sys_share:>5.0f} {r.packets_per_s:>6.0f} {r.ms_per_css:>10.3f} "
                     f"{r.us_per_packet:>10.2f}")
    lines.append("")
    for code in dict.fromkeys(r.code for r in rows):
        split = {r.clients: r for r in rows if r.code == code and r.kind == "split"}
        for r in rows:
            if r.code == code and r.kind == "cache" and r.clients in split:
                s = split[r.clients]
                lines.append(f"{code} K={r.clients}: cache/split CPU per client-stream-second "
                             f"{r.ms_per_css / s.ms_per_css:.2f}x, "
                             f"per packet {r.us_per_packet / s.us_per_packet:.2f}x (goal at K=100: <= 2x)")
    this = {(r.kind, r.clients): r for r in rows if r.code == "this"}
    for r in rows:
        if r.code == "baseline" and (r.kind, r.clients) in this:
            ratio = this[(r.kind, r.clients)].ms_per_css / r.ms_per_css
            lines.append(f"{r.kind} K={r.clients}: this code uses {ratio:.2f}x the baseline's CPU per "
                         f"client-stream-second")
    for r in rows:
        lines.append(f"{r.code} {r.kind} K={r.clients}: {r.summary}")
    return "\n".join(lines)


def run(args, clip, live, workdir: Path) -> str:
    codes = [("this", REPO_ROOT)]
    if args.baseline_repo:
        codes.append(("baseline", Path(args.baseline_repo)))
    rows: list[CostRow] = []
    for code, repo in codes:
        rows += measure_cache(code, repo, clip, args.replay_clients, args, workdir)
        if not args.no_split:
            rows += measure_split(code, repo, args.replay_clients, args, live, workdir)
    return format_rows(rows)
