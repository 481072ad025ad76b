"""``python main.py train``: a preprocessed data set folder → a run folder with checkpoints.

``--resume`` continues the run from its stored ``RUN/config.json`` (model and training settings,
data folder): ``main.py train --out RUN --resume`` is enough. Flags given again must agree with
the stored settings, except ``--epochs`` (to extend a run), ``--device`` and ``train.threads``;
any other difference is refused with the differences listed. A folder that already holds a run
is never overwritten without ``--overwrite``.

Multi-GPU / multi-node: ``torchrun --nproc_per_node N main.py train ...`` (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from core.commands.cli_types import non_negative_int
from core.utils.errors import ConfigError, ExplorerError

__all__ = ["add_arguments", "run", "resume_command"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.model.config import CONDITIONING_MODES, PRESETS, ModelConfig
    from core.training.config import TrainConfig
    from core.utils.config_io import arg_default

    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="preprocessed data set folder (has manifest.json); required, except that --resume "
        "reads it from RUN/config.json",
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder to write (checkpoints, logs, config)")
    parser.add_argument("--config", type=Path, default=None, help="TOML/JSON/YAML with [model] and [train] tables")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), **arg_default(ModelConfig, "preset", "decoder size preset", unset=True)
    )
    parser.add_argument(
        "--conditioning",
        choices=CONDITIONING_MODES,
        **arg_default(ModelConfig, "conditioning", "how the class enters the decoder", unset=True),
    )
    parser.add_argument("--no-colour", action="store_true", help="train geometry only (no colour head or codes)")
    parser.add_argument("--view-dependent", action="store_true", help="the seed's view-dependent colour head")
    parser.add_argument(
        "--epochs", type=int, **arg_default(TrainConfig, "epochs", "shortcut for --set train.epochs=N", unset=True)
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        **arg_default(TrainConfig, "seed", "shortcut for --set train.seed=N", unset=True),
    )
    parser.add_argument("--device", **arg_default(TrainConfig, "device", "auto | cpu | cuda[:N]", unset=True))
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting, e.g. --set train.samples_per_shape=8192 --set model.dropout=0.2",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue RUN/checkpoints/latest.pt exactly, with the settings stored in RUN/config.json",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _stored_config(run_dir: Path) -> dict[str, Any]:
    """The run config a resume continues: RUN/config.json, else the config inside latest.pt."""
    path = run_dir / "config.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"{path}: cannot read the run's stored config ({exc}); the run cannot be resumed "
                "from it. Restore the file or train into a new --out folder."
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: holds a {type(data).__name__}, not a run config.")
        return data
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.is_file():
        from core.model.checkpoint import read_checkpoint

        return dict(read_checkpoint(latest)["config"])
    from core.utils.errors import CheckpointError

    raise CheckpointError(
        f"{run_dir}: nothing to resume (no config.json, no checkpoints/latest.pt). "
        "Start without --resume, or pass the run folder of an earlier run as --out."
    )


def resume_command(data: Path, out: Path) -> str:
    """The command that continues a run (everything else is read from RUN/config.json)."""
    return f"python main.py train --data {shlex.quote(str(data))} --out {shlex.quote(str(out))} --resume"


def run(args: argparse.Namespace, cancel=None) -> int:
    """Run the command; ``cancel`` (an Event or callable) stops it as Ctrl-C does (for callers and tests)."""
    from core.training import build_run_config, train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    overrides = list(args.overrides)
    for key, value in (("train.epochs", args.epochs), ("train.seed", args.seed), ("train.device", args.device)):
        if value is not None:
            overrides.append(f"{key}={value}")
    switches = dict(
        conditioning=args.conditioning,
        colour=False if args.no_colour else None,
        view_dependent=True if args.view_dependent else None,
    )
    data = args.data
    try:
        if args.resume and args.overwrite:
            raise ConfigError("--resume continues the run in --out and --overwrite replaces it; choose one.")
        if args.resume:
            stored = _stored_config(args.out)
            if data is None:
                if not isinstance(stored.get("data"), str):
                    raise ConfigError(
                        f"{args.out}: the run's stored config names no data set folder "
                        "(config.json is missing or has no 'data'); pass --data DIR."
                    )
                data = Path(stored["data"])
            config = build_run_config(args.preset, args.config, overrides, base=stored, **switches)
        else:
            if data is None:
                raise ConfigError(
                    "--data is required: the preprocessed data set folder (it holds manifest.json). "
                    "Only --resume reads it from the run's config.json."
                )
            config = build_run_config(args.preset, args.config, overrides, **switches)
        result = train(
            config,
            data,
            args.out,
            resume=args.resume,
            progress=not args.no_progress,
            cancel=cancel,
            overwrite=args.overwrite,
        )
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the data loads (inside the epochs the trainer handles it)
        print("cancelled before training started; no checkpoint was written.", file=sys.stderr)
        return 130
    if result.cancelled:
        if result.checkpoint is None:
            print("cancelled before the first epoch finished; nothing was saved.", file=sys.stderr)
        else:
            print(
                f"cancelled after epoch {result.epochs_done}; continue with: {resume_command(data, args.out)}",
                file=sys.stderr,
            )
        return 130
    print(f"trained {result.epochs_done} epochs → {result.checkpoint}")
    return 0
