"""Loss terms and schedules of test-time optimisation (torch, unit-sphere frame).

Every function takes plain tensors; :mod:`core.tto.fit` assembles them per step according to
:class:`core.tto.config.TTOConfig`.
"""
from __future__ import annotations

import torch

from core.tto.config import TTOConfig

__all__ = [
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
]


def clamped_l1(pred: torch.Tensor, gt: torch.Tensor, clamp: float) -> torch.Tensor:
    """DeepSDF's loss: mean |clamp(pred) - clamp(gt)|, both clamped to [-clamp, clamp]. (N,) → ()."""
    return torch.mean(torch.abs(torch.clamp(pred, -clamp, clamp) - torch.clamp(gt, -clamp, clamp)))


def curriculum_l1(pred: torch.Tensor, gt: torch.Tensor, clamp: float, eps: float, lam: float) -> torch.Tensor:
    """Curriculum DeepSDF's loss (Duan et al., ECCV 2020), mean over (N,) samples.

    ``max(|clamp(pred) - clamp(gt)| - eps, 0) * (1 + lam * sgn(gt) * sgn(gt - pred))``: errors
    within the tolerance ``eps`` are free (surface accuracy curriculum), and samples whose
    prediction errs towards the wrong side of the surface weigh ``1 + lam`` while those that err
    away from it weigh ``1 - lam`` (sample difficulty curriculum).
    """
    pc = torch.clamp(pred, -clamp, clamp)
    gc = torch.clamp(gt, -clamp, clamp)
    err = torch.clamp(torch.abs(pc - gc) - eps, min=0.0)
    if lam:
        err = err * (1.0 + lam * torch.sign(gt) * torch.sign(gt - pred))
    return torch.mean(err)


def surface_loss(sdf_on_surface: torch.Tensor) -> torch.Tensor:
    """mean |f(x)| over observed surface points (S,) → ()."""
    return torch.mean(torch.abs(sdf_on_surface))


def normal_loss(gradient: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos(grad f, n)) over (S, 3) gradients and unit normals → ()."""
    cos = torch.nn.functional.cosine_similarity(gradient, normals, dim=1, eps=1e-8)
    return torch.mean(1.0 - cos)


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
