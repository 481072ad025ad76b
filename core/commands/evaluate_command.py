"""``python main.py evaluate``: reconstruct a data set split and report metrics per class.

Writes ``results.csv`` (one row per shape), ``summary.md`` (per-class table) and
``results.json`` into ``--out``; with ``--ablation a,b,c`` one sub-folder per loss set and
``ablation.md`` / ``ablation.json`` with the comparison table, which is also printed.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.errors import ExplorerError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.tto.config import LOSS_PRESETS

    parser.add_argument("--ckpt", type=Path, required=True, help="trained checkpoint (.pt)")
    parser.add_argument("--data", type=Path, required=True, help="data set folder (manifest.json, SdfSamples/)")
    parser.add_argument("--split", default="test", help="split to evaluate: test (default) or train")
    parser.add_argument("--losses", default="baseline",
                        help=f"loss set: {', '.join(LOSS_PRESETS)} or a comma list (default: baseline)")
    parser.add_argument("--ablation", default=None,
                        help="semicolon- or comma-separated loss sets to compare, e.g. baseline,surface,curriculum,coarse_to_fine,all")
    parser.add_argument("--limit", type=int, default=None, help="at most N shapes per class")
    parser.add_argument("--classes", nargs="*", default=None, help="only these classes")
    parser.add_argument("--iterations", type=int, default=None, help="TTO steps per shape (default 800)")
    parser.add_argument("--samples-per-step", type=int, default=None, help="SDF samples per step (default 8000)")
    parser.add_argument("--resolution", type=int, default=128, help="marching-cubes grid resolution")
    parser.add_argument("--eval-points", type=int, default=30_000, help="points sampled on each reconstruction")
    parser.add_argument("--infer-class", action="store_true", help="infer each shape's class (reports class accuracy)")
    parser.add_argument("--class-as-text", action="store_true",
                        help="text models: condition on the class name as a free prompt (zero-shot for unseen classes)")
    parser.add_argument("--use-trained-codes", action="store_true",
                        help="training split: use the checkpoint's codes instead of fitting")
    parser.add_argument("--save-meshes", action="store_true", help="write every reconstruction under OUT/meshes/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true")


def _loss_sets(text: str) -> list[str]:
    # "a,b,c" lists single presets; "a+b;c" allows combined sets separated by ';'.
    if ";" in text:
        return [part.strip() for part in text.split(";") if part.strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    from core.evaluation import EvalSettings, class_table_markdown, evaluate_split, list_split, run_ablation, write_results
    from core.model import load_trained_model
    from core.tto.config import TTOConfig, parse_losses

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        overrides = {}
        if args.iterations is not None:
            overrides["iterations"] = args.iterations
        if args.samples_per_step is not None:
            overrides["n_samples"] = args.samples_per_step
        config = TTOConfig.from_losses(args.losses, **overrides)
        loss_sets = _loss_sets(args.ablation) if args.ablation else []
        for losses in loss_sets:
            parse_losses(losses)
        if args.use_trained_codes and loss_sets:
            raise ExplorerError("--use-trained-codes fits nothing, so --ablation has nothing to compare; drop one of them.")
        model = load_trained_model(args.ckpt, device=args.device) if args.device else load_trained_model(args.ckpt)
        shapes = list_split(args.data, args.split, limit=args.limit, classes=args.classes)
    except (ExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = EvalSettings(resolution=args.resolution, n_eval_points=args.eval_points, infer_class=args.infer_class, class_as_text=args.class_as_text,
                            use_trained_codes=args.use_trained_codes, seed=args.seed, save_meshes=args.save_meshes,
                            device=args.device)

    def report(*values) -> None:
        if args.quiet:
            return
        *prefix, i, n, row = values
        cd = row.get("chamfer_x1e3")
        status = row.get("error") or f"CD×10³ {cd:.3f}, F@1 {100 * row.get('fscore_1pct', 0):.1f} %, {row.get('seconds', 0):.1f} s"
        print(f"{' '.join(prefix)} [{i}/{n}] {row['class']}/{row['id']}: {status}", flush=True)

    meta = {"checkpoint": str(args.ckpt), "data": str(args.data), "split": args.split, "n_shapes": len(shapes)}
    try:
        if loss_sets:
            _, table = run_ablation(model, shapes, loss_sets, config, settings, args.out, report)
            print(table)
            print(f"→ {args.out / 'ablation.md'}")
        else:
            rows = evaluate_split(model, shapes, config, settings, args.out, report)
            summary = write_results(args.out, rows, config, settings, meta)
            print(class_table_markdown(summary))
            print(f"→ {args.out / 'summary.md'}")
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
