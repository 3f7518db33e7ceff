"""Run one fuzz target under atheris (libFuzzer, coverage-guided).

    python -m tests.fuzz.run TARGET CORPUS_DIR [libFuzzer flags...]     e.g. -runs=1000000

The corpus directory (the caller's, and its to remove) gets the target's seeds (tests/fixtures files
and tests/fuzz/regressions/TARGET-*) before the run. libFuzzer itself stops on a crash (any exception out of the target),
a hang (-timeout, seconds per input) or memory over -rss_limit_mb, and writes the input to
-artifact_prefix; -print_final_stats gives the executed units, exec/s and peak RSS.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

FUZZ_DIR = Path(__file__).resolve().parent
FIXTURES = FUZZ_DIR.parent / "fixtures"
REGRESSIONS = FUZZ_DIR / "regressions"

SEEDS = {
    "rtsp_server": ["rtsp/*.rtsp", "wm/*.rtsp"],
    "rtsp_client": ["rtsp/*.rtsp", "wm/*.rtsp"],
    "rtsp_headers": [],
    "sdp": [],
    "rtp": ["rtp/rtp_*.bin"],
    "rtcp": ["rtp/rtcp_*.bin"],
    "wmlog": ["wm/wmlog_*", "wm/*_body.xml", "asf/*.xml"],
    "remote_event": [],
    "wm_headers": ["wm/cache_control_examples.txt", "wm/rtsp_2_2_7_3_endofstream.rtsp"],
}
DEFAULT_FLAGS = ["-timeout=10", "-rss_limit_mb=1024", "-print_final_stats=1"]
DEFAULT_MAX_LEN = 4096


def seed_inputs(target: str) -> list[bytes]:
    """Seed inputs for a target; the RTSP targets skip their first byte (a salt for the fuzzer), so prefix one."""
    fixtures = [p.read_bytes() for pattern in SEEDS[target] for p in sorted(FIXTURES.glob(pattern))]
    if target in ("rtsp_server", "rtsp_client"):
        fixtures = [b"\x07" + d for d in fixtures]
    findings = [p.read_bytes() for p in sorted(REGRESSIONS.glob(f"{target}-*"))]  # saved as the target saw them
    return fixtures + findings or [b""]


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in SEEDS:
        print(f"usage: python -m tests.fuzz.run TARGET CORPUS_DIR [libFuzzer flags]; TARGET in {sorted(SEEDS)}",
              file=sys.stderr)
        return 2
    target_name, corpus, flags = argv[1], Path(argv[2]), argv[3:]
    with atheris.instrument_imports(include=["proxyd"]):
        from tests.fuzz.targets import RTSP_MAX_LEN, TARGETS
    max_len = RTSP_MAX_LEN if target_name in ("rtsp_server", "rtsp_client") else DEFAULT_MAX_LEN
    corpus.mkdir(parents=True, exist_ok=True)
    for index, data in enumerate(seed_inputs(target_name)):
        (corpus / f"seed-{index}").write_bytes(data)
    atheris.Setup([argv[0], f"-max_len={max_len}", *DEFAULT_FLAGS, *flags, str(corpus)], TARGETS[target_name])
    atheris.Fuzz()  # does not return: libFuzzer exits with 0 when done, non-zero on a finding
    return 0


def final_stats(output: str) -> dict[str, int]:
    """libFuzzer's -print_final_stats lines ("stat::name: value") as a dict."""
    stats = {}
    for line in output.splitlines():
        if line.startswith("stat::"):
            name, _, value = line[len("stat::"):].partition(":")
            stats[name.strip()] = int(value.strip())
    return stats


if __name__ == "__main__":
    sys.exit(main(sys.argv))
