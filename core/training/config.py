"""The run config: model + training settings, as one typed object stored with every run."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config_io import apply_overrides, from_dict, load_config_file, to_dict
from core.errors import ConfigError
from core.model.config import PRESETS, ModelConfig, preset_config

__all__ = ["TrainConfig", "RunConfig", "build_run_config"]


@dataclass
class TrainConfig:
    """Auto-decoder training (DeepSDF's specs.json where a value is given in brackets)."""

    epochs: int = 500
    """Passes over the training shapes."""
    shapes_per_batch: int = 16
    """Shapes per optimisation step (DeepSDF: ScenesPerBatch 64)."""
    samples_per_shape: int = 4096
    """SDF samples drawn per shape per step, half positive, half negative (DeepSDF: 16384)."""
    lr_decoder: float = 1e-3
    """Initial learning rate of the network (DeepSDF: 5e-4 at batch 64 x 16384)."""
    lr_codes: float = 2e-3
    """Initial learning rate of the codes (DeepSDF: 1e-3)."""
    lr_interval: int = 200
    """Epochs between learning-rate steps (DeepSDF: 500)."""
    lr_factor: float = 0.5
    """Factor of each learning-rate step (DeepSDF: 0.5)."""
    clamp: float = 0.1
    """Clamp distance of the L1 SDF loss (DeepSDF: 0.1)."""
    code_reg: float = 1e-4
    """Weight of the code-norm regulariser (DeepSDF: CodeRegularizationLambda 1e-4)."""
    code_reg_warmup: int = 100
    """Epochs over which the regulariser ramps up linearly (DeepSDF: 100)."""
    colour_weight: float = 0.5
    """Weight of the colour L1 loss."""
    colour_band: float = 0.03
    """Colour loss only on samples with |sdf| below this (near the surface, where colour is defined)."""
    checkpoint_every: int = 50
    """Write checkpoints/epoch_NNNN.pt every this many epochs (latest.pt is rewritten each time too)."""
    log_every: int = 1
    """Epochs between CSV / TensorBoard log rows."""
    max_samples_per_shape: int | None = None
    """Keep at most this many samples of each shape in memory (None: all)."""
    seed: int = 0
    """Seeds code init, sample draws, shuffling and dropout: a run is a function of its seed."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda[:N]."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    classes: list[str] | None = None
    """Train on these classes only (None: all)."""

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(f"train.{what}")

        need(self.epochs >= 1, f"epochs: {self.epochs} is not a positive number of epochs")
        need(self.shapes_per_batch >= 1, f"shapes_per_batch: {self.shapes_per_batch} must be at least 1")
        need(self.samples_per_shape >= 1, f"samples_per_shape: {self.samples_per_shape} must be at least 1")
        for name in ("lr_decoder", "lr_codes", "code_reg", "colour_weight", "colour_band"):
            value = getattr(self, name)
            need(math.isfinite(value) and value >= 0, f"{name}: {value} must be a finite number >= 0")
        need(math.isfinite(self.clamp) and self.clamp > 0, f"clamp: {self.clamp} must be a positive number")
        need(math.isfinite(self.lr_factor) and self.lr_factor > 0, f"lr_factor: {self.lr_factor} must be positive")
        for name in ("lr_interval", "checkpoint_every", "log_every"):
            need(getattr(self, name) >= 1, f"{name}: {getattr(self, name)} must be at least 1")
        need(self.code_reg_warmup >= 0 and self.threads >= 0, "code_reg_warmup and threads must be >= 0")
        need(self.max_samples_per_shape is None or self.max_samples_per_shape >= 2,
             f"max_samples_per_shape: {self.max_samples_per_shape} must be at least 2 (half inside, half outside)")


@dataclass
class RunConfig:
    """Everything a training run needs besides the data and output folders."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def build_run_config(preset: str = "default", file: Path | None = None, overrides: list[str] | None = None,
                     **model_overrides: Any) -> RunConfig:
    """Preset, then the config file, then ``--set`` overrides, then explicit model switches."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    base = to_dict(RunConfig(model=preset_config(preset), train=TrainConfig()))
    if file is not None:
        loaded = load_config_file(file)
        unknown = sorted(set(loaded) - {"model", "train"})
        if unknown:
            raise ConfigError(f"{file}: unknown section(s) {unknown}; a run config has [model] and [train]")
        for section in ("model", "train"):
            if not isinstance(loaded.get(section, {}), dict):
                raise ConfigError(f"{file}: [{section}] must be a table of settings, got {loaded[section]!r}")
        if "preset" in loaded.get("model", {}) and loaded["model"]["preset"] != preset:
            base["model"] = to_dict(preset_config(loaded["model"]["preset"]))
        for section in ("model", "train"):
            base[section].update(loaded.get(section, {}))
    if overrides:
        base = apply_overrides(base, overrides)
    for key, value in model_overrides.items():
        if value is not None:
            base["model"][key] = value
    return from_dict(RunConfig, base, "run config")
