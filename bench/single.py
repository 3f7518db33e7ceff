"""One player per stream: proxyd's plain relay, proxyd's split and a C reference relay, K = 1, in one run.

    .venv/bin/python -m bench.single --seconds 20 --repeats 3 --transport udp
    .venv/bin/python -m bench.single --repeats 3 --baseline-repo /tmp/k1-base   # before/after too

Each repeat measures, each from a freshly started origin and a fresh proxy: proxyd relaying the
stream (one origin session per player), proxyd splitting it (`--live`, a hub with one player), and
a GStreamer RTSP relay (C, bench.split's `--reference gst`); with --baseline-repo also the relay
and the split of that checkout's proxyd. The modes are interleaved per repeat so a change of the
machine's load hits them alike, and
each repeat runs them in another order (rotated by one): the first measurement after a reference
relay was seen to cost about 10% less than the same code measured later in the repeat. CPU is
perf's task-clock of the proxy (every thread, nanoseconds; utime+stime's 10 ms tick was 3 % of a
measurement) when perf can attach, else utime+stime. Prints bench.relay's table for every
measurement, then per mode the median, minimum and maximum CPU ms per client-stream-second over the
repeats, and for split/relay, split/C and relay/C (goal of issue #12: each <= 1.0) and this code
against the baseline's the median and range of the ratios within each repeat and the ratio of
the medians.
Exit status 2 when a proxy could not start or died.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.players_pool import summarize  # noqa: E402
from bench.relay import ROUTE_PREFIX, ModeResult, format_table, live_origin, parse_args, run_proxied  # noqa: E402
from bench.split import run_gst_relay  # noqa: E402
from tests.peers.origin import LiveOptions  # noqa: E402

RATIOS = (("split", "relay"), ("split", "gst-relay"), ("relay", "gst-relay"))


def single_args(argv: list[str]) -> argparse.Namespace:
    """bench.relay's options (K forced to 1) plus --repeats and --baseline-repo."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--repeats", type=int, default=3, help="measurements per mode (the median is compared)")
    pre.add_argument("--baseline-repo", type=Path, help="also measure the relay and split of this checkout")
    own, rest = pre.parse_known_args(argv)
    if own.repeats < 1:
        raise SystemExit("--repeats needs at least 1")
    args = parse_args([*rest, "--clients", "1"])
    args.repeats, args.baseline_repo = own.repeats, own.baseline_repo
    return args


def modes(args) -> list[tuple[str, list[str], Path | None]]:
    """(mode, proxyd arguments, checkout) of each proxyd measurement of a repeat."""
    codes = [("", None)] + ([("@base", args.baseline_repo)] if args.baseline_repo else [])
    return [(kind + suffix, extra + args.proxyd_arg, repo)
            for suffix, repo in codes
            for kind, extra in (("relay", []), ("split", ["--live", ROUTE_PREFIX]))]


def per_css_ms(row: ModeResult, fps: int) -> float | None:
    """CPU ms per client-stream-second: perf's task-clock when it was counted, else utime+stime."""
    css = row.client_stream_seconds(fps)
    cpu = row.task_clock_s if row.task_clock_s is not None else row.cpu_s
    return 1000 * cpu / css if cpu is not None and css and not row.error else None


def spread(values: list[float]) -> str:
    """median (min-max, n) of `values`."""
    return (f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f}, n={len(values)})"
            if values else "n/a")


def summary(rows: list[tuple[int, ModeResult]], fps: int) -> list[str]:
    """Per mode the median and spread of CPU ms/css over the repeats; per ratio the median and spread
    of the ratios within each repeat (the modes of a repeat ran one after the other, so a change of
    the machine's load between repeats cancels), and the ratio of the medians."""
    values: dict[str, dict[int, float]] = {}
    for repeat, row in rows:
        value = per_css_ms(row, fps)
        if value is not None:
            values.setdefault(row.mode, {})[repeat] = value
    lines = [f"{mode:<12} CPU ms per client-stream-second: median {spread(list(v.values()))}; runs: "
             + ", ".join(f"{x:.2f}" for x in v.values()) for mode, v in values.items()]
    pairs = [(a + suffix, b if b == "gst-relay" else b + suffix, "" if suffix else " (goal <= 1.0)")
             for suffix in ("", "@base") for a, b in RATIOS]
    pairs += [(kind, kind + "@base", "") for kind in ("relay", "split")]
    for a, b, goal in pairs:
        if a in values and b in values:
            paired = [values[a][r] / values[b][r] for r in values[a] if r in values[b]]
            of_medians = statistics.median(values[a].values()) / statistics.median(values[b].values())
            lines.append(f"{a}/{b}: per repeat median {spread(paired)}, ratio of medians {of_medians:.3f}{goal}")
    return lines


def main(argv: list[str]) -> int:
    args = single_args(argv)
    live = LiveOptions(bitrate_kbps=args.bitrate, gop_frames=args.gop, pattern="snow")
    expected = args.seconds * live.fps
    rows: list[ModeResult] = []
    repeats: list[int] = []  # rows[i] was measured in repeat repeats[i]
    with tempfile.TemporaryDirectory(prefix="bench-single-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with live_origin(args, live, workdir) as origin:
            for repeat in range(args.repeats):
                (workdir / f"r{repeat}").mkdir(exist_ok=True)
                order = modes(args) + [("gst-relay", [], None)]
                shift = repeat % len(order)
                for n, (mode, extra, repo) in enumerate(order[shift:] + order[:shift]):
                    if repeat or n:
                        origin.restart()  # a fresh origin per measurement: no state carried over
                    if mode == "gst-relay":
                        rows.append(run_gst_relay(1, args, origin, workdir / f"r{repeat}"))
                    else:
                        rows.append(run_proxied(1, args, origin, workdir / f"r{repeat}", mode=mode,
                                                extra_args=extra, repo=repo))
                    repeats.append(repeat)
                    print(f"repeat {repeat + 1} {mode}: {summarize(rows[-1].results, expected)}", file=sys.stderr)
        print(format_table(rows, {}, args, live.fps))
        print()
        print("\n".join(summary(list(zip(repeats, rows)), live.fps)))
    failed = [r for r in rows if r.error]
    for row in failed:
        print(f"\n{row.mode}: {row.error}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
