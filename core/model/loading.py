"""One loader for every model format the project reads: its own checkpoints and the original DeepSDF code's
experiment folders. The formats are siblings (``checkpoint`` / ``trained_model`` and ``deepsdf_format``); only this
module knows both, so neither imports the other."""

from __future__ import annotations

from pathlib import Path

import torch

from core.model.deepsdf_format import is_deepsdf_experiment, load_deepsdf_experiment
from core.model.trained_model import TrainedModel, load_checkpoint_model

__all__ = ["load_trained_model"]


def load_trained_model(path: str | Path, device: str | torch.device | None = None) -> TrainedModel:
    """Load a checkpoint or a DeepSDF experiment directory (``specs.json`` + ``ModelParameters/`` +
    ``LatentCodes/``) for inference; raise :class:`~core.utils.errors.CheckpointError` on anything wrong
    with it. ``device`` None / "auto": CUDA when present."""
    if is_deepsdf_experiment(path):
        return load_deepsdf_experiment(path, device=device)
    return load_checkpoint_model(path, device=device)
