"""Inference-only copies of checkpoints (what ships in resources/): no optimiser or RNG state."""

from __future__ import annotations

from pathlib import Path

from core.model.checkpoint import read_checkpoint, save_checkpoint

__all__ = ["export_inference_checkpoint"]

_TRAINING_ONLY = ("optimizer", "rng", "format", "version")


def export_inference_checkpoint(source: Path, target: Path) -> Path:
    """Write ``source`` without its training-only state (about a third of the size) to ``target``."""
    data = read_checkpoint(Path(source))
    payload = {k: v for k, v in data.items() if k not in _TRAINING_ONLY}
    payload["stats"] = {**dict(payload.get("stats") or {}), "exported_from": str(source)}
    return save_checkpoint(Path(target), payload)
