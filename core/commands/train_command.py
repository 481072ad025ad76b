"""``python main.py train``: a preprocessed data set folder → a run folder with checkpoints.

Multi-GPU / multi-node: ``torchrun --nproc_per_node N main.py train ...`` (gloo on CPU, NCCL on GPUs).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.errors import ExplorerError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.model.config import CONDITIONING_MODES, PRESETS

    parser.add_argument("--data", type=Path, required=True, help="preprocessed data set folder (has manifest.json)")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write (checkpoints, logs, config)")
    parser.add_argument("--config", type=Path, default=None, help="TOML/JSON/YAML with [model] and [train] tables")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="decoder size preset")
    parser.add_argument("--conditioning", choices=CONDITIONING_MODES, default=None, help="how the class enters the decoder")
    parser.add_argument("--no-colour", action="store_true", help="train geometry only (no colour head or codes)")
    parser.add_argument("--view-dependent", action="store_true", help="the seed's view-dependent colour head")
    parser.add_argument("--epochs", type=int, default=None, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seed", type=int, default=None, help="shortcut for --set train.seed=N")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda[:N]")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any setting, e.g. --set train.samples_per_shape=8192 --set model.dropout=0.2")
    parser.add_argument("--resume", action="store_true", help="continue RUN/checkpoints/latest.pt exactly")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from core.training import build_run_config, train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    overrides = list(args.overrides)
    for key, value in (("train.epochs", args.epochs), ("train.seed", args.seed), ("train.device", args.device)):
        if value is not None:
            overrides.append(f"{key}={value}")
    try:
        config = build_run_config(
            args.preset, args.config, overrides, conditioning=args.conditioning,
            colour=False if args.no_colour else None, view_dependent=True if args.view_dependent else None,
        )
        result = train(config, args.data, args.out, resume=args.resume, progress=not args.no_progress)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.cancelled:
        print(f"cancelled after epoch {result.epochs_done}; continue with: main.py train --data {args.data} "
              f"--out {args.out} --resume", file=sys.stderr)
        return 130
    print(f"trained {result.epochs_done} epochs → {result.checkpoint}")
    return 0
