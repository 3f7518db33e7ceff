"""Long fuzzing run: every target (or the ones named) under atheris for --runs inputs each.

    .venv/bin/python -m bench.fuzz --runs 1000000 [--targets rtp,sdp] [--jobs 9] [--max-seconds 600] [--nice 19]

Each target runs in its own process, --jobs of them at once, at --nice (a long run must not slow
down the other users of a shared machine); libFuzzer's progress goes to --artifacts/TARGET.log as it
runs. Prints, per target: inputs executed, seconds, inputs/s, peak RSS (MB), coverage features, and the
finding (crash, hang over --timeout seconds per input, memory over --rss-limit-mb) with the input
saved under --artifacts. Exit status 1 when any target found something. The suite's bounded run is
tests/fuzz/test_targets.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.run import REGRESSIONS, final_stats  # noqa: E402
from tests.fuzz.targets import TARGETS  # noqa: E402

REPO = REGRESSIONS.parents[2]


def run_target(name: str, args: argparse.Namespace) -> dict:
    artifacts = Path(args.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    log = artifacts / f"{name}.log"
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as corpus, log.open("w+") as log_file:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "tests.fuzz.run", name, corpus, f"-runs={args.runs}",
             *([f"-max_total_time={args.max_seconds}"] if args.max_seconds else []),
             f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}",
             f"-artifact_prefix={artifacts}/{name}-"],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(args.nice))
        seconds = time.monotonic() - started
        log_file.seek(0)
        output = log_file.read()
    stats = final_stats(output)
    finding = ""
    if result.returncode != 0:
        lines = [x for x in output.splitlines() if "ERROR" in x or "Error" in x or "written to" in x]
        finding = " | ".join(lines[-3:]) or f"exit {result.returncode}"
    features = [x for x in output.splitlines() if " ft: " in x]
    ft = features[-1].split(" ft: ")[1].split()[0] if features else "?"
    runs = stats.get("number_of_executed_units", 0)
    return {"target": name, "runs": runs, "seconds": seconds, "per_s": runs / seconds if seconds else 0,
            "rss_mb": stats.get("peak_rss_mb", 0), "features": ft, "finding": finding}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=int, default=0, help="stop a target after this long (0: no limit)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="targets fuzzed at once")
    parser.add_argument("--nice", type=int, default=0, help="niceness added to the fuzzing processes")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take (a hang)")
    parser.add_argument("--rss-limit-mb", type=int, default=1024, help="memory that counts as unbounded")
    parser.add_argument("--artifacts", default="fuzz-findings")
    args = parser.parse_args()
    names = [n for n in args.targets.split(",") if n]
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; known: {sorted(TARGETS)}")
    print(f"{'target':14} {'inputs':>9} {'seconds':>8} {'inputs/s':>9} {'rss MB':>7} {'features':>8}  finding")
    found = False
    with ThreadPoolExecutor(args.jobs) as pool:
        for row in pool.map(lambda n: run_target(n, args), names):
            found |= bool(row["finding"])
            print(f"{row['target']:14} {row['runs']:>9} {row['seconds']:>8.0f} {row['per_s']:>9.0f} "
                  f"{row['rss_mb']:>7} {row['features']:>8}  {row['finding'] or 'none'}", flush=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
