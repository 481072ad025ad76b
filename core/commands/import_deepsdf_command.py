"""``python main.py import-deepsdf EXPERIMENT --out model.pt``: a DeepSDF experiment as this project's checkpoint.

    python main.py import-deepsdf ~/DeepSDF/examples/chairs --out chairs.pt
    python main.py import-deepsdf ~/DeepSDF/examples/chairs --epoch 1000 --out chairs_1000.pt

Reads the experiment directory of the original code (specs.json, ModelParameters/, LatentCodes/,
the train split that specs.json names) without running its pickles and writes one checkpoint
(shape codes, shape names, class = ShapeNet synset, no colour) that ``view``, ``reconstruct``
and ``evaluate`` read like any other. Those commands also take the experiment directory itself;
the checkpoint is one file to keep or share.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.utils.errors import ExplorerError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment", type=Path, help="DeepSDF experiment directory (holds specs.json, ModelParameters/, LatentCodes/)"
    )
    parser.add_argument(
        "--epoch", default=None, help="an epoch number or 'latest' (default: latest.pth, else the highest epoch saved)"
    )
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="train split JSON (default: specs.json's TrainSplit, searched from the experiment up)",
    )
    parser.add_argument("--out", type=Path, required=True, help="checkpoint file to write (.pt)")


def run(args: argparse.Namespace) -> int:
    from core.model.deepsdf_format import load_deepsdf_experiment, save_imported_checkpoint

    out: Path = args.out
    if out.is_dir():
        print(
            f"error: --out {out}: is a folder; name the checkpoint file to write, e.g. {out / 'model.pt'}",
            file=sys.stderr,
        )
        return 2
    try:
        model = load_deepsdf_experiment(args.experiment, epoch=args.epoch, split=args.split, device="cpu")
        written = save_imported_checkpoint(model, out)
    except (ExplorerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in model.stats.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    classes = ", ".join(f"{c} ({len(model.codes_of_class(c))})" for c in model.class_names)
    dims = model.config.hidden_dims
    print(
        f"{len(model.shape_ids)} codes of length {model.code_size} in {len(model.class_names)} classes: {classes}; "
        f"decoder {len(dims)} x {max(dims)}, epoch {model.stats.get('deepsdf_epoch')} "
        f"({model.stats.get('checkpoint')}.pth) → {written}"
    )
    return 0
