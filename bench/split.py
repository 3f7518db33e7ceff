"""Split benchmark: K ffmpeg players on one live stream, direct from the origin, through proxyd
splitting it (`--live /bench`: one origin session for all K) and through a --reference-url proxy.

    .venv/bin/python -m bench.split --clients 1,10,50,200 --seconds 10 --transport mixed --bitrate 4000 \
        --reference gst

With --reference gst the same players also go through a GStreamer RTSP relay (C, one shared origin
session), so a C proxy is measured in the same run; --reference-url URL [--reference-pid PID] does
the same for any other proxy (live555ProxyServer, MediaMTX) started by hand.

Every mode starts from a freshly started origin: gst-rtsp-server 1.22 stalls its shared live media
after a few dozen direct TCP clients, and a stalled origin must not be blamed on the next mode.
Prints bench.relay's table (ok share, frames vs direct, median time to first frame, proxyd CPU and
CPU ms per delivered client-stream-second, peak RSS, origin sessions), per mode the success per
transport with the reason of every failure, and, per K, proxyd's CPU seconds per client-stream-second
against live555ProxyServer's 0.0037 at K=50, 4 Mbit/s, and the goal of half that with no failed
client. Exit status 2 when proxyd could not start or died.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.players_pool import failure_reason, summarize  # noqa: E402
from bench.relay import (  # noqa: E402
    LIVE_MOUNT,
    ROUTE_PREFIX,
    ModeResult,
    format_table,
    live_origin,
    measure,
    parse_args,
    run_proxied,
)
from tests.peers.origin import GstOrigin, LiveOptions  # noqa: E402

LIVE555_CPU_PER_CSS = 0.0037  # live555ProxyServer, K=50, 4 Mbit/s, this machine class
GOAL_CPU_PER_CSS = LIVE555_CPU_PER_CSS / 2
MODES = ("direct", "proxyd")


def verdict(row: ModeResult, expected_frames: float, fps: int) -> str:
    css = row.client_stream_seconds(fps)
    if row.error or row.cpu_s is None or not css:
        return f"K={row.clients}: no measurement ({row.error or 'no client-stream-seconds'})"
    per_css = row.cpu_s / css
    ok = row.succeeded(expected_frames)
    met = per_css <= GOAL_CPU_PER_CSS and ok == row.clients
    return (f"K={row.clients}: proxyd {per_css:.5f} CPU s per client-stream-second "
            f"({per_css / LIVE555_CPU_PER_CSS:.2f}x live555's {LIVE555_CPU_PER_CSS}), "
            f"{ok}/{row.clients} clients ok, peak RSS {(row.peak_rss_kib or 0) / 1024:.1f} MiB, "
            f"origin sessions {row.origin_sessions} -> goal (<= {GOAL_CPU_PER_CSS:.5f}, no failure) "
            f"{'MET' if met else 'NOT MET'}")


def run_gst_relay(k: int, args, origin: GstOrigin, workdir: Path) -> ModeResult:
    """K players through a fresh GStreamer relay of the origin's live mount (same run, same origin)."""
    relay = GstOrigin(relay={"relay": origin.url(f"/{LIVE_MOUNT}")}, stderr_path=workdir / f"gst-relay-k{k}.log")
    try:
        relay.start()
    except Exception as exc:  # the reference is optional: report it, keep the run
        return ModeResult(mode="gst-relay", clients=k, error=f"GStreamer relay did not start: {exc}")
    try:
        return measure("gst-relay", relay.url("/relay"), k, args, proxyd=None, origin=origin, other_pid=relay.pid)
    finally:
        relay.stop()


def split_args(argv: list[str]) -> argparse.Namespace:
    """bench.relay's options plus --modes (which of direct/proxyd to run)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--modes", default=",".join(MODES),
                     help="comma-separated modes to run: direct, proxyd (default both)")
    pre.add_argument("--reference", choices=("gst",),
                     help="also measure a C reference proxy started by the bench: gst = a GStreamer "
                          "RTSP relay (rtspsrc re-payloaded by gst-rtsp-server, one shared origin session)")
    pre.add_argument("--reference-pid", type=int,
                     help="pid of the --reference-url proxy, to measure its CPU and memory too")
    own, rest = pre.parse_known_args(argv)
    if not any(a.startswith("--clients") for a in rest):
        rest = ["--clients", "1,10,50", *rest]
    if not any(a.startswith("--transport") for a in rest):
        rest = ["--transport", "mixed", *rest]
    args = parse_args(rest)
    args.modes = [m.strip() for m in own.modes.split(",") if m.strip()]
    args.reference, args.reference_pid = own.reference, own.reference_pid
    unknown = set(args.modes) - set(MODES)
    if unknown or not args.modes:
        raise SystemExit(f"--modes takes {', '.join(MODES)}, not {own.modes!r}")
    if args.skip_proxyd and "proxyd" in args.modes:
        args.modes.remove("proxyd")
    args.proxyd_arg = ["--live", ROUTE_PREFIX, *args.proxyd_arg]
    return args


def main(argv: list[str]) -> int:
    args = split_args(argv)
    live = LiveOptions(bitrate_kbps=args.bitrate, gop_frames=args.gop, pattern="snow")
    expected = args.seconds * live.fps
    rows: list[ModeResult] = []
    direct_frames: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with live_origin(args, live, workdir) as origin:
            for index, k in enumerate(args.client_counts):
                round_rows = []
                for n, mode in enumerate(args.modes):
                    if index or n:
                        origin.restart()  # a fresh origin per measurement: no state carried over
                    if mode == "direct":
                        row = measure("direct", origin.url(LIVE_MOUNT), k, args, proxyd=None, origin=origin)
                        direct_frames[index] = row.video_frames
                    else:
                        row = run_proxied(k, args, origin, workdir)
                    round_rows.append(row)
                    print(f"K={k} {mode}: {summarize(row.results, expected)}", file=sys.stderr)
                if args.reference == "gst":
                    origin.restart()
                    row = run_gst_relay(k, args, origin, workdir)
                    round_rows.append(row)
                    print(f"K={k} gst-relay: {summarize(row.results, expected)}", file=sys.stderr)
                if args.reference_url:
                    round_rows.append(measure("reference", args.reference_url, k, args, proxyd=None,
                                              origin=origin, other_pid=args.reference_pid))
                for row in round_rows:
                    row.round_index = index
                rows.extend(round_rows)
            # Every failed player's details (stderr tail, frames, wall time) are kept in the workdir.
            with open(workdir / "failed-players.txt", "w") as f:
                for row in rows:
                    for p in row.results:
                        if failure_reason(p, expected) is not None:
                            text = f"{row.mode} K={row.clients} {p.describe()}\n"
                            f.write(text)
                            if args.verbose:
                                print(text, file=sys.stderr)
        print(format_table(rows, direct_frames, args, live.fps))
        print()
        for row in rows:
            if row.results:
                print(f"{row.mode:>9} K={row.clients}: {summarize(row.results, expected)}")
        print()
        for row in rows:
            if row.mode == "proxyd":
                print(verdict(row, expected, live.fps))
            elif row.mode != "direct" and row.cpu_s is not None and row.client_stream_seconds(live.fps):
                per_css = row.cpu_s / row.client_stream_seconds(live.fps)
                print(f"K={row.clients}: {row.mode} {per_css:.5f} CPU s per client-stream-second, "
                      f"{row.succeeded(expected)}/{row.clients} clients ok, origin sessions {row.origin_sessions}")
        for row in rows:
            if row.error:
                print(f"\n{row.mode} K={row.clients}: {row.error}", file=sys.stderr)
    return 2 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
