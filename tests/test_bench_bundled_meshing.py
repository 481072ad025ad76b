"""Smoke test of benchmarks/bench_bundled_meshing.py on the shipped demo model (timings are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmarks.bench_bundled_meshing", "--models", "demo", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_bundled_meshing_benchmark_runs_on_the_demo():
    proc = _bench("--resolutions", "24", "--repeats", "1", "--band-factors", "1.5", "1.2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| demo")]
    assert len(rows) == 2  # one per refinement margin, timed in the same rounds
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [c[2] for c in cells] == ["1.5", "1.2"]
    for c in cells:
        assert c[1] == "24" and float(c[8]) < 0.1  # the fast mesh is the plain mesh


def test_bundled_meshing_benchmark_refuses_a_bad_band_factor():
    proc = _bench("--band-factors", "nan", timeout=120)
    assert proc.returncode == 2 and "--band-factors" in proc.stderr
