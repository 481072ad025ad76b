"""Loss terms and schedules of test-time optimisation (torch, unit-sphere frame).

Every function takes plain tensors; :mod:`core.tto.fit` assembles them per step according to
:class:`core.tto.config.TTOConfig`. The SDF terms themselves (:func:`clamped_errors`, :func:`clamped_l1`,
:func:`curriculum_l1`) live in :mod:`core.model.losses`, shared with training, and are re-exported here for ``fit``.
"""

from __future__ import annotations

import torch

from core.model.losses import clamped_errors, clamped_l1, curriculum_l1
from core.tto.config import TTOConfig

__all__ = [
    "clamped_errors",
    "clamped_l1",
    "curriculum_l1",
    "surface_loss",
    "normal_loss",
    "code_prior",
    "colour_l1",
    "learning_rate",
    "curriculum_schedule",
    "clamp_at",
    "near_fraction_at",
    "samples_at",
    "hard_share",
]


def surface_loss(sdf_on_surface: torch.Tensor) -> torch.Tensor:
    """mean |f(x)| over observed surface points (S,) → ()."""
    return torch.mean(torch.abs(sdf_on_surface))


def normal_loss(gradient: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """mean(1 - |cos(grad f, n)|) over (S, 3) gradients and unit normals → ().

    Unoriented: it asks the level set to lie along the surface and leaves which side is outside to the
    SDF samples, which already say it. Real meshes' face normals point either way: at the real model's
    own training shapes and trained codes (11 shapes), cos(grad f, n) < 0 at 1-51 % of the sample files'
    surface points (median 28 %), while 1 - |cos| has a median of 0.000-0.11 — an oriented term asked the
    fine-tuned layers to turn about a quarter of a real surface inside out
    (docs/experiments/2026-12-05-surface-terms-on-real-meshes.md). On consistently oriented normals (the
    procedural set, scans) the two agree wherever the SDF term holds the sign.
    """
    cos = torch.nn.functional.cosine_similarity(gradient, normals, dim=1, eps=1e-8)
    return torch.mean(1.0 - cos.abs())


def code_prior(code: torch.Tensor) -> torch.Tensor:
    """DeepSDF's code regulariser ``mean(z^2)`` (the weight is applied by the caller)."""
    return torch.mean(code.pow(2))


def colour_l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """mean |pred - gt| over (N, 3) colours in [0, 1]."""
    return torch.mean(torch.abs(pred - gt))


def learning_rate(config: TTOConfig, iteration: int) -> float:
    """DeepSDF's step schedule: ``lr * (1 / decay) ** (iteration // decay_every)``."""
    return config.lr * (1.0 / config.lr_decay) ** (iteration // config.decay_every)


def _progress(config: TTOConfig, iteration: int) -> float:
    return iteration / max(1, config.iterations)


def curriculum_schedule(config: TTOConfig, iteration: int) -> tuple[float, float]:
    """``(eps, lambda)`` of the stage the iteration falls in."""
    t = _progress(config, iteration)
    stage = 0
    for i, start in enumerate(config.curriculum_stages):
        if t >= start:
            stage = i
    return config.curriculum_eps[stage], config.curriculum_lambda[stage]


def clamp_at(config: TTOConfig, iteration: int) -> float:
    """Clamp distance: fixed ``clamp``, or from ``clamp_start`` to ``clamp_end`` when coarse-to-fine."""
    if not config.coarse_to_fine:
        return config.clamp
    s = min(1.0, _progress(config, iteration) / max(config.c2f_until, 1e-9))
    return config.clamp_start + s * (config.clamp_end - config.clamp_start)


def near_fraction_at(config: TTOConfig, iteration: int) -> float:
    """Share of the batch drawn from near-surface samples (0 unless coarse-to-fine)."""
    if not config.coarse_to_fine:
        return 0.0
    s = min(1.0, _progress(config, iteration) / max(config.c2f_until, 1e-9))
    return s * config.near_fraction_end


def samples_at(config: TTOConfig, iteration: int) -> int:
    """SDF samples of a code-fit step: ``early_sample_share`` of ``n_samples`` before the first learning-rate
    decay, all of them after it and at every step past the code fit (fine-tuning passes ``iterations``)."""
    if iteration < min(config.decay_every, config.iterations):
        return max(2, round(config.early_sample_share * config.n_samples))
    return config.n_samples


def hard_share(config: TTOConfig) -> float:
    """Share of a batch drawn by the samples' errors: ``hard_share`` with ``hard_draws`` on, else 0."""
    return config.hard_share if config.hard_draws else 0.0
