"""Checks of command-line values shared by the commands: a bad value is refused before any work.

The argparse types raise ``argparse.ArgumentTypeError`` naming the value, the allowed range and why, so
argparse prints ``error: argument --resolution: ...`` and exits 2 before a model is loaded or a
fit starts (``reconstruct --resolution 0`` used to fail only after the whole fit).
:func:`check_out_dir` does the same for an output folder.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from core.utils.errors import ExplorerError

__all__ = [
    "resolution",
    "positive_int",
    "positive_float",
    "finite_float",
    "check_out_dir",
    "remove_if_empty",
    "MIN_RESOLUTION",
    "MAX_RESOLUTION",
]

MIN_RESOLUTION = 16
"""Smaller grids cannot hold the coarse-to-fine pass's 17³ first level and show only blobs."""
MAX_RESOLUTION = 2048
"""2048³ is 8.6 billion grid points: days on a CPU, beyond any GPU's memory in one piece."""


def resolution(text: str) -> int:
    """Marching-cubes grid samples per side, ``MIN_RESOLUTION`` … ``MAX_RESOLUTION``: the one limit of
    every command that meshes (reconstruct, evaluate, edit, view)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; use e.g. 128 (DeepSDF meshes at 256)") from None
    if not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
        raise argparse.ArgumentTypeError(
            f"{value} is outside {MIN_RESOLUTION} … {MAX_RESOLUTION} samples per side; 128 is the usual choice"
        )
    return value


def _integer(text: str) -> int:
    """``text`` as an int, or the argparse error that says it is not an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (seeds: numpy's generators refuse a negative one deep inside a run, where the
    error reads as a fault of the input file)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def _number(text: str) -> float:
    """``text`` as a float, or the argparse error that says it is not a number."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    """A finite number above 0 (``nan``, ``inf``, 0 and negatives are refused)."""
    value = _number(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number above 0, e.g. 5e-3")
    return value


def finite_float(text: str) -> float:
    """Any finite number (``nan`` and ``inf`` are refused)."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number, e.g. 0.005")
    return value


def add_tto_set_argument(parser: argparse.ArgumentParser, switches_from: str = "--losses") -> None:
    """``--tto-set KEY=VALUE`` (repeatable, into ``args.tto_overrides``): any field of ``TTOConfig`` by name, applied
    with :meth:`core.tto.config.TTOConfig.with_overrides`, which names an unknown setting or a wrong type."""
    parser.add_argument(
        "--tto-set",
        dest="tto_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any TTO setting of core/tto/config.py's TTOConfig, e.g. finetune_layers=3 or "
        f"finetune_anchor_weight=0 (repeatable; the switches themselves come from {switches_from})",
    )


def check_out_dir(out: Path, option: str = "--out", files: tuple[str, ...] = ()) -> bool:
    """Create ``out`` as a folder now, so a file in the way or a read-only place fails before any work.

    ``files``: the names the command will write into ``out``; one that is a folder there (``mesh.ply/``)
    would fail only after the whole optimisation, so it is refused now. Returns whether ``out`` was
    created by this call (a command that then fails may remove it again while it is empty).
    """
    if out.exists() and not out.is_dir():
        raise ExplorerError(f"{option} {out}: is a file, not a folder. Give a folder path (it is created).")
    for name in files:
        if (out / name).is_dir():
            raise ExplorerError(
                f"{option} {out}: {out / name} is a folder where this command writes a file; "
                "move it away or give another folder."
            )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplorerError(
            f"{option} {out}: cannot create the folder ({exc.strerror or exc}). Give a writable folder path."
        ) from None
    return created


def remove_if_empty(out: Path, created: bool) -> None:
    """Remove ``out`` again when this run created it (:func:`check_out_dir`) and wrote nothing into it."""
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()
