"""``python main.py evaluate``: reconstruct a data set split and report metrics per class.

Writes ``results.csv`` (one row per shape), ``summary.md`` (per-class table) and
``results.json`` into ``--out``; with ``--ablation a,b,c`` one sub-folder per loss set and
``ablation.md`` / ``ablation.json`` with the comparison table, which is also printed.
A shape that cannot be evaluated (a damaged sample file, a class the model does not know)
gets an error row and the others go on; the command exits 1 when every shape failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from core.commands.cli_types import (
    add_tto_set_argument,
    check_out_dir,
    finite_float,
    non_negative_int,
    positive_float,
    positive_int,
    resolution,
)
from core.utils.errors import ExplorerError

__all__ = ["add_arguments", "run"]

OUTPUT_FILES = ("results.csv", "summary.md", "results.json", "ablation.md", "ablation.json")
"""What the command writes into ``--out`` (an ablation also into one sub-folder per loss set)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.evaluation.settings import EvalSettings
    from core.tto.config import LOSS_PRESETS, TTOConfig
    from core.tto.scan import SCAN_DIRECTIONS
    from core.utils.config_io import arg_default

    parser.add_argument("--ckpt", type=Path, required=True, help="trained checkpoint (.pt)")
    parser.add_argument("--data", type=Path, required=True, help="data set folder (manifest.json, SdfSamples/)")
    parser.add_argument("--split", default="test", help="split to evaluate: test (default) or train")
    parser.add_argument(
        "--losses", default="baseline", help=f"loss set: {', '.join(LOSS_PRESETS)} or a comma list (default: baseline)"
    )
    parser.add_argument(
        "--ablation",
        default=None,
        help="semicolon- or comma-separated loss sets to compare, e.g. baseline,surface,curriculum,coarse_to_fine,all",
    )
    parser.add_argument("--limit", type=positive_int, default=None, help="at most N shapes per class")
    parser.add_argument("--classes", nargs="*", default=None, help="only these classes")
    parser.add_argument(
        "--observation",
        choices=("samples", "scan"),
        default="samples",
        help="fit each shape to its sample file (a full observation, the default) or to single-view depth scans "
        "of its source mesh (partial observations; rows also measure the unseen side: unseen F@1)",
    )
    parser.add_argument(
        "--scan-directions",
        nargs="+",
        default=list(SCAN_DIRECTIONS),
        choices=list(SCAN_DIRECTIONS),
        help="with --observation scan: the cameras, one row per shape and direction (default: all)",
    )
    parser.add_argument(
        "--iterations", type=positive_int, **arg_default(TTOConfig, "iterations", "TTO steps per shape")
    )
    parser.add_argument(
        "--samples-per-step", type=positive_int, **arg_default(TTOConfig, "n_samples", "SDF samples per step")
    )
    parser.add_argument("--lr", type=positive_float, **arg_default(TTOConfig, "lr", "code learning rate"))
    add_tto_set_argument(parser, "--losses / --ablation")
    parser.add_argument(
        "--resolution", type=resolution, **arg_default(EvalSettings, "resolution", "marching-cubes grid resolution")
    )
    parser.add_argument(
        "--eval-points",
        type=positive_int,
        **arg_default(EvalSettings, "n_eval_points", "points sampled on each reconstruction"),
    )
    parser.add_argument(
        "--infer-class",
        action="store_true",
        help="infer each shape's class (once per shape, shared by an ablation's loss sets); reports class accuracy",
    )
    parser.add_argument(
        "--class-as-text",
        action="store_true",
        help="text models: condition on the class name as a free prompt (zero-shot for unseen classes)",
    )
    parser.add_argument(
        "--text-prompt",
        choices=("class", "description"),
        default=None,
        help="text models only: condition each shape on its class name as a prompt (class) or on its "
        "own description from the manifest (description); zero-shot for unseen classes",
    )
    parser.add_argument(
        "--use-trained-codes", action="store_true", help="training split: use the checkpoint's codes instead of fitting"
    )
    parser.add_argument(
        "--no-grid-reference",
        dest="grid_reference",
        action="store_false",
        help="skip meshing each source mesh's exact SDF on the same grid (the reference the "
        "'floaters beyond gt grid %%' column counts against, and the grid's ceiling "
        "'gt grid F@1 %%' / 'gt grid thin F@1 %%'; 2-5 s a shape)",
    )
    parser.add_argument(
        "--iso-level",
        type=finite_float,
        default=0.0,
        help="mesh the level set sdf = LEVEL instead of 0 (SDF units; a voxel is 2/(resolution-1)): "
        "a small positive level dilates the surface, closing torn thin sheets at a cost "
        "in accuracy everywhere",
    )
    parser.add_argument("--save-meshes", action="store_true", help="write every reconstruction under OUT/meshes/")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--device", default=None, help="auto / cpu / cuda[:N] (default: CUDA when present)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-shape lines")


def _loss_sets(text: str) -> list[str]:
    # "a,b,c" lists single presets; "a+b;c" allows combined sets separated by ';'.
    if ";" in text:
        return [part.strip() for part in text.split(";") if part.strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


def _shape_line(prefix: str, row: dict[str, Any]) -> str:
    """``ball/ball2: inferred ball ✓, CD×10³ 1.234, F@1 56.7 %, 3.2 s`` (or the row's error)."""
    name = f"{prefix}{row['class']}/{row['id']}"
    if "error" in row:
        return f"{name}: failed: {row['error']}"
    parts = []
    if row.get("class_source") == "inferred":
        correct = row.get("class_correct")
        mark = " (true class unknown to the model)" if correct is None else (" ✓" if correct else " ✗")
        parts.append(f"inferred {row.get('class_pred')}{mark}")
    parts.append(
        f"CD×10³ {row.get('chamfer_x1e3', float('nan')):.3f}, F@1 {100 * row.get('fscore_1pct', 0):.1f} %, "
        f"{row.get('seconds', 0):.1f} s"
    )
    return f"{name}: " + ", ".join(parts)


def _check_choices(args: argparse.Namespace, loss_sets: list[str]) -> None:
    """Options that contradict each other, refused before any work (ExplorerError naming both)."""
    if args.use_trained_codes and loss_sets:
        raise ExplorerError("--use-trained-codes fits nothing, so --ablation has nothing to compare; drop one of them.")
    if args.use_trained_codes and args.observation == "scan":
        raise ExplorerError("--observation scan fits scans; --use-trained-codes fits nothing. Give one of them.")
    if args.text_prompt and (args.infer_class or args.class_as_text or args.use_trained_codes):
        other = (
            "--infer-class"
            if args.infer_class
            else ("--class-as-text" if args.class_as_text else "--use-trained-codes")
        )
        raise ExplorerError(f"--text-prompt and {other} both choose what a shape is conditioned on; give one of them.")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from core.evaluation.ablation import run_ablation
    from core.evaluation.class_choice import check_text_prompt
    from core.evaluation.held_out_split import list_split
    from core.evaluation.loop import evaluate_split
    from core.evaluation.report import class_table_markdown, write_results
    from core.evaluation.settings import EvalSettings
    from core.model import load_trained_model
    from core.training.config import TrainConfig
    from core.tto.config import TTOConfig, for_observation, parse_losses
    from core.utils.devices import resolve_device

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = TTOConfig.from_losses(
            args.losses, iterations=args.iterations, n_samples=args.samples_per_step, lr=args.lr
        ).with_overrides(args.tto_overrides)
        # the automatic settings as every fit of this run resolves them, so results.json records what ran
        config = for_observation(config, "scan" if args.observation == "scan" else "npz")
        loss_sets = _loss_sets(args.ablation) if args.ablation else []
        for losses in loss_sets:
            parse_losses(losses)
        _check_choices(args, loss_sets)
        device = resolve_device(args.device)
        shapes = list_split(args.data, args.split, limit=args.limit, classes=args.classes)
        if args.observation == "scan":  # one partial observation per shape and camera
            shapes = [replace(shape, view=view) for shape in shapes for view in args.scan_directions]
        check_out_dir(args.out, files=OUTPUT_FILES)
        model = load_trained_model(args.ckpt, device=device)
        clamp = float((model.full_config.get("train") or {}).get("clamp", TrainConfig().clamp))
        if abs(args.iso_level) >= clamp:
            raise ExplorerError(
                f"--iso-level {args.iso_level:g} is beyond the model's training clamp ({clamp:g}): "
                "its field is not a distance there; use a level of a voxel or less, "
                f"e.g. {1.0 / (args.resolution - 1):.4f} at {args.resolution}³."
            )
        if args.text_prompt:
            check_text_prompt(model, shapes, args.text_prompt)
    except (ExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = EvalSettings(
        resolution=args.resolution,
        n_eval_points=args.eval_points,
        infer_class=args.infer_class,
        class_as_text=args.class_as_text,
        text_prompt=args.text_prompt,
        use_trained_codes=args.use_trained_codes,
        grid_reference=args.grid_reference,
        seed=args.seed,
        save_meshes=args.save_meshes,
        iso_level=args.iso_level,
        observation=args.observation,
        device=str(device),
    )

    n_runs = max(1, len(loss_sets))
    bar = tqdm(total=len(shapes) * n_runs, unit="shape", desc="evaluate", disable=args.quiet, dynamic_ncols=True)

    def report(*values) -> None:
        *prefix, _i, _n, row = values
        bar.update(1)
        bar.set_postfix_str(f"{prefix[0] + ' ' if prefix else ''}{row['class']}/{row['id']}", refresh=False)
        if not args.quiet or "error" in row:
            tqdm.write(_shape_line(f"[{prefix[0]}] " if prefix else "", row), file=sys.stderr)

    def step(shape, progress) -> None:
        bar.set_postfix_str(f"{shape.class_name}/{shape.id} {progress.stage} step {progress.iteration}")

    meta = {
        "checkpoint": str(args.ckpt),
        "data": str(args.data),
        "split": args.split,
        "n_shapes": len(shapes),
        "device": str(device),
    }
    try:
        if loss_sets:
            summaries, table = run_ablation(
                model, shapes, loss_sets, config, settings, args.out, report, meta=meta, on_step=step
            )
            failed = [int(s["all"]["n_failed"]) for s in summaries.values()]
            bar.close()
            print(table)
            print(f"→ {args.out / 'ablation.md'}")
        else:
            rows = evaluate_split(model, shapes, config, settings, args.out, report, on_step=step)
            summary = write_results(args.out, rows, config, settings, meta)
            failed = [int(summary["all"]["n_failed"])]
            bar.close()
            print(class_table_markdown(summary))
            print(f"→ {args.out / 'summary.md'}")
    except ExplorerError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.close()
        print("interrupted: no results written for the unfinished loss set", file=sys.stderr)
        return 130
    if all(n == len(shapes) for n in failed):
        print(
            f"error: every shape failed ({len(shapes)} of {len(shapes)}); the reasons are in the error column "
            f"of {args.out / 'results.csv' if not loss_sets else args.out / '*' / 'results.csv'} and above.",
            file=sys.stderr,
        )
        return 1
    return 0
