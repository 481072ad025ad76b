"""``python main.py augment``: a data set → a new one with transformed copies of its training shapes.

The copies (small anisotropic scales, left-right mirrors; see :mod:`core.data.augment`) are resampled
from their meshes with the data set's own settings; the original shapes are linked, never rewritten.
Train on the new folder, or warm-start a model of the original set on it (``train.init_from``: each copy
starts at its source's code).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.commands.cli_types import positive_int
from core.utils.errors import ExplorerError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.data.augment import AugmentConfig
    from core.utils.config_io import arg_default

    parser.add_argument("--data", type=Path, required=True, help="preprocessed data set to augment (read only)")
    parser.add_argument(
        "--out", type=Path, required=True, help="new data set folder; a second run with the same settings resumes it"
    )
    parser.add_argument(
        "--copies", type=positive_int, **arg_default(AugmentConfig, "copies", "copies per training shape")
    )
    parser.add_argument(
        "--max-scale",
        type=float,
        **arg_default(AugmentConfig, "max_scale", "per-axis scales drawn log-uniformly in [1/MAX, MAX]"),
    )
    parser.add_argument("--no-mirror", action="store_true", help="never mirror a copy left to right")
    parser.add_argument("--seed", type=int, **arg_default(AugmentConfig, "seed", "seed of the copies' transforms"))
    parser.add_argument("--workers", type=positive_int, default=1, help="parallel worker processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from core.data.augment import AugmentConfig, augment_dataset

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("trimesh").setLevel(logging.ERROR)
    try:
        config = AugmentConfig(copies=args.copies, max_scale=args.max_scale, mirror=not args.no_mirror, seed=args.seed)
        report = augment_dataset(args.data, args.out, config, workers=args.workers, progress=not args.no_progress)
    except (ExplorerError, OSError) as exc:  # OSError: an unwritable --out, a full disk
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cancelled; the finished copies are kept: run the same command to resume → {args.out}", file=sys.stderr)
        return 130
    print(
        f"{report.linked} shapes linked, {report.made} copies made, {report.reused} kept from an earlier run, "
        f"{len(report.failures)} failed → {args.out}"
    )
    for copy_id, reason in report.failures[:10]:
        print(f"  failed: {copy_id}: {reason}", file=sys.stderr)
    return 1 if report.failures and not (report.made or report.reused) else 0  # as preprocess: nothing made
