"""The run config: model + training settings, as one typed object stored with every run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.model.config import PRESETS, ModelConfig, preset_config
from core.utils.config_io import apply_overrides, from_dict, load_config_file, to_dict
from core.utils.errors import ConfigError

__all__ = [
    "TrainConfig",
    "RunConfig",
    "TRAIN_PRESETS",
    "preset_train_config",
    "build_run_config",
    "resume_changes",
    "RESUME_MAY_CHANGE",
    "LR_SCHEDULES",
    "CURRICULUM_EPS",
    "CURRICULUM_LAMBDA",
]


LR_SCHEDULES: tuple[str, ...] = ("step", "cosine", "onecycle")
"""The values of ``train.lr_schedule`` (see :func:`core.training.trainer.learning_rates`)."""
CURRICULUM_EPS: tuple[float, ...] = (0.025, 0.01, 0.0025, 0.0)
"""Curriculum DeepSDF's tolerance per stage (Duan et al. 2020, Sec. 3.2)."""
CURRICULUM_LAMBDA: tuple[float, ...] = (0.0, 0.1, 0.2, 0.5)
"""Curriculum DeepSDF's hard-sample weight per stage."""


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
    code_noise: float = 0.0
    """Standard deviation of Gaussian noise added to each batch shape's code in every step (0: off).
    Why: an auto-decoder only learns the decoder at its training codes; a held-out fit with the
    decoder frozen searches the space *between* them. Noise makes every code's neighbourhood decode
    to its shape, so that space is smoother (the generalisation study, docs/results.md)."""
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
    curriculum: bool = False
    """Curriculum DeepSDF (Duan et al., ECCV 2020) instead of the clamped L1: the run's epochs fall into
    four equal stages with tolerance eps 0.025, 0.01, 0.0025, 0 and hard-sample weight lambda 0, 0.1,
    0.2, 0.5; per sample ``max(|clamp(f) - clamp(s)| - eps, 0) * (1 + lambda sgn(s) sgn(s - f))``."""
    curriculum_first_stage: int = 0
    """The curriculum's first stage (0-3): its stages from this one to the last share the run's epochs
    equally. 3 spends the whole run at eps 0, lambda 0.5: a fine-tuning stage after ``init_from``."""
    init_from: str | None = None
    """Warm start: the weights and codes of this checkpoint (a run's ``checkpoints/latest.pt`` or an
    exported model), which must have been trained on the same shapes with the same model settings
    (dropout aside: it holds no weights, so a second stage may add it).
    The optimiser, learning-rate schedule and curriculum start afresh, so a second stage (e.g. a
    low-rate fine-tune at the curriculum's last stage) continues a finished run without retraining it."""
    init_extends: bool = False
    """With ``init_from``: this data set *extends* the checkpoint's — every shape the checkpoint was trained
    on is here and keeps its codes, shapes and classes it never saw start where a fresh run starts them
    (codes drawn as at initialisation; a new class's embedding likewise; known classes keep theirs, matched
    by name). Why: a prior grows by its data without retraining it from scratch. Off, a warm start on
    other shapes is refused (a code belongs to one shape). ``onehot`` conditioning cannot extend (the
    decoder's input size is the number of classes)."""
    surface_weight: float = 0.0
    """Weight of ``mean |f(x_s)|`` on surface points of each batch shape (0: off, no surface points drawn).
    Each step draws samples_per_shape // 4 surface points per shape from the sample file's surface_points."""
    normal_weight: float = 0.0
    """Weight of ``mean(1 - cos(grad_x f(x_s), n_s))`` against the sample file's surface_normals (0: off)."""
    lr_schedule: str = "step"
    """step (lr_factor every lr_interval epochs, DeepSDF's), cosine (from the start rates down to
    lr_min_factor x start over the epochs) or onecycle (linear warm-up over the first 5 % of the epochs,
    then that cosine)."""
    lr_min_factor: float = 0.01
    """Final rate of the cosine / onecycle schedules as a fraction of the start rate (not used by step)."""
    max_minutes: float = 0.0
    """Training time budget in minutes (0: none). Checked after each finished epoch against the run's
    training seconds (log.csv's seconds, resumes included): once spent, the run ends there as a normal
    end (checkpoint, log, stats.json's time_budget) and --resume continues it."""

    max_cpu_minutes: float = 0.0
    """Training budget in CPU-minutes of the training process (0: none): the process's CPU time (user +
    system, all its threads), counted over the whole run like ``max_minutes``. Unlike wall-clock time
    it does not grow when other jobs share the machine, so runs compared at "the same budget" (the
    recipe study) get the same compute however busy the machine is. Stops as ``max_minutes`` does."""
    tf32: bool = True
    """On CUDA, float32 matrix products in TF32 (10-bit mantissa, about 7x the plain float32 rate on an
    H100/H200; the SDF loss is clamped at 0.1, far above its rounding). No effect on the CPU."""

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(f"train.{what}")

        need(self.epochs >= 1, f"epochs: {self.epochs} is not a positive number of epochs")
        need(self.shapes_per_batch >= 1, f"shapes_per_batch: {self.shapes_per_batch} must be at least 1")
        need(self.samples_per_shape >= 1, f"samples_per_shape: {self.samples_per_shape} must be at least 1")
        for name in (
            "lr_decoder",
            "lr_codes",
            "code_reg",
            "code_noise",
            "colour_weight",
            "colour_band",
            "surface_weight",
            "normal_weight",
            "max_minutes",
            "max_cpu_minutes",
        ):
            value = getattr(self, name)
            need(math.isfinite(value) and value >= 0, f"{name}: {value} must be a finite number >= 0")
        need(math.isfinite(self.clamp) and self.clamp > 0, f"clamp: {self.clamp} must be a positive number")
        need(math.isfinite(self.lr_factor) and self.lr_factor > 0, f"lr_factor: {self.lr_factor} must be positive")
        for name in ("lr_interval", "checkpoint_every", "log_every"):
            need(getattr(self, name) >= 1, f"{name}: {getattr(self, name)} must be at least 1")
        need(self.code_reg_warmup >= 0 and self.threads >= 0, "code_reg_warmup and threads must be >= 0")
        need(self.seed >= 0, f"seed: {self.seed} must be 0 or more (numpy's generators take no negative seed)")
        need(
            self.max_samples_per_shape is None or self.max_samples_per_shape >= 2,
            f"max_samples_per_shape: {self.max_samples_per_shape} must be at least 2 (half inside, half outside)",
        )
        need(
            self.lr_schedule in LR_SCHEDULES,
            f"lr_schedule: {self.lr_schedule!r} is not a schedule; choose one of {', '.join(LR_SCHEDULES)}",
        )
        need(
            math.isfinite(self.lr_min_factor) and 0 <= self.lr_min_factor <= 1,
            f"lr_min_factor: {self.lr_min_factor} must be a fraction of the start rate, between 0 and 1",
        )
        need(isinstance(self.curriculum, bool), f"curriculum: {self.curriculum!r} must be true or false")
        need(isinstance(self.tf32, bool), f"tf32: {self.tf32!r} must be true or false")
        need(
            isinstance(self.curriculum_first_stage, int) and 0 <= self.curriculum_first_stage < len(CURRICULUM_EPS),
            f"curriculum_first_stage: {self.curriculum_first_stage!r} must be a stage from 0 to "
            f"{len(CURRICULUM_EPS) - 1}",
        )
        need(
            self.init_from is None or (isinstance(self.init_from, str) and self.init_from.strip() != ""),
            f"init_from: {self.init_from!r} must be the path of a checkpoint",
        )
        need(isinstance(self.init_extends, bool), f"init_extends: {self.init_extends!r} must be true or false")
        need(
            not self.init_extends or self.init_from is not None,
            "init_extends: true needs init_from (the checkpoint whose data set this one extends)",
        )


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # DeepSDF's specs.json (examples/chairs): 2,001 epochs of 64 shapes x 16,384 samples, network rate
    # 5e-4 and code rate 1e-3 halved every 500 epochs, clamp 0.1, code regulariser 1e-4.
    "paper": dict(
        epochs=2001,
        shapes_per_batch=64,
        samples_per_shape=16384,
        lr_decoder=5e-4,
        lr_codes=1e-3,
        lr_interval=500,
        lr_factor=0.5,
        lr_schedule="step",
        clamp=0.1,
        code_reg=1e-4,
    ),
    # The recipe study's winner (docs/results.md "Training recipe"): small batches of 8 shapes x 2,048
    # samples (many steps on a CPU), a cosine schedule instead of step halvings, Curriculum DeepSDF.
    "default": dict(shapes_per_batch=8, samples_per_shape=2048, lr_schedule="cosine", curriculum=True),
    "tiny": dict(),
}
"""Training settings of each model preset, on top of :class:`TrainConfig`'s defaults (a preset is a
whole recipe: ``train --preset paper`` trains as DeepSDF did, ``default`` as this project's study found
best, see docs/results.md "Training recipe")."""


def preset_train_config(name: str) -> TrainConfig:
    """The training settings of preset ``name`` (:data:`TRAIN_PRESETS` over the dataclass defaults)."""
    if name not in TRAIN_PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(TRAIN_PRESETS)}")
    return TrainConfig(**TRAIN_PRESETS[name])


@dataclass
class RunConfig:
    """Everything a training run needs besides the data and output folders."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def build_run_config(
    preset: str | None = "default",
    file: Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
    **model_overrides: Any,
) -> RunConfig:
    """Preset (or ``base``), then the config file, then ``--set`` overrides, then explicit model switches.

    ``base`` is a stored run config (``RUN/config.json``): ``train --resume`` starts from it, so
    only what the user gives again on the command line can differ. A ``preset`` given together
    with ``base`` replaces the stored model settings by the preset's; ``preset=None`` without a
    base means the default preset.
    """
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if base is not None:
        stored = {k: v for k, v in base.items() if k in ("model", "train")}
        data = to_dict(from_dict(RunConfig, stored, "stored run config"))
        if preset is not None:
            data["model"] = to_dict(preset_config(preset))
    else:
        preset = preset or "default"
        data = to_dict(RunConfig(model=preset_config(preset), train=preset_train_config(preset)))
    if file is not None:
        loaded = load_config_file(file)
        # a run's own RUN/config.json names its data folder too: that entry is the run's record, not a setting
        run_record = isinstance(loaded.get("data"), str)
        unknown = sorted(set(loaded) - {"model", "train"} - ({"data"} if run_record else set()))
        if unknown:
            raise ConfigError(
                f"{file}: unknown section(s) {unknown}; a run config has [model] and [train] "
                "(a run's config.json also its data folder)"
            )
        for section in ("model", "train"):
            if not isinstance(loaded.get(section, {}), dict):
                raise ConfigError(f"{file}: [{section}] must be a table of settings, got {loaded[section]!r}")
        file_preset = loaded.get("model", {}).get("preset")
        if file_preset is not None and file_preset != data["model"].get("preset"):
            data["model"] = to_dict(preset_config(file_preset))
            if base is None:  # a new run takes the file's preset whole, its training recipe too
                data["train"] = to_dict(preset_train_config(file_preset))
        for section in ("model", "train"):
            data[section].update(loaded.get(section, {}))
    if overrides:
        data = apply_overrides(data, overrides)
    for key, value in model_overrides.items():
        if value is not None:
            data["model"][key] = value
    return from_dict(RunConfig, data, "run config")


RESUME_MAY_CHANGE: tuple[str, ...] = (
    "train.epochs",
    "train.device",
    "train.threads",
    "train.max_minutes",
    "train.max_cpu_minutes",
    "train.tf32",
)
"""Settings a resumed run may change: how long it runs and where, not what one step computes.

``train.epochs`` also sets the length of the cosine / onecycle schedules and of the curriculum's
stages, so extending such a run changes the rates and stages of the epochs still to come.

``train.threads`` changes the order of float sums (see README "Pipeline"): a resumed run is then
equal to the straight one to float rounding, not bit for bit.
"""


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(
    saved: dict[str, Any], config: RunConfig, where: str, sections: tuple[str, ...] = ("model", "train")
) -> list[tuple[str, Any, Any]]:
    """``(dotted key, stored value, value in config)`` for every setting of ``sections`` that differs
    between a stored run config (missing keys of an older program take their defaults) and ``config``."""
    stored = {k: v for k, v in saved.items() if k in ("model", "train")}
    before = _flat({k: v for k, v in to_dict(from_dict(RunConfig, stored, where)).items() if k in sections})
    after = _flat({k: v for k, v in to_dict(config).items() if k in sections})
    return [(k, before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def resume_changes(saved: dict[str, Any], config: RunConfig, where: str) -> list[str]:
    """Compare a resumed run's config with the saved one; return the allowed changes as text.

    ``saved`` is the run config stored in the checkpoint (missing keys of an older program take
    their defaults). Raises :class:`ConfigError` listing every other difference, saved value
    against the new one, so the user sees exactly which flag to drop.
    """
    changed = config_differences(saved, config, f"{where}: saved run config")
    refused = [(k, a, b) for k, a, b in changed if k not in RESUME_MAY_CHANGE]
    if refused:
        shown = "; ".join(f"{k}: {a!r} in the run, {b!r} now" for k, a, b in refused)
        raise ConfigError(
            f"{where}: cannot resume with other settings ({shown}). A resumed run continues the stored config "
            f"(RUN/config.json); only {', '.join(RESUME_MAY_CHANGE)} may change (e.g. --epochs to extend it). "
            "Drop the differing flags, or train into a new --out folder (or --overwrite this one)."
        )
    return [f"{k}: {a!r} -> {b!r}" for k, a, b in changed]
