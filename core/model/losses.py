"""The SDF losses every optimisation of the decoder shares (torch, unit-sphere frame).

Training (:mod:`core.training.trainer`) and test-time optimisation (:mod:`core.tto`) fit the same
field to the same kind of samples, so they must score it with the very same formula; it lives
here, beside the model, so that neither of the two imports the other for it.
"""

from __future__ import annotations

import torch

__all__ = ["clamped_errors", "clamped_l1", "curriculum_l1"]


def clamped_errors(pred: torch.Tensor, gt: torch.Tensor, clamp: float) -> torch.Tensor:
    """Each sample's |clamp(pred) - clamp(gt)|, both clamped to [-clamp, clamp] (broadcast shapes): the terms
    :func:`clamped_l1` averages, and what test-time optimisation's hard draws weigh samples by."""
    return torch.abs(torch.clamp(pred, -clamp, clamp) - torch.clamp(gt, -clamp, clamp))


def clamped_l1(pred: torch.Tensor, gt: torch.Tensor, clamp: float) -> torch.Tensor:
    """DeepSDF's loss: mean |clamp(pred) - clamp(gt)|, both clamped to [-clamp, clamp]. (N,) → ()."""
    return torch.mean(clamped_errors(pred, gt, clamp))


def curriculum_l1(pred: torch.Tensor, gt: torch.Tensor, clamp: float, eps: float, lam: float) -> torch.Tensor:
    """Curriculum DeepSDF's loss (Duan et al., ECCV 2020), mean over (N,) samples.

    ``max(|clamp(pred) - clamp(gt)| - eps, 0) * (1 + lam * sgn(gt) * sgn(gt - pred))``: errors
    within the tolerance ``eps`` are free (surface accuracy curriculum), and samples whose
    prediction errs towards the wrong side of the surface weigh ``1 + lam`` while those that err
    away from it weigh ``1 - lam`` (sample difficulty curriculum).
    """
    err = torch.clamp(clamped_errors(pred, gt, clamp) - eps, min=0.0)
    if lam:
        err = err * (1.0 + lam * torch.sign(gt) * torch.sign(gt - pred))
    return torch.mean(err)
