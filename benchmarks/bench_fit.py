"""Fit speed on real shapes: today's plain fit against the fast one, and class inference, in one process.

On the first ``--limit`` shapes per class of a data set's split (default: the held-out ``test``
split of ``data/sweethome3d``), with the decoder fine-tuning on (the ``finetune`` loss set,
``--iterations`` code steps + ``--finetune-iterations`` fine-tuning steps):

* the plain fit: float32 matrix products and DeepSDF's full batch at every code step
  (``--tto-set precision=float32 --tto-set early_sample_share=1``);
* the fast fit: the defaults (bfloat16 autocast on a CPU with native bfloat16 units);
* cheaper fast fits (``--fit-paths``): a share of the batch before the code fit's learning-rate decay, two
  thirds of the steps, fewer samples a step, fewer code or fine-tuning steps;

each meshed at ``--resolution`` and measured against the shape's ground truth by the evaluation's
own code (F@1, thin F@1, Chamfer): the speed-up must not cost fit quality (F@1 within 0.5 points);
and class inference, each strategy on the same shapes:

* ``sequential``: a 100-step float32 short fit under every class, one after another (the reference);
* ``batched``: the default (all classes' short fits in one batched forward per step);

with its accuracy and its time as a share of the fast fit's.

    python -m benchmarks.bench_fit --ckpt resources/real/model.pt --data data/sweethome3d --limit 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from benchmarks.device_info import device_line
from core.commands.cli_types import non_negative_int
from core.evaluation.held_out_split import list_split
from core.evaluation.loop import evaluate_split
from core.evaluation.settings import EvalSettings
from core.model.loading import load_trained_model
from core.tto.config import INTERACTIVE_LR, INTERACTIVE_SAMPLES, TTOConfig
from core.tto.fit import fit
from core.tto.observations import from_npz
from core.utils.markdown import markdown_table

FIT_PATHS: dict[str, tuple[str, dict[str, Any]]] = {
    "plain": ("plain (float32, DeepSDF's batch)", {"precision": "float32", "early_sample_share": 1.0}),
    "fast": ("fast (defaults)", {}),
    "two-thirds": ("fast, 2/3 of the steps", {"steps": 2 / 3}),
    "samples-4000": ("fast, 4,000 samples a step", {"n_samples": 4000}),
    "code-200": ("fast, 200 code steps", {"code_steps": 200}),
    "code-200-samples-5000": ("fast, 200 code steps, 5,000 samples", {"code_steps": 200, "n_samples": 5000}),
    "code-200-decay-150": ("fast, 200 code steps (decay at 150)", {"code_steps": 200, "lr_decay_every": 150}),
    "early-quarter": ("fast, a quarter of the samples before the decay", {"early_sample_share": 0.25}),
    "early-half": ("fast, half the samples before the decay", {"early_sample_share": 0.5}),
    "early-eighth": ("fast, an eighth of the samples before the decay", {"early_sample_share": 0.125}),
    "early-quarter-code-250": (
        "fast, 250 code steps (decay at 150), a quarter of the samples before the decay",
        {"early_sample_share": 0.25, "code_steps": 250, "lr_decay_every": 150},
    ),
    "early-quarter-finetune-250": (
        "fast, 250 fine-tuning steps, a quarter of the samples before the decay",
        {"early_sample_share": 0.25, "finetune_steps": 250},
    ),
    "early-quarter-code-200": (
        "fast, 200 code steps, a quarter of the samples before the decay",
        {"early_sample_share": 0.25, "code_steps": 200},
    ),
}


def _hard_draws_path(share: float, samples: int | None = None) -> tuple[str, dict]:
    """A fit path with ``hard_draws`` on: ``share`` of each batch drawn by error, ``samples`` a step."""
    amount = "half" if share == 0.5 else "a quarter" if share == 0.25 else f"{share:g}"
    label = f"fast, {f'{samples:,} samples a step, ' if samples else ''}{amount} drawn by error"
    return label, {"hard_draws": True, "hard_share": share, **({"n_samples": samples} if samples else {})}


FIT_PATHS.update(
    {
        "hard-half": _hard_draws_path(0.5),
        "hard-half-4000": _hard_draws_path(0.5, 4000),
        "hard-quarter-4000": _hard_draws_path(0.25, 4000),
        "hard-half-3000": _hard_draws_path(0.5, 3000),
        # what the viewer runs with "fine-tune last layers" ticked: its samples, draws and code rate
        "viewer": (
            "the viewer's: 4,000 samples a step, half drawn by error, code rate 1e-2",
            {**_hard_draws_path(0.5, INTERACTIVE_SAMPLES)[1], "lr": INTERACTIVE_LR},
        ),
    }
)
DEFAULT_FIT_PATHS = ["plain", "fast", "hard-half-4000"]
CLASS_PATHS = {
    "sequential": (
        "sequential 100 steps, float32",
        {"class_strategy": "sequential", "precision": "float32", "early_sample_share": 1.0},
    ),
    "batched": ("batched (defaults)", {}),
}


def mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and r[key] == r[key]]  # not NaN
    return statistics.fmean(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="resources/real/model.pt")
    ap.add_argument("--data", default="data/sweethome3d")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=1, help="shapes per class")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--finetune-iterations", type=int, default=300)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--skip-fits", action="store_true", help="class inference only")
    ap.add_argument("--skip-classes", action="store_true", help="fits only")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--seed", type=non_negative_int, default=0, help="seeds every fit (its code's start and sample draws)"
    )
    ap.add_argument(
        "--class-limit",
        type=int,
        default=None,
        help="class inference on the first N shapes per class (default: --limit; 0: the whole split)",
    )
    ap.add_argument(
        "--fit-paths",
        nargs="+",
        choices=list(FIT_PATHS),
        default=DEFAULT_FIT_PATHS,
        help="which fits to run; the first is the reference of the 'x' column",
    )
    ap.add_argument(
        "--class-strategies",
        nargs="+",
        choices=list(CLASS_PATHS),
        default=list(CLASS_PATHS),
        help="which class inference strategies to time (sequential: about 90 s a shape)",
    )
    args = ap.parse_args()
    if args.class_limit is not None and args.class_limit < 0:
        ap.error(f"--class-limit {args.class_limit}: give a number of shapes per class, or 0 for the whole split")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_trained_model(args.ckpt, "cpu")
    shapes = [s for s in list_split(args.data, args.split, limit=args.limit) if s.class_name in model.class_names]
    print(device_line(model.device))
    print(f"{args.ckpt}: {len(shapes)} shapes of {args.data} ({args.split}, {args.limit} per class)")
    fit_seconds: dict[str, float] = {}
    if not args.skip_fits:
        print(
            f"\n### Fits with decoder fine-tuning ({args.iterations} + {args.finetune_iterations} steps, "
            f"{args.resolution}^3)\n"
        )
        table = []
        settings = EvalSettings(resolution=args.resolution, grid_reference=False, n_eval_points=30_000, seed=args.seed)
        plain_s = None
        for key in args.fit_paths:
            name, path = FIT_PATHS[key]
            overrides = dict(path)
            share = overrides.pop("steps", 1.0)
            code_steps = overrides.pop("code_steps", round(share * args.iterations))
            finetune_steps = overrides.pop("finetune_steps", round(share * args.finetune_iterations))
            config = TTOConfig.from_losses(
                "finetune",
                iterations=max(1, int(code_steps)),
                finetune_iterations=max(1, int(finetune_steps)),
                **overrides,
            )
            rows = evaluate_split(model, shapes, config, settings)
            seconds = statistics.median(r["seconds_fit"] for r in rows)
            plain_s = plain_s or seconds
            fit_seconds[name] = seconds
            cd = statistics.median(r["chamfer_x1e3"] for r in rows if "chamfer_x1e3" in r)
            table.append(
                [
                    name,
                    f"{config.iterations} + {config.finetune_iterations}",
                    f"{seconds:.1f}",
                    f"{seconds / plain_s:.2f}x",
                    f"{100 * mean(rows, 'fscore_1pct'):.1f}",
                    f"{100 * mean(rows, 'thin_fscore_1pct'):.1f}",
                    f"{cd:.3f}",
                    f"{mean(rows, 'colour_delta_e'):.2f}",
                ]
            )
        print(
            markdown_table(
                [
                    "path",
                    "steps",
                    "s per fit (median)",
                    f"x {args.fit_paths[0]}",
                    "F@1 %",
                    "thin F@1 %",
                    "CD x1e3 median",
                    "ΔE00 mean",
                ],
                table,
                align="llrrrrrr",
            ),
            flush=True,
        )
    if not args.skip_classes:
        class_limit = args.limit if args.class_limit is None else (args.class_limit or None)
        probed = [s for s in list_split(args.data, args.split, limit=class_limit) if s.class_name in model.class_names]
        print(f"\n### Class inference ({len(model.class_names)} classes, {len(probed)} shapes)\n")
        table, notes = [], []
        observations = {s.id: from_npz(s.file) for s in probed}
        reference = None
        for key in args.class_strategies:
            name, overrides = CLASS_PATHS[key]
            config = TTOConfig.from_losses("baseline", iterations=1, **overrides)
            times, wrong = [], []
            per_class: dict[str, list[int]] = {}  # class -> [right, tried]
            for shape in probed:
                tic = time.perf_counter()
                result = fit(model, observations[shape.id], config, seed=0)
                times.append(time.perf_counter() - tic)
                tally = per_class.setdefault(shape.class_name, [0, 0])
                tally[0] += result.class_name == shape.class_name
                tally[1] += 1
                if result.class_name != shape.class_name:
                    wrong.append(f"{shape.class_name}->{result.class_name}")
            correct = sum(right for right, _ in per_class.values())
            seconds = statistics.median(times)
            reference = reference or seconds
            fastest = min(fit_seconds.values()) if fit_seconds else float("nan")
            share = seconds / fastest
            table.append(
                [name, f"{seconds:.1f}", f"{seconds / reference:.2f}x", f"{share:.0%}", f"{correct}/{len(probed)}"]
            )
            notes.append(f"<!-- {name}: wrong {', '.join(wrong) or 'none'} -->")
            tallies = ", ".join(f"{c} {k}/{n}" for c, (k, n) in sorted(per_class.items()))
            notes.append(f"<!-- {name}: per class {tallies} -->")
        print(
            markdown_table(
                ["strategy", "s per shape (median)", "x sequential", "share of the fastest fit", "correct"], table
            )
        )
        print("\n".join(notes), flush=True)


if __name__ == "__main__":
    main()
