"""Split benchmark: K ffmpeg players on one live stream, direct from the origin, through proxyd
splitting it (`--live /bench`: one origin session for all K) and through a --reference-url proxy.

    .venv/bin/python -m bench.split --clients 1,10,50,200 --seconds 10 --transport mixed --bitrate 4000

Prints bench.relay's table (ok share, frames vs direct, median time to first frame, proxyd CPU and
CPU ms per delivered client-stream-second, peak RSS, origin sessions) and, per K, proxyd's CPU
seconds per client-stream-second against live555ProxyServer's 0.0037 at K=50, 4 Mbit/s, and the
goal of half that with no failed client. Exit status 2 when proxyd could not start or died.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relay import (  # noqa: E402
    LIVE_MOUNT,
    ROUTE_PREFIX,
    ModeResult,
    format_table,
    measure,
    parse_args,
    run_proxied,
)
from tests.peers.origin import GstOrigin, LiveOptions  # noqa: E402

LIVE555_CPU_PER_CSS = 0.0037  # live555ProxyServer, K=50, 4 Mbit/s, this machine class
GOAL_CPU_PER_CSS = LIVE555_CPU_PER_CSS / 2


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


def main(argv: list[str]) -> int:
    if not any(a.startswith("--clients") for a in argv):
        argv = ["--clients", "1,10,50", *argv]
    if not any(a.startswith("--transport") for a in argv):
        argv = ["--transport", "mixed", *argv]
    args = parse_args(argv)
    args.proxyd_arg = ["--live", ROUTE_PREFIX, *args.proxyd_arg]
    live = LiveOptions(bitrate_kbps=args.bitrate, gop_frames=args.gop, pattern="snow")
    rows: list[ModeResult] = []
    direct_frames: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with GstOrigin(live=LIVE_MOUNT, live_options=live, stderr_path=workdir / "origin.log") as origin:
            print(f"origin {origin.url(LIVE_MOUNT)}: {args.bitrate} kbit/s, GOP {args.gop}, "
                  f"{args.transport}, {args.seconds:g} s per player", file=sys.stderr)
            for index, k in enumerate(args.client_counts):
                if index:
                    origin.restart()
                round_rows = [measure("direct", origin.url(LIVE_MOUNT), k, args, proxyd=None, origin=origin)]
                direct_frames[index] = round_rows[0].video_frames
                if not args.skip_proxyd:
                    round_rows.append(run_proxied(k, args, origin, workdir))
                if args.reference_url:
                    round_rows.append(measure("reference", args.reference_url, k, args, proxyd=None,
                                              origin=origin))
                for row in round_rows:
                    row.round_index = index
                rows.extend(round_rows)
                print(f"K={k} done", file=sys.stderr)
        print(format_table(rows, direct_frames, args, live.fps))
        print()
        for row in rows:
            if row.mode == "proxyd":
                print(verdict(row, args.seconds * live.fps, live.fps))
        for row in rows:
            if row.error:
                print(f"\n{row.mode} K={row.clients}: {row.error}", file=sys.stderr)
    return 2 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
