"""How often is the inferred class right on the held-out split of every class, and what would do better?

Class inference (:func:`core.tto.fit.iterate_fit` with no class) fits a short code under every class at
once and keeps the class whose fit reaches the lowest SDF loss. This study measures it on *every*
held-out shape of a data set's split (not the first of each class, as ``benchmarks.bench_fit`` does)
and sets two alternatives beside it that need no decoder at all:

* ``fit`` rows: the batched short fits, at the defaults and at each ``--variants`` override
  (``class_iterations=250,class_samples=200``: longer fits on fewer points at the same cost);
* ``descriptor``: a logistic regression over a 63-number description of the observation's surface
  points (extents, height histogram, radial profile per height band, a coarse occupancy grid folded
  left-right, the D2 distance histogram, how vertical the normals are), trained on the training split
  of the same data set (the model's training shapes): what the *shape's outline alone* tells;
* ``descriptor breaks near-ties``: the fit's pick, unless its two best classes are within 2 % of each
  other, where the descriptor chooses between them.

Each row gives the share right, per class, and the seconds per shape. Run from the repository root::

    python -m studies.class_inference_study --ckpt resources/real/model.pt --data data/sweethome3d \\
        --out runs/class_inference
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from core.commands.cli_types import positive_int
from core.data.samples import read_samples
from core.evaluation.held_out_split import EvalShape, list_split
from core.model.loading import load_trained_model
from core.model.trained_model import TrainedModel
from core.tto.config import TTOConfig
from core.tto.fit import fit
from core.tto.observations import from_npz
from core.utils.errors import ExplorerError
from core.utils.io_utils import atomic_write_bytes, atomic_write_json
from core.utils.markdown import markdown_table

NEAR_TIE = 1.02
"""The fit's two best classes closer than this ratio of SDF losses count as a near-tie."""


def surface_descriptor(points: np.ndarray, normals: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """63 numbers describing a shape's surface points (unit-sphere frame, y up): see the module docstring.

    Scale-free within the frame (the normalisation already took the size out) and mirror-free in x (the
    occupancy grid is folded), so a chair facing left and one facing right describe alike.
    """
    rng = np.random.default_rng(seed)
    if len(points) > 4000:
        points = points[rng.choice(len(points), 4000, replace=False)]
    lo, hi = points.min(0), points.max(0)
    extent = np.maximum(hi - lo, 1e-6)
    centre = (lo + hi) / 2
    wide, narrow = max(extent[0], extent[2]), min(extent[0], extent[2])
    outline = [extent[1], wide, narrow, extent[1] / extent.max()]
    unit = (points - lo) / extent
    heights = np.histogram(unit[:, 1], 10, (0, 1))[0] / len(points)
    radius = np.hypot(points[:, 0] - centre[0], points[:, 2] - centre[2]) / wide
    band = np.minimum((unit[:, 1] * 5).astype(int), 4)
    radial = [radius[band == b].mean() if np.any(band == b) else 0.0 for b in range(5)]
    radial += [radius[band == b].std() if np.any(band == b) else 0.0 for b in range(5)]
    folded = np.c_[np.abs(unit[:, 0] - 0.5) * 2, unit[:, 1], unit[:, 2]]
    occupancy = np.histogramdd(folded, bins=(2, 4, 3), range=((0, 1), (0, 1), (0, 1)))[0].ravel() / len(points)
    pairs = rng.integers(0, len(points), (2, 3000))
    d2 = np.histogram(np.linalg.norm(points[pairs[0]] - points[pairs[1]], axis=1), 12, (0, 2))[0] / 3000
    upright = np.zeros(5) if normals is None else np.histogram(np.abs(normals[:, 1]), 5, (0, 1))[0] / len(normals)
    return np.r_[outline, heights, radial, occupancy, d2, upright]


class DescriptorClassifier:
    """Multinomial logistic regression on standardised :func:`surface_descriptor` rows (torch, L2 1e-2)."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, n_classes: int, steps: int = 2000) -> None:
        self.mean = features.mean(0)
        self.std = features.std(0) + 1e-6
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(features.shape[1], n_classes)
        optimizer = torch.optim.Adam(self.linear.parameters(), lr=1e-2, weight_decay=1e-2)
        x = torch.as_tensor((features - self.mean) / self.std, dtype=torch.float32)
        y = torch.as_tensor(labels)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(self.linear(x), y).backward()
            optimizer.step()

    @torch.no_grad()
    def log_probs(self, features: np.ndarray) -> np.ndarray:
        x = torch.as_tensor((features - self.mean) / self.std, dtype=torch.float32)
        return torch.log_softmax(self.linear(x), dim=-1).numpy()


def describe(shapes: Sequence[EvalShape]) -> np.ndarray:
    rows = []
    for shape in shapes:
        samples = read_samples(shape.file)
        rows.append(surface_descriptor(samples.surface_points, samples.surface_normals))
    return np.array(rows)


def fit_scores(model: TrainedModel, shapes: Sequence[EvalShape], config: TTOConfig) -> tuple[np.ndarray, list[float]]:
    """(shapes, classes) SDF losses of the batched short fits, and the seconds each shape took."""
    losses, seconds = [], []
    for shape in shapes:
        tic = time.perf_counter()
        result = fit(model, from_npz(shape.file), config, seed=0)
        seconds.append(time.perf_counter() - tic)
        assert result.class_scores is not None
        losses.append([result.class_scores[name] for name in model.class_names])
    return np.array(losses), seconds


def row(name: str, picks: np.ndarray, truth: np.ndarray, names: Sequence[str], seconds: float) -> dict[str, Any]:
    per_class = {c: f"{int(np.sum(picks[truth == k] == k))}/{int(np.sum(truth == k))}" for k, c in enumerate(names)}
    correct = int(np.sum(picks == truth))
    return {"strategy": name, "correct": correct, "shapes": len(truth), "seconds": seconds, "per_class": per_class}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="resources/real/model.pt")
    ap.add_argument("--data", default="data/sweethome3d")
    ap.add_argument("--out", type=Path, required=True, help="folder for results.json and summary.md")
    ap.add_argument("--limit", type=positive_int, default=None, help="held-out shapes per class (default: all)")
    ap.add_argument("--variants", nargs="*", default=[], help="TTO overrides of extra fit rows, e.g. class_samples=250")
    ap.add_argument("--threads", type=positive_int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        rows = study(args)
    except ExplorerError as exc:  # a missing data set or checkpoint, a bad --variants override
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = markdown_table(
        ["strategy", "correct", "%", "s per shape (median)", "per class"],
        [
            [
                r["strategy"],
                f"{r['correct']}/{r['shapes']}",
                f"{100 * r['correct'] / r['shapes']:.0f}",
                f"{r['seconds']:.2f}",
                ", ".join(f"{c} {v}" for c, v in r["per_class"].items()),
            ]
            for r in rows
        ],
        align="lrrrl",
    )
    atomic_write_bytes(args.out / "summary.md", (table + "\n").encode())
    print(table)
    return 0


def study(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every strategy's row on the held-out split; results.json written to ``args.out``.

    The variants and the output folder are checked before any fit (a typo fails at once, not after the first row).
    """
    variants = {
        spec: TTOConfig.from_losses("baseline", iterations=1).with_overrides(spec.split(",")) for spec in args.variants
    }
    if args.out.exists() and not args.out.is_dir():
        raise ExplorerError(f"--out {args.out}: a file is there; give a folder for results.json and summary.md")
    model = load_trained_model(args.ckpt, "cpu")
    names = list(model.class_names)
    test = [s for s in list_split(args.data, "test", limit=args.limit) if s.class_name in names]
    train = [s for s in list_split(args.data, "train") if s.class_name in names]
    truth = np.array([names.index(s.class_name) for s in test])
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    base = TTOConfig.from_losses("baseline", iterations=1)
    losses, seconds = fit_scores(model, test, base)
    rows.append(row("fit (defaults)", losses.argmin(1), truth, names, statistics.median(seconds)))
    for spec, config in variants.items():
        other, other_s = fit_scores(model, test, config)
        rows.append(row(f"fit ({spec})", other.argmin(1), truth, names, statistics.median(other_s)))
    tic = time.perf_counter()
    classifier = DescriptorClassifier(describe(train), np.array([names.index(s.class_name) for s in train]), len(names))
    log_p = classifier.log_probs(describe(test))
    per_shape = (time.perf_counter() - tic) / len(test)
    rows.append(row("descriptor (no decoder)", log_p.argmax(1), truth, names, per_shape))
    order = np.argsort(losses, 1)
    best, second = np.take_along_axis(losses, order[:, :2], axis=1).T
    ties = second < NEAR_TIE * best
    rows_at = np.arange(len(test))
    descriptor_second = log_p[rows_at, order[:, 1]] > log_p[rows_at, order[:, 0]]
    picks = np.where(ties & descriptor_second, order[:, 1], order[:, 0])
    rows.append(row("descriptor breaks near-ties", picks, truth, names, statistics.median(seconds) + per_shape))
    atomic_write_json(args.out / "results.json", {"ckpt": args.ckpt, "data": args.data, "rows": rows})
    return rows


if __name__ == "__main__":
    sys.exit(main())
