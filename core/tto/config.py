"""Test-time optimisation settings: DeepSDF's reconstruction baseline plus thin-structure switches.

The defaults reproduce the original DeepSDF ``reconstruct.py`` (``reconstruct(decoder, 800,
latent_size, data_sdf, 0.01, 0.1, num_samples=8000, lr=5e-3, l2reg=True)``): 800 Adam
iterations on the code at lr 5e-3, divided by 10 after half of them, 8,000 samples per
iteration (half positive, half negative), code initialised from N(0, 0.01^2), clamped L1
plus ``1e-4 * mean(z^2)``, decoder in eval mode — up to ``precision`` (bfloat16 matrix products where
the CPU has the units: the same fits in less time); ``precision="float32"`` is DeepSDF's arithmetic exactly.

Each thin-structure switch is independent and off by default; the ``losses`` preset string
(:func:`parse_losses`) turns them on from the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.utils import config_io
from core.utils.errors import ConfigError

__all__ = [
    "TTOConfig",
    "LOSS_PRESETS",
    "LOSS_SWITCHES",
    "parse_losses",
    "INTERACTIVE_ITERATIONS",
    "INTERACTIVE_SAMPLES",
    "INTERACTIVE_LR",
    "INTERACTIVE_LOSSES",
    "PARTIAL_SCAN_ANCHOR_WEIGHT",
    "for_observation",
]

INTERACTIVE_ITERATIONS = 300
"""The viewer's default TTO steps: a fit a person watches live (DeepSDF's 800 is :class:`TTOConfig`'s).
Scripts that report "what the viewer gives" (studies/compare_pictures.py) use the same number."""
INTERACTIVE_SAMPLES = 4000
"""The viewer's default SDF samples per TTO step (DeepSDF's 8,000 is :class:`TTOConfig`'s)."""
INTERACTIVE_LR = 1e-2
"""The viewer's default code learning rate for its :data:`INTERACTIVE_ITERATIONS` steps. DeepSDF's 5e-3
(:class:`TTOConfig`'s) is made for 800 steps; in 300 the code stops short of the shape: on the real model's
held-out shapes (11, decoder frozen, 128³) 1e-2 took F@1 69.0 → 72.2, thin F@1 26.0 → 28.1 and the median
Chamfer ×10³ 4.33 → 1.30, as far as 600 steps at 5e-3 go (F@1 72.9) in half the time; 2e-2 reached F@1 73.5
but lost thin parts (20.6) (docs/experiments/2026-12-05-class-inference-and-fit-cost.md)."""
INTERACTIVE_LOSSES = "hard_draws"
"""The switches the viewer's TTO panel starts with (a :func:`parse_losses` string): DeepSDF's loss with the hard
draws (half of each step's samples drawn where the fit is still wrong; the panel unticks them for a single-view
scan). Until 2026-12-05 the surface terms were on too; measured at the panel's settings (300 steps, 4,000 samples,
lr 1e-2, decoder frozen, 128³; F@1 / thin F@1 / CD×10³ mean):

- real-v5, 11 held-out shapes (one a class): ``surface,hard_draws`` 61.4 / 22.7 / 12.8, floaters on 55 % of the
  shapes; ``hard_draws`` 73.6 / 23.8 / 7.2, 27 %;
- demo-v5 on a fresh built-in set (7 held-out / 21 training shapes, codes fitted anew): ``surface,hard_draws``
  90.1 / 87.1 / 1.01 and 88.7 / 81.1 / 1.09; ``hard_draws`` 89.8 / 87.7 / 0.87 and 89.7 / 84.1 / 0.95.

With the decoder frozen the normal term cannot act (see :attr:`TTOConfig.normal_term`), and the surface term
``|f + offset| → 0`` over the surface points, on a prior that cannot hold the shape, is met by swelling it: on the
real stove the samples outside it decoded inside went from 4.7 % to 10.1 % of all (their clamped L1 0.0064 →
0.0094) while the surface points came closer; fine-tuned, the surface terms cost real-v5 too (91.7 / 85.7 →
85.4 / 75.8; docs/experiments/2026-12-05-surface-terms-on-real-meshes.md). The decoder fine-tuning (``finetune``)
keeps far more thin parts but gives each fitted shape its own decoder copy, so it stays a switch the user turns on."""
PARTIAL_SCAN_ANCHOR_WEIGHT = 0.1
"""The prior anchor's weight when a partial scan is fine-tuned (:func:`for_observation`). On single-view scans of
the real model's held-out shapes (11, 300 steps at 1e-2, 128³; whole F@1 / unseen F@1 / thin F@1), from the front:
frozen 44.3 / 32.4 / 28.8, fine-tuned without the anchor 44.5 / 24.3 / 60.7 (the hidden side given up on 8 of 11),
anchored at 1.0 47.6 / 33.8 / 40.7, 0.3 48.9 / 34.2 / 48.8, 0.1 50.7 / 35.1 / 54.8, 0.05 51.4 / 35.6 / 58.4; from an
oblique camera: frozen 48.5 / 30.5 / 21.5, unanchored 63.7 / 43.8 / 60.4, 1.0 53.4 / 31.0 / 36.6, 0.3 55.7 / 32.5 /
48.2, 0.1 58.3 / 34.7 / 54.5, 0.05 58.6 / 34.9 / 57.4. Every weight from 0.05 to 1 keeps the hidden side above the
frozen fit's on average from both views; a lighter one keeps more of the seen thin parts but gives up more of a
few shapes' hidden sides (worse than frozen on 5 of 22 (shape, view) pairs at 0.3, at most 6.8 points; 4 at 0.1,
at most 11.1, a desk from the front; 6 at 0.05, at most 15.0). 0.1 is better than 0.3 on every average of both
views with fewer shapes worse (docs/results.md "Partial scans")."""


LOSS_SWITCHES: dict[str, tuple[str, ...]] = {
    "surface": ("surface_term", "normal_term"),
    "surface_term": ("surface_term",),
    "normal_term": ("normal_term",),
    "curriculum": ("curriculum",),
    "coarse_to_fine": ("coarse_to_fine",),
    "finetune": ("finetune_last_layers",),
    "hard_draws": ("hard_draws",),
}
"""Preset name → config flags it turns on."""

LOSS_PRESETS: tuple[str, ...] = (
    "baseline",
    "surface",
    "curriculum",
    "coarse_to_fine",
    "finetune",
    "hard_draws",
    "all",
)
"""Names shown in the command-line help (``all`` = every switch; a comma list combines)."""

_ALL_FLAGS = ("surface_term", "normal_term", "curriculum", "coarse_to_fine", "finetune_last_layers", "hard_draws")


def parse_losses(spec: str | None) -> tuple[str, ...]:
    """Flags turned on by a ``losses`` string such as ``"all"`` or ``"surface,curriculum"``.

    Raises
    ------
    ConfigError
        An unknown name (the message lists the known ones).
    """
    flags: list[str] = []
    for name in (spec or "baseline").replace("+", ",").split(","):
        name = name.strip().lower().replace("-", "_")
        if not name or name == "baseline":
            continue
        if name == "all":
            flags.extend(_ALL_FLAGS)
        elif name in LOSS_SWITCHES:
            flags.extend(LOSS_SWITCHES[name])
        else:
            known = ", ".join(list(LOSS_PRESETS) + [k for k in LOSS_SWITCHES if k not in LOSS_PRESETS])
            raise ConfigError(f"unknown loss set {name!r} in --losses {spec!r}; use one of: {known}, or a comma list.")
    return tuple(dict.fromkeys(flags))


# The lower bounds of TTOConfig's counts, and the weights that may be 0 but not negative.
_AT_LEAST = {
    "colour_finetune_points": 1,
    "colour_finetune_pool": 0,
    "iterations": 1,
    "n_samples": 2,
    "n_surface_samples": 1,
    "finetune_layers": 1,
    "class_iterations": 1,
    "class_samples": 1,
    "finetune_anchor_points": 1,
    "finetune_anchor_pool": 1,
    "hard_refresh_every": 1,
}
_NON_NEGATIVE = (
    "code_std",
    "code_reg",
    "colour_weight",
    "surface_weight",
    "normal_weight",
    "finetune_iterations",
    "colour_finetune_iterations",
    "finetune_anchor_weight",  # may also be None (automatic)
)


@dataclass
class TTOConfig:
    """One test-time optimisation run (saved into ``codes.json`` with its result)."""

    # --- DeepSDF baseline -------------------------------------------------------------------
    iterations: int = 800
    """Optimisation steps (DeepSDF: 800)."""
    lr: float = 5e-3
    """Adam learning rate for the code(s) (DeepSDF: 5e-3)."""
    lr_decay: float = 10.0
    """The learning rate is divided by this every ``lr_decay_every`` steps (DeepSDF: 10)."""
    lr_decay_every: int | None = None
    """Steps between decays; None = ``iterations // 2`` (DeepSDF)."""
    n_samples: int = 8000
    """SDF samples per step, half positive and half negative (DeepSDF: 8,000)."""
    early_sample_share: float = 1.0
    """Share of ``n_samples`` each code-fit step draws before the first learning-rate decay (1: DeepSDF's fixed
    batch at every step). The early steps at the high rate carry the code across the space, where a smaller
    batch's gradient points nearly the same way; the steps after the decay refine it on all ``n_samples``
    (fine-tuning always draws those). A speed setting, not the default: at a quarter the code fit takes 0.6x the
    time and F@1 holds (real model, 11 held-out shapes, 300 + 300 steps, three seeds: 90.85 against 90.80), but
    thin F@1 fell on every seed (74.0 → 68.3 on average; the frozen fit 28.1 → 26.1)
    (docs/experiments/2026-12-05-fit-speed-early-samples.md). At least 2 samples a step."""
    code_std: float = 0.01
    """Standard deviation of the code's initial value (DeepSDF: 0.01)."""
    code_reg: float = 1e-4
    """Weight of the code prior ``mean(z^2)`` (DeepSDF: 1e-4)."""
    clamp: float = 0.1
    """Clamp distance of the L1 loss (DeepSDF: 0.1)."""

    # --- colour ------------------------------------------------------------------------------
    fit_colour: bool = True
    """Fit the colour code when the observation and the model both have colour."""
    colour_weight: float = 1.0
    """Weight of the colour L1 term."""
    colour_band: float = 0.05
    """Colour is compared on samples with |sdf| below this (their nearest surface colour is meaningful)."""

    # --- surface and normal terms ------------------------------------------------------------
    surface_term: bool = False
    """Pull f to 0 on the observed surface points: w_s * mean |f(x_s)|."""
    surface_weight: float = 1.0
    """w_s."""
    normal_term: bool = False
    """Align the SDF gradient with the observed normals: w_n * mean(1 - |cos(grad f, n)|) (unoriented: real
    meshes' face normals point either way; :func:`core.tto.losses.normal_loss`).

    It steers the fine-tuned layers only (``finetune_last_layers``): with a ReLU decoder grad_x f
    is piecewise constant in the latent code, so this loss has no gradient with respect to the
    code. Tried and rejected (docs/results.md): SDF values at x +- h n instead of the gradient move
    the code, but they act as a second surface term and made the fitted normals slightly worse."""
    normal_weight: float = 0.1
    """w_n."""
    n_surface_samples: int = 2000
    """Observed surface points per step for the surface / normal terms."""

    # --- Curriculum DeepSDF (Duan et al., ECCV 2020) ------------------------------------------
    curriculum: bool = False
    """Tolerance-shrinking L1 and hard-sample weighting, staged over the iterations."""
    curriculum_stages: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8)
    """Fractions of the run where each stage starts."""
    curriculum_eps: tuple[float, ...] = (0.025, 0.01, 0.0025, 0.0, 0.0)
    """Tolerance eps per stage: the loss is max(|clamp(f) - clamp(s)| - eps, 0)."""
    curriculum_lambda: tuple[float, ...] = (0.0, 0.0, 0.1, 0.2, 0.5)
    """Hard-sample weight lambda per stage: loss * (1 + lambda * sgn(s) * sgn(s - f))."""

    # --- coarse to fine ----------------------------------------------------------------------
    coarse_to_fine: bool = False
    """Shrink the clamp distance and move the samples towards the surface over the run."""
    clamp_start: float = 0.1
    """Clamp distance at the first step."""
    clamp_end: float = 0.02
    """Clamp distance from ``c2f_until`` of the run on."""
    near_band: float = 0.03
    """|sdf| below which a sample counts as near-surface."""
    near_fraction_end: float = 0.75
    """Share of each batch drawn from near-surface samples at the end (0 at the start)."""
    c2f_until: float = 0.75
    """Fraction of the run over which clamp and sample mix move linearly."""

    # --- hard draws ----------------------------------------------------------------------------
    hard_draws: bool = False
    """Draw ``hard_share`` of each SDF batch (code fit and fine-tuning) in proportion to the samples' last
    measured clamped error, the rest as DeepSDF draws. Where the fit is still wrong — a thin leg that a few
    hundred of 200,000 samples describe — is drawn more often, so a smaller batch keeps what a larger uniform
    one misses. The errors are each sample's at its last draw, re-measured for every sample each
    ``hard_refresh_every`` steps (no hard draws before the first measurement). Real-v5, 11 held-out shapes,
    300 + 300 steps with fine-tuning, three seeds: F@1 / thin F@1 90.8 / 74.0 at 8,000 uniform samples a step,
    91.4 / 83.5 at 4,000 with half by error, in 0.36x the time of the fit of 2026-12-04 (0.50x before); on
    single-view scans from the front they gave up the hidden side (docs/experiments/2026-12-05-hard-draws.md).
    Off by default: :class:`TTOConfig`'s defaults are DeepSDF's; the viewer turns it on."""
    hard_share: float = 0.5
    """Share of each batch drawn by error when ``hard_draws`` is on."""
    hard_refresh_every: int = 100
    """Steps between the full passes that measure every sample's error for the hard draws (the code fit's
    steps 100, 200, ... and the fine-tuning's first step and every this many after)."""

    # --- fine-tuning the decoder's last layers -------------------------------------------------
    finetune_last_layers: bool = False
    """After the code fit, fine-tune the decoder's last layer(s) on a private copy."""
    finetune_layers: int = 4
    """How many of the last linear layers are trained (the SDF output layer and the trunk layers before it).
    Four since 2026-12-05: on real-v5's 11 held-out shapes at the viewer's settings (4,000 samples, hard draws,
    code rate 1e-2; three seeds) F@1 / thin F@1 91.85 / 85.6 with three → 93.76 / 96.5, every class as good or
    better (the stove's knobs 41 → 96, a TV cabinet's misplaced base fixed), a single-view scan's hidden side kept
    (front, anchored: unseen F@1 35.1 → 34.9 against the frozen fit's 32.4), for 1.1x the fit's time
    (docs/experiments/2026-12-05-surface-terms-on-real-meshes.md); on demo-v5 even (F@1 93.7 → 93.4, thin 93.8 → 93.1,
    7 shapes). Three, 300 steps at 5e-4, from 2026-11-28:
    held-out thin-part F@1 93.6 -> 99.3 on the demo, 36.4 -> 65.5 on real furniture (docs/results.md "Decoder
    fine-tuning at test time"); the earlier 1 layer, 100 steps at 1e-4 barely moved either (tables before
    that date used it: ``--tto-set finetune_layers=1`` ...)."""
    finetune_iterations: int = 300
    """Fine-tuning steps."""
    finetune_lr: float = 5e-4
    """Adam learning rate of the fine-tuning."""
    finetune_anchor_weight: float | None = None
    """Weight of the prior anchor (:mod:`core.tto.anchor`; 0: off): during the fine-tuning, where the
    observation has no sample within ``finetune_anchor_gap``, keep the frozen decoder's field at the fitted
    code, so that fitting the seen side does not undo the prior's completion of the hidden one. None (the
    default): chosen by the observation when the fit starts (:func:`for_observation`) —
    :data:`PARTIAL_SCAN_ANCHOR_WEIGHT` for a single-view scan, 0 for a whole one — and recorded so in the
    fit's result, whichever caller (viewer, ``reconstruct``, ``evaluate --observation scan``) runs it."""
    finetune_anchor_gap: float = 0.05
    """Anchor points lie farther than this from every observed sample (normalised units; the object spans ~2)."""
    finetune_anchor_points: int = 2048
    """Anchor points per fine-tuning step."""
    finetune_anchor_pool: int = 32768
    """Anchor points picked once per fit, the steps draw from them."""
    finetune_colour: bool = True
    """With the fine-tuning on, then fit the colour head of the decoder copy to the observation's colours
    (when it and the model have colour): the codes and the trunk stay fixed, so the geometry does not move;
    as paint's detail stage does. One colour code per shape recolours whole parts in the class's palette
    only; the head reads trunk features and encoded xyz too, so it can give each part its own colour."""
    colour_finetune_iterations: int = 200
    """Adam steps on the colour head (the head alone runs a step: a few milliseconds)."""
    colour_finetune_lr: float = 2e-3
    """Adam learning rate on the colour head's weights (paint's detail stage uses the same)."""
    colour_finetune_points: int = 4096
    """Near-surface samples with colour per colour step."""
    colour_finetune_pool: int = 32768
    """Near-surface samples the colour head's stage draws its steps from, picked once (0: every one). A sample
    file holds about 170,000 within ``colour_band``; capturing the head's inputs for all of them took 1-2 s
    and about 200 MB a fit, and 200 steps of 4,096 points never needed them all."""

    # --- speed ---------------------------------------------------------------------------------
    precision: str = "auto"
    """Matrix products of each step: ``auto`` (bfloat16 autocast on a CPU with native bfloat16 units,
    where a step takes 0.43x the time; float32 elsewhere and on CUDA), ``float32`` or ``bfloat16``.
    The codes, the fine-tuned weights, Adam and the losses stay float32; the code's gradient agrees
    with float32's to a cosine of 0.99999 (benchmarks/bench_tto.py measures the fits it gives)."""

    # --- class inference -----------------------------------------------------------------------
    class_strategy: str = "batched"
    """How the class is inferred when none is given: ``batched`` (a short code fit under every class at
    once, one batched forward per step; scored as ``sequential`` scores) or ``sequential`` (a short fit
    per class, one after another, ``n_samples`` points a step: the reference, about 20x dearer)."""
    class_iterations: int = 100
    """Steps of the short fit under each class when the class is inferred."""
    class_samples: int = 500
    """SDF samples per class and step of the ``batched`` short fits (the same points for every class,
    so their losses compare); ``sequential`` uses ``n_samples``."""
    class_lr: float = 5e-3
    """Code learning rate of the short fits (``lr`` is the main fit's): measured at DeepSDF's rate, and
    the fit's own rate does not carry over — at 1e-2 the batched fits picked 34 of 47 held-out real
    shapes right against 35 (docs/experiments/2026-12-05-class-inference-and-fit-cost.md)."""

    losses: str = "baseline"
    """The preset string the switches came from (for the record)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes saved with the run."""

    def __post_init__(self) -> None:
        problems = self._non_finite_problems() + self._range_problems() + self._curriculum_problems()
        problems += self._choice_problems()
        if problems:
            raise ConfigError("TTOConfig: " + "; ".join(problems) + ".")
        self.curriculum_stages = tuple(float(x) for x in self.curriculum_stages)
        self.curriculum_eps = tuple(float(x) for x in self.curriculum_eps)
        self.curriculum_lambda = tuple(float(x) for x in self.curriculum_lambda)

    def _non_finite_problems(self) -> list[str]:
        """NaN or infinity in any number (a NaN learning rate passes every ``<= 0`` check below)."""
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, (tuple, list)) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                problems.append(f"{f.name} must be a finite number, got {value!r}")
        return problems

    def _range_problems(self) -> list[str]:
        """Counts, rates, weights and bands outside the range the fit can use."""
        problems = [
            f"{name} must be >= {low}, got {getattr(self, name)}"
            for name, low in _AT_LEAST.items()
            if getattr(self, name) < low
        ]
        problems += [
            f"{name} must be >= 0, got {getattr(self, name)}"
            for name in _NON_NEGATIVE
            if getattr(self, name) is not None and getattr(self, name) < 0
        ]
        if min(self.lr, self.finetune_lr, self.colour_finetune_lr, self.class_lr) <= 0:
            problems.append("learning rates must be positive")
        if self.clamp <= 0 or self.clamp_start <= 0 or self.clamp_end <= 0:
            problems.append("clamp distances must be positive")
        problems += [
            f"{name} must be positive, got {getattr(self, name)}"
            for name in ("lr_decay", "colour_band", "near_band", "finetune_anchor_gap")
            if getattr(self, name) <= 0
        ]
        if not 0.0 < self.early_sample_share <= 1.0:
            problems.append(f"early_sample_share must be in (0, 1], got {self.early_sample_share}")
        if not 0.0 < self.hard_share <= 1.0:
            problems.append(f"hard_share must be in (0, 1], got {self.hard_share}")
        if not 0.0 <= self.near_fraction_end <= 1.0:
            problems.append(f"near_fraction_end must be in [0, 1], got {self.near_fraction_end}")
        if self.lr_decay_every is not None and self.lr_decay_every < 1:
            problems.append(f"lr_decay_every must be >= 1 (or None: half the iterations), got {self.lr_decay_every}")
        if not 0.0 < self.c2f_until <= 1.0:
            problems.append(f"c2f_until must be in (0, 1], got {self.c2f_until}")
        return problems

    def _choice_problems(self) -> list[str]:
        """Settings that name one of a few choices."""
        problems = []
        if self.precision not in ("auto", "float32", "bfloat16"):
            problems.append(f"precision must be auto, float32 or bfloat16, got {self.precision!r}")
        if self.class_strategy not in ("batched", "sequential"):
            problems.append(f"class_strategy must be batched or sequential, got {self.class_strategy!r}")
        return problems

    def _curriculum_problems(self) -> list[str]:
        """What is wrong with the curriculum's stages: an empty list (with ``curriculum`` on) failed with an
        IndexError in the middle of a run, unsorted stages or a negative lambda silently changed the loss."""
        stages, eps, lam = (list(v) for v in (self.curriculum_stages, self.curriculum_eps, self.curriculum_lambda))
        problems = []
        if not len(stages) == len(eps) == len(lam):
            problems.append("curriculum_stages, curriculum_eps and curriculum_lambda must have equal lengths")
        if self.curriculum and not stages:
            problems.append("curriculum needs at least one stage (curriculum_stages is empty)")
        rising = all(b > a for a, b in zip(stages[:-1], stages[1:], strict=True))
        if stages and (stages[0] != 0 or stages[-1] >= 1 or not rising):
            problems.append(
                f"curriculum_stages {stages} must start at 0 and rise strictly, below 1 (the fraction of "
                "the run where each stage starts, e.g. [0, 0.2, 0.4, 0.6, 0.8])"
            )
        if any(e < 0 for e in eps):
            problems.append(f"curriculum_eps {eps} must be >= 0 (a tolerance)")
        if any(not 0 <= v <= 1 for v in lam):
            problems.append(
                f"curriculum_lambda {lam} must be in [0, 1] (samples erring away from the surface weigh 1 - lambda)"
            )
        return problems

    @classmethod
    def from_losses(cls, losses: str | None = "baseline", **overrides: Any) -> "TTOConfig":
        """A config with the switches of a ``losses`` preset turned on, plus field overrides."""
        flags = parse_losses(losses)
        values: dict[str, Any] = {flag: True for flag in flags}
        values.update(overrides)
        return cls(losses=losses or "baseline", **values)

    def with_losses(self, losses: str | None) -> "TTOConfig":
        """This config with its switches replaced by those of a ``losses`` preset."""
        flags = parse_losses(losses)
        switches: dict[str, Any] = {f: (f in flags) for f in _ALL_FLAGS}
        return replace(self, losses=losses or "baseline", **switches)

    def with_overrides(self, overrides: list[str], where: str = "--tto-set") -> "TTOConfig":
        """This config with ``NAME=VALUE`` settings applied by field name (``finetune_layers=3``); an
        unknown name or a wrong type raises :class:`ConfigError` naming it."""
        for text in overrides:
            keys, _ = config_io.parse_override(text)
            if len(keys) != 1:
                raise ConfigError(f"{where} {text!r}: expected a TTO setting name, e.g. finetune_layers=3")
        return TTOConfig.from_dict(config_io.apply_overrides(self.to_dict(), list(overrides)), where)

    @property
    def decay_every(self) -> int:
        return int(self.lr_decay_every or max(1, self.iterations // 2))

    def enabled(self) -> list[str]:
        """Names of the switches that are on (empty for the baseline)."""
        return [f for f in _ALL_FLAGS if getattr(self, f)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples as lists), through :func:`core.utils.config_io.to_dict`."""
        return config_io.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "TTOConfig") -> "TTOConfig":
        """The config of a saved dict; unknown keys and wrong types raise :class:`ConfigError` naming the key."""
        return config_io.from_dict(cls, data, where)


def for_observation(config: TTOConfig, kind: str) -> TTOConfig:
    """``config`` with its automatic settings chosen for an observation of ``kind`` (``Observation.kind``):
    the prior anchor's weight (None) becomes :data:`PARTIAL_SCAN_ANCHOR_WEIGHT` for a single-view ``scan`` —
    a fine-tuning then holds the prior's field where the camera saw nothing — and 0 for anything else.
    Settings given explicitly are kept; :func:`core.tto.fit.iterate_fit` calls this before every fit."""
    if config.finetune_anchor_weight is None:
        return replace(config, finetune_anchor_weight=PARTIAL_SCAN_ANCHOR_WEIGHT if kind == "scan" else 0.0)
    return config
