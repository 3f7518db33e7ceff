"""Bounded fuzzing in the suite: every target under atheris for FUZZ_SUITE_RUNS inputs, plus its seeds.

The long run (1,000,000 inputs per target, memory and speed figures) is bench/fuzz.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fuzz.run import REGRESSIONS, SEEDS, final_stats, seed_inputs
from tests.fuzz.targets import TARGETS

RUNS = int(os.environ.get("FUZZ_SUITE_RUNS", "3000"))
REPO = REGRESSIONS.parents[2]


def test_every_target_has_seeds_declared():
    assert set(SEEDS) == set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_and_past_findings_pass(name):
    """Seeds are fixtures the parsers already read; regressions/ holds inputs that once broke a parser."""
    inputs = seed_inputs(name)
    assert inputs
    for data in inputs:
        TARGETS[name](data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_coverage_guided_run_finds_nothing(name, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", name, str(tmp_path / "corpus"), f"-runs={RUNS}",
         f"-artifact_prefix={tmp_path}/", "-seed=1"],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    stats = final_stats(result.stderr)
    assert stats["number_of_executed_units"] >= RUNS
    assert stats["peak_rss_mb"] < 1024
