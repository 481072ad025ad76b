"""Smoke test of benchmarks/bench_bundled_meshing.py on the shipped demo model (timings are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_meshing_benchmark_runs_on_the_demo():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_bundled_meshing",
            "--models",
            "demo",
            "--resolutions",
            "24",
            "--repeats",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| demo")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "24" and float(cells[7]) < 0.1  # the fast mesh is the plain mesh
