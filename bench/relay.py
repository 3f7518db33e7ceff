"""Relay benchmark: K players on one live origin stream, direct and through proxyd, in one run.

    .venv/bin/python -m bench.relay --clients 1,10,50 --seconds 10 --transport udp --bitrate 4000

For each K it plays the origin's live mount directly, then through a fresh proxyd (started with
the CLI contract `python -m proxyd --listen ... --route /bench=rtsp://origin/`), and optionally
through a --reference-url proxy. Reported per K and mode:

  ok        share of players that exited cleanly with at least half the expected video frames
  frames    video frames received, relative to the direct run with the same K
  ttff      median launch -> first video frame (includes ffmpeg's stream probing)
  cpu       proxyd CPU seconds (utime+stime) during the run
  task-clock the same from perf's task-clock (scheduler nanoseconds, not 10 ms ticks), with the
            proxy's context switches per second (its wakeups); bench.single compares by it
  cpu/css   proxyd CPU milliseconds per delivered client-stream-second: one client receiving the
            stream (the presentation, video and audio together) for one second, measured by the
            media seconds it received (video frames / fps; audio seconds when it got no video)
  sys%      share of that CPU spent in the kernel (sendmmsg/write and, on loopback, the
            receivers' network stack work charged to the sender)
  rss       proxyd peak RSS (VmHWM)
  origin    origin CPU share during the run, and origin sessions opened (how well a proxy splits)
Players that fail show up in `ok`; the exit status is 2 only when proxyd could not be started or
died during a run (the direct half is still measured and printed), else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.players_pool import run_players  # noqa: E402
from bench.procstat import TaskClock, cpu_seconds, cpu_times, peak_rss_kib  # noqa: E402
from tests.peers.origin import GstOrigin, LiveOptions  # noqa: E402
from tests.peers.players import PlayResult  # noqa: E402
from tests.peers.proxyd_proc import ProxydError, ProxydProcess, log_tail  # noqa: E402

LIVE_MOUNT = "live"
ROUTE_PREFIX = "/bench"
AAC_FRAME_SAMPLES = 1024
LIVE_AUDIO_RATE = 48000  # what gst_origin.py's live mount encodes
MIN_SHARE_OF_EXPECTED_FRAMES = 0.5


@dataclasses.dataclass
class ModeResult:
    mode: str
    clients: int
    results: list[PlayResult] = dataclasses.field(default_factory=list)
    error: str | None = None
    cpu_s: float | None = None
    sys_s: float | None = None
    task_clock_s: float | None = None  # perf's task-clock (ns resolution) over the same span as cpu_s
    context_switches: int | None = None  # the proxy's sleeps: about one per wakeup
    peak_rss_kib: int | None = None
    origin_cpu_s: float | None = None
    origin_sessions: int | None = None
    round_index: int = 0  # position in --clients, so a repeated K compares with its own direct run

    def succeeded(self, expected_video_frames: float) -> int:
        return sum(r.ok and r.video_frames >= expected_video_frames * MIN_SHARE_OF_EXPECTED_FRAMES
                   for r in self.results)

    @property
    def video_frames(self) -> int:
        return sum(r.video_frames for r in self.results)

    def client_stream_seconds(self, fps: int) -> float:
        """Seconds of the presentation delivered, summed over clients (video and audio of one
        client-second count once: the unit live555's 0.0037 and the kernel's 0.001 are quoted in)."""
        return sum(r.video_frames / fps if r.video_frames
                   else r.audio_frames * AAC_FRAME_SAMPLES / LIVE_AUDIO_RATE
                   for r in self.results)

    @property
    def median_ttff(self) -> float | None:
        values = [r.first_frame_s for r in self.results if r.first_frame_s is not None]
        return statistics.median(values) if values else None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="1,10,50", help="comma-separated player counts")
    p.add_argument("--seconds", type=float, default=10.0, help="play time per player")
    p.add_argument("--transport", choices=("udp", "tcp", "mixed"), default="udp")
    p.add_argument("--bitrate", type=int, default=4000, help="live video bitrate, kbit/s")
    p.add_argument("--gop", type=int, default=25, help="live key frame interval, frames")
    p.add_argument("--ramp-ms", type=float, default=20.0, help="spacing between player launches")
    p.add_argument("--reference-url", help="another proxy's URL for the same live stream, compared too")
    p.add_argument("--origin-port", type=int, default=0,
                   help="the test origin's RTSP port (0: any free one); fixed, a hand-started reference "
                        "proxy can be pointed at rtsp://127.0.0.1:PORT/live before the run")
    p.add_argument("--proxyd-arg", action="append", default=[], help="extra proxyd argument; repeatable")
    p.add_argument("--skip-proxyd", action="store_true", help="measure only direct (and reference)")
    p.add_argument("--workdir", type=Path,
                   help="keep origin/proxyd logs, origin events and cache here (default: a temp dir)")
    p.add_argument("--verbose", action="store_true", help="print every failed player's details")
    args = p.parse_args(argv)
    try:
        args.client_counts = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        p.error(f"--clients must be comma-separated integers, not {args.clients!r}")
    if not args.client_counts or min(args.client_counts) < 1:
        p.error("--clients needs at least one count >= 1")
    return args


def measure(mode: str, url: str, k: int, args, *, proxyd: ProxydProcess | None,
            origin: GstOrigin, other_pid: int | None = None, play=run_players) -> ModeResult:
    """Play `url` with K players (`play`: run_players' call, ffmpeg or raw players); CPU and peak memory
    of proxyd, or of `other_pid` (a reference proxy)."""
    result = ModeResult(mode=mode, clients=k)
    origin_before = cpu_seconds(origin.pid)
    mark = origin.mark()
    pid = proxyd.pid if proxyd else other_pid
    clock = TaskClock(pid).start() if pid else None
    cpu_before = cpu_times(pid) if pid else None
    result.results = play(url, k, args.seconds, args.transport, ramp_s=args.ramp_ms / 1000)
    if clock is not None:
        result.task_clock_s, result.context_switches = clock.stop()
    if proxyd:
        if proxyd.proc.poll() is not None:
            result.error = (f"proxyd exited with {proxyd.proc.returncode} during the run; "
                            f"log tail:\n{log_tail(proxyd.log_path)}")
        else:
            user, system = cpu_times(proxyd.pid)
            result.cpu_s = user + system - sum(cpu_before)
            result.sys_s = system - cpu_before[1]
            result.peak_rss_kib = peak_rss_kib(proxyd.pid)
    elif pid:
        user, system = cpu_times(pid)
        result.cpu_s = user + system - sum(cpu_before)
        result.sys_s = system - cpu_before[1]
        result.peak_rss_kib = peak_rss_kib(pid)
    result.origin_cpu_s = cpu_seconds(origin.pid) - origin_before
    result.origin_sessions = origin.session_count(after=mark)
    return result


def run_proxied(k: int, args, origin: GstOrigin, workdir: Path, *, mode: str = "proxyd",
                extra_args: list[str] | None = None, repo: Path | None = None) -> ModeResult:
    """K players through a fresh proxyd (of `repo`, default this checkout) with `extra_args`
    (default --proxyd-arg), reported as `mode`."""
    proxyd = ProxydProcess(routes={ROUTE_PREFIX: origin.url("/")}, log_path=workdir / f"{mode}-k{k}.log",
                           cache_dir=workdir / f"cache-{mode}-k{k}",
                           extra_args=args.proxyd_arg if extra_args is None else extra_args,
                           **({"repo": repo} if repo is not None else {}))
    try:
        proxyd.start()
    except ProxydError as exc:
        return ModeResult(mode=mode, clients=k, error=f"proxyd did not start: {exc}")
    try:
        url = proxyd.url(f"{ROUTE_PREFIX}/{LIVE_MOUNT}")
        return measure(mode, url, k, args, proxyd=proxyd, origin=origin)
    finally:
        rc = proxyd.stop()
        if proxyd.killed or rc not in (0, None):
            print(f"warning: proxyd exit after SIGTERM: rc={rc} killed={proxyd.killed} "
                  f"(log: {proxyd.log_path})", file=sys.stderr)


def format_table(rows: list[ModeResult], direct_frames: dict[int, int], args, fps: int) -> str:
    expected = args.seconds * fps
    header = (f"{'K':>4} {'mode':<9} {'ok':>7} {'frames':>8} {'ttff s':>7} {'cpu s':>7} "
              f"{'cpu ms/css':>10} {'sys%':>5} {'rss MiB':>8} {'origin cpu%':>11} {'origin sess':>11} "
              f"{'clk ms/css':>10} {'csw/s':>7}")
    lines = [header, "-" * len(header)]
    for r in rows:
        if r.error:
            lines.append(f"{r.clients:>4} {r.mode:<9} FAILED: {r.error.splitlines()[0]}")
            continue
        ok = f"{r.succeeded(expected)}/{r.clients}"
        base = direct_frames.get(r.round_index)
        ratio = f"{r.video_frames / base:.3f}" if base else "n/a"
        ttff = f"{r.median_ttff:.2f}" if r.median_ttff is not None else "n/a"
        css = r.client_stream_seconds(fps)
        cpu = f"{r.cpu_s:.2f}" if r.cpu_s is not None else "-"
        per_css = f"{1000 * r.cpu_s / css:.3f}" if r.cpu_s is not None and css else "-"
        sys_pct = f"{100 * r.sys_s / r.cpu_s:.0f}" if r.sys_s is not None and r.cpu_s else "-"
        rss = f"{r.peak_rss_kib / 1024:.1f}" if r.peak_rss_kib else "-"
        origin_pct = f"{100 * r.origin_cpu_s / args.seconds:.0f}" if r.origin_cpu_s is not None else "-"
        clock = f"{1000 * r.task_clock_s / css:.3f}" if r.task_clock_s is not None and css else "-"
        wakes = f"{r.context_switches / args.seconds:.0f}" if r.context_switches is not None else "-"
        lines.append(f"{r.clients:>4} {r.mode:<9} {ok:>7} {ratio:>8} {ttff:>7} {cpu:>7} {per_css:>10} {sys_pct:>5} "
                     f"{rss:>8} {origin_pct:>11} {r.origin_sessions!s:>11} {clock:>10} {wakes:>7}")
    return "\n".join(lines)


@contextlib.contextmanager
def live_origin(args, live: LiveOptions, workdir: Path):
    """The benchmark's GStreamer live origin (announced on stderr), stopped afterwards."""
    with GstOrigin(live=LIVE_MOUNT, live_options=live, port=args.origin_port,
                   stderr_path=workdir / "origin.log") as origin:
        print(f"origin {origin.url(LIVE_MOUNT)}: {args.bitrate} kbit/s, GOP {args.gop}, "
              f"{args.transport}, {args.seconds:g} s per player", file=sys.stderr)
        yield origin


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    live = LiveOptions(bitrate_kbps=args.bitrate, gop_frames=args.gop, pattern="snow")
    rows: list[ModeResult] = []
    direct_frames: dict[int, int] = {}  # round index -> direct video frames
    proxyd_start_failed = False
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with live_origin(args, live, workdir) as origin:
            for index, k in enumerate(args.client_counts):
                if index:
                    origin.restart()  # each K starts from a fresh origin: no state carried over
                round_rows = [measure("direct", origin.url(LIVE_MOUNT), k, args, proxyd=None, origin=origin)]
                direct_frames[index] = round_rows[0].video_frames
                if not args.skip_proxyd and proxyd_start_failed:
                    round_rows.append(ModeResult(mode="proxyd", clients=k,
                                                 error="skipped: proxyd did not start"))
                elif not args.skip_proxyd:
                    round_rows.append(run_proxied(k, args, origin, workdir))
                    proxyd_start_failed = "did not start" in (round_rows[-1].error or "")
                if args.reference_url:
                    round_rows.append(measure("reference", args.reference_url, k, args, proxyd=None,
                                              origin=origin))
                for row in round_rows:
                    row.round_index = index
                rows.extend(round_rows)
                print(f"K={k} done", file=sys.stderr)
            with open(workdir / "origin-events.jsonl", "w") as f:
                f.writelines(json.dumps(e) + "\n" for e in origin.events)
            if args.verbose:
                for r in rows:
                    for p in r.results:
                        if not p.ok:
                            print(p.describe(), file=sys.stderr)
        print(format_table(rows, direct_frames, args, live.fps))
        failed = [r for r in rows if r.error]
        for r in failed:
            print(f"\n{r.mode} K={r.clients}: {r.error}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
