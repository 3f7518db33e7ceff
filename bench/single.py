"""One player per stream: proxyd's plain relay, proxyd's split and a C reference relay, K = 1, in one run.

    .venv/bin/python -m bench.single --seconds 20 --repeats 3 --transport udp
    .venv/bin/python -m bench.single --repeats 3 --baseline-repo /tmp/k1-base   # before/after too

Each repeat measures, each from a freshly started origin and a fresh proxy: proxyd relaying the
stream (one origin session per player), proxyd splitting it (`--live`, a hub with one player), and
a GStreamer RTSP relay (C, bench.split's `--reference gst`); with --baseline-repo also the relay
and the split of that checkout's proxyd. The modes are interleaved per repeat so a change of the
machine's load hits them alike, and
each repeat runs them in another order (rotated by one): the first measurement after a reference
relay was seen to cost about 10% less than the same code measured later in the repeat. Prints bench.relay's table for every measurement, then per mode
the median CPU ms per client-stream-second over the repeats, and the ratios split/relay,
split/C and relay/C (goal of issue #12: each <= 1.0), and this code's against the baseline's.
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
    css = row.client_stream_seconds(fps)
    return 1000 * row.cpu_s / css if row.cpu_s is not None and css and not row.error else None


def medians(rows: list[ModeResult], fps: int) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for row in rows:
        value = per_css_ms(row, fps)
        if value is not None:
            values.setdefault(row.mode, []).append(value)
    return {mode: statistics.median(v) for mode, v in values.items()}


def summary(rows: list[ModeResult], fps: int) -> list[str]:
    med = medians(rows, fps)
    counts = {m: sum(r.mode == m and per_css_ms(r, fps) is not None for r in rows) for m in med}
    lines = [f"{mode:<12} median {value:7.3f} CPU ms per client-stream-second ({counts[mode]} runs: "
             + ", ".join(f"{per_css_ms(r, fps):.2f}" for r in rows if r.mode == mode and per_css_ms(r, fps))
             + ")" for mode, value in med.items()]
    for suffix in ("", "@base"):
        for a, b in RATIOS:
            a_mode, b_mode = a + suffix, b if b == "gst-relay" else b + suffix
            if a_mode in med and b_mode in med:
                lines.append(f"{a_mode}/{b_mode}: {med[a_mode] / med[b_mode]:.2f}"
                             + (" (goal <= 1.0)" if not suffix else ""))
    for kind in ("relay", "split"):
        if kind in med and kind + "@base" in med:
            lines.append(f"{kind} this/baseline: {med[kind] / med[kind + '@base']:.2f}")
    return lines


def main(argv: list[str]) -> int:
    args = single_args(argv)
    live = LiveOptions(bitrate_kbps=args.bitrate, gop_frames=args.gop, pattern="snow")
    expected = args.seconds * live.fps
    rows: list[ModeResult] = []
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
                    print(f"repeat {repeat + 1} {mode}: {summarize(rows[-1].results, expected)}", file=sys.stderr)
        print(format_table(rows, {}, args, live.fps))
        print()
        print("\n".join(summary(rows, live.fps)))
    failed = [r for r in rows if r.error]
    for row in failed:
        print(f"\n{row.mode}: {row.error}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
