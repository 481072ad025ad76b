"""The checkpoint file: one ``torch.save`` dict of plain types and tensors (``weights_only=True``-safe).

Keys (format version 1)::

    format "deepsdf-explorer-checkpoint", version 1
    config        {"model": ModelConfig dict, "train": TrainConfig dict, ...}
    model_state   AutoDecoder state dict: decoder, conditioner (class / text embeddings), codes
    shape_ids, shape_classes, shape_texts   per code, len K
    class_names   len C
    normalization {shape_id: {"offset": [3], "scale": float}}  (the data set's unit-sphere frames)
    stats         training statistics (epochs, losses, time, samples)
    epoch         epochs completed
    optimizer, scheduler_epoch, rng   only in training checkpoints; needed for exact resume

Writes are atomic (temp file in the same folder, fsync, rename), so a killed process never
leaves a broken file under the final name.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from core.utils.errors import CheckpointError
from core.utils.io_utils import atomic_torch_save

__all__ = ["FORMAT", "VERSION", "save_checkpoint", "read_checkpoint"]

FORMAT = "deepsdf-explorer-checkpoint"
VERSION = 1
_REQUIRED = ("config", "model_state", "shape_ids", "shape_classes", "class_names")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format and version) atomically."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    return atomic_torch_save(path, data)


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; raise :class:`CheckpointError` saying what is wrong and what to do."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"{path}: no such file. Pass the .pt file a `train` run wrote (RUN/checkpoints/latest.pt)."
        )
    if path.is_dir():
        latest = path / "checkpoints" / "latest.pt"
        if latest.exists():
            path = latest
        else:
            raise CheckpointError(f"{path}: is a folder without checkpoints/latest.pt; pass a checkpoint file.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (an interrupted copy?). Use another checkpoint.")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    # torch's legacy unpickler fails on random bytes with IndexError / KeyError / TypeError too,
    # not only UnpicklingError: whatever it raises, the file is not a readable checkpoint.
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        io.UnsupportedOperation,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
        MemoryError,
        OverflowError,
    ) as exc:
        text = str(exc).strip()
        if "Weights only load failed" in text:
            # torch's first line invites a reload with weights_only=False; never pass that on.
            detail = weights_only_detail(text)
            if "GLOBAL" in detail:
                raise CheckpointError(
                    f"{path}: refused: the file holds pickled Python objects, not only tensors and plain values "
                    f"({detail[:200]}). Checkpoints are read with weights_only=True so that a file cannot run code; "
                    "this one was not written by DeepSDF Explorer or was altered. Use a checkpoint written by "
                    "`main.py train`."
                ) from exc
            reason = detail or "not a weights-only PyTorch file"
        else:
            reason = text.splitlines()[0] if text else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({reason[:200]}). The file is damaged or truncated, or not a "
            f"PyTorch file at all; {other_checkpoints(path)}."
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: holds a {type(data).__name__}, not a DeepSDF Explorer checkpoint.")
    if data.get("format") != FORMAT:
        if all(isinstance(v, torch.Tensor) for v in data.values()):
            raise CheckpointError(
                f"{path}: a plain state dict (only weights, {len(data)} tensors), not a DeepSDF Explorer checkpoint; "
                "it lacks the config, codes and class names. Use a checkpoint written by `main.py train`."
            )
        raise CheckpointError(
            f"{path}: not a DeepSDF Explorer checkpoint (no format tag). Use one written by `main.py train`."
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} does not exist (versions start at 1); "
            f"the file is damaged or was altered; {other_checkpoints(path)}."
        )
    if version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}; this program reads up to {VERSION}. "
            "Update DeepSDF Explorer."
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint is missing {missing}; it is damaged. Use another checkpoint.")
    _check_finite(path, data)
    return data


def _check_finite(path: Path, data: dict[str, Any]) -> None:
    """Refuse weights or codes holding NaN or infinity.

    Such a file loads and decodes, but every SDF value and code derived from it is NaN: meshes
    come out empty, codes.json gets NaN (invalid JSON) and the latent map's SVD fails. Checking
    here gives every reader (viewer, reconstruct, evaluate, resume) one clear message instead.
    """
    state = data["model_state"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: model_state holds a {type(state).__name__}, not weights; the file is damaged.")
    bad = [
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(
            f"{path}: the weights or codes hold NaN or infinite values ({shown}), so every shape it decodes would "
            f"be NaN; the training that wrote it diverged or the file was altered. {_earlier(path)}."
        )


def _beside(path: Path) -> str:
    """The checkpoints really beside ``path`` (a run keeps ``epoch_NNNN.pt`` only every ``checkpoint_every``
    epochs, an exported model has none), newest epochs first; "" when there are none."""
    others = sorted(
        (p.name for p in Path(path).parent.glob("*.pt") if p.name != Path(path).name and p.is_file()), reverse=True
    )
    return ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")


def other_checkpoints(path: Path) -> str:
    """What to use instead of a damaged checkpoint: only files that exist are suggested."""
    others = _beside(path)
    if not others:
        return "no other checkpoint is beside it: restore the file from a copy, or train again"
    return f"use another checkpoint beside it ({others})"


def _earlier(path: Path) -> str:
    """What to use instead of a checkpoint whose training diverged."""
    others = _beside(path)
    if not others:
        return "No other checkpoint is beside it: train again with lower learning rates"
    return f"Use an earlier checkpoint beside it ({others}) or train again with lower learning rates"


def weights_only_detail(text: str) -> str:
    """The informative line of torch's weights-only error (what it refused), without its advice."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line:
            return line
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            rest = line.split("WeightsUnpickler error:", 1)[-1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else "")
    return ""
