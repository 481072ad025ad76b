"""Partial observations in the evaluation: single-view depth scans of each shape's source mesh, in its sample
file's frame, and the side the camera did not see measured on its own (``unseen_*``)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trimesh

from core.evaluation.metrics import unseen_points
from core.tto.config import PARTIAL_SCAN_ANCHOR_WEIGHT

ROOT = Path(__file__).resolve().parents[1]


def test_unseen_points_are_the_far_side_of_a_one_sided_view():
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(4000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    seen = sphere[sphere[:, 2] > 0.2]  # what a camera at +z saw
    unseen = unseen_points(sphere, seen)
    assert not unseen[sphere[:, 2] > 0.25].any()  # everything seen (and its 1 % neighbourhood) is not unseen
    assert unseen[sphere[:, 2] < 0.15].all()
    assert unseen_points(sphere, np.zeros((0, 3))).all()


def _slab_source(toy_trained, tmp_path):
    """slab2 (a test shape of the toy set: a 1.3 x 0.2 x 1.1 box in its sample file's frame) with its source."""
    from core.evaluation.held_out_split import list_split

    shape = next(s for s in list_split(toy_trained["data"], "test") if s.id == "slab2")
    path = tmp_path / "slab2.obj"
    trimesh.creation.box(extents=(1.3, 0.2, 1.1)).export(path)
    return replace(shape, source=path)


def test_scan_rows_measure_the_unseen_side_per_camera(toy_trained, tmp_path):
    from core.evaluation.loop import evaluate_split
    from core.evaluation.report import summarise
    from core.evaluation.settings import EvalSettings
    from core.tto.config import TTOConfig

    shape = _slab_source(toy_trained, tmp_path)
    views = [replace(shape, view="front"), replace(shape, view="top")]
    settings = EvalSettings(resolution=32, n_eval_points=2000, grid_reference=False, observation="scan")
    config = TTOConfig(iterations=20, n_samples=1000)
    front, top = evaluate_split(toy_trained["model"], views, config, settings)
    assert (front["view"], top["view"]) == ("front", "top")
    # a camera at +z sees the slab's thin front edge (7 % of its area), one at +y its top face (37 %): the rest
    # stays unseen
    assert 0.88 < front["unseen_share"] < 0.96 and 0.56 < top["unseen_share"] < 0.68
    for row in (front, top):
        assert 0.0 <= row["unseen_fscore_1pct"] <= 1.0 and 0.0 <= row["fscore_1pct"] <= 1.0
    assert "unseen F@1 %" in summarise([front, top])["all"]


def test_evaluate_command_refuses_a_scan_without_a_source(toy_trained, tmp_path):
    """The toy set records no source meshes: each scan row fails with a clear reason and the command says every
    shape failed."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "main.py", "evaluate", "--ckpt", str(toy_trained["ckpt"]), "--data", str(toy_trained["data"]),
         "--observation", "scan", "--scan-directions", "front", "--iterations", "2", "--resolution", "16",
         "--no-grid-reference", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "a partial scan needs the source mesh" in (out / "results.csv").read_text(encoding="utf-8")
    # the run records the prior anchor's weight its fits resolve for a scan, not the automatic placeholder
    recorded = json.loads((out / "results.json").read_text(encoding="utf-8"))["config"]
    assert recorded["finetune_anchor_weight"] == PARTIAL_SCAN_ANCHOR_WEIGHT


@pytest.mark.parametrize("flag", ["--use-trained-codes"])
def test_evaluate_command_refuses_scans_with_trained_codes(toy_trained, tmp_path, flag):
    proc = subprocess.run(
        [sys.executable, "main.py", "evaluate", "--ckpt", str(toy_trained["ckpt"]), "--data", str(toy_trained["data"]),
         "--observation", "scan", flag, "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "--observation scan fits scans" in proc.stderr
