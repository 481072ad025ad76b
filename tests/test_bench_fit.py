"""Smoke test of benchmarks/bench_fit.py on the toy model (timings are not checked, the table's contents are)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_fit_runs_the_chosen_paths_and_class_inference_on_the_whole_split(toy_trained):
    command = [sys.executable, "-m", "benchmarks.bench_fit", "--ckpt", str(toy_trained["ckpt"])]
    command += ["--data", str(toy_trained["data"]), "--iterations", "6", "--finetune-iterations", "4"]
    command += ["--resolution", "24", "--threads", "1", "--fit-paths", "fast", "samples-4000"]
    command += ["--class-limit", "0", "--class-strategies", "batched"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {
        cells[0]: cells
        for cells in ([c.strip() for c in line.strip().strip("|").split("|")] for line in proc.stdout.splitlines())
        if len(cells) > 1
    }
    assert rows["path"][3] == "x fast"  # the first path chosen is the reference
    assert rows["fast (defaults)"][1] == "6 + 4" and rows["fast (defaults)"][3] == "1.00x"
    assert rows["fast, 4,000 samples a step"][1] == "6 + 4"
    assert rows["batched (defaults)"][4].endswith("/2")  # the toy split holds out two shapes, both probed
    assert "per class ball" in proc.stdout
