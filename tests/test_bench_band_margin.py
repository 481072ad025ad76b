"""Smoke test of benchmarks/bench_band_margin.py on the shipped demo model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_band_margin", "--models", "demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_band_margin_benchmark_counts_evaluations_and_wrong_signs_per_margin():
    proc = _run("--shapes", "2", "--resolutions", "33", "--band-factors", "1.5", "1.0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in proc.stdout.splitlines()
        if line.startswith("| demo")
    ]
    assert [r[2] for r in rows] == ["1.5", "1"]
    assert rows[0][4] == "1.000x" and float(rows[1][4].rstrip("x")) < 1.0  # a smaller margin evaluates less
    assert rows[0][5] == "0"  # the default margin keeps the dense grid's signs


def test_band_margin_benchmark_refuses_bad_arguments():
    assert "--band-factors" in _run("--band-factors", "0").stderr
    assert "--shapes" in _run("--shapes", "0").stderr
    assert "unknown nosuch" in _run("--models", "demo", "nosuch").stderr
