"""Operations on latent codes that the viewer and the results share: blends, PCA maps, draws.

Plain torch/numpy, no Qt, so they are tested without a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
import torch

__all__ = ["lerp", "slerp", "blend", "CONDITION_BLENDS", "nearer_end", "blend_condition", "CodePCA", "random_code"]


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * float(t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of direction with linear interpolation of length.

    Codes drawn from an isotropic Gaussian concentrate on a shell, so a straight line between two
    of them dips towards the origin (the mean shape); slerp keeps the blend on the shell.
    """
    t = float(t)
    na, nb = a.norm(), b.norm()
    if na < 1e-12 or nb < 1e-12:
        return lerp(a, b, t)
    ua, ub = a / na, b / nb
    omega = torch.arccos(torch.clamp((ua * ub).sum(), -1.0, 1.0))
    if omega < 1e-6:
        return lerp(a, b, t)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)


@overload
def blend(a: torch.Tensor, b: torch.Tensor, t: float, spherical: bool = False) -> torch.Tensor: ...


@overload
def blend(a: torch.Tensor | None, b: torch.Tensor | None, t: float, spherical: bool = False) -> torch.Tensor | None: ...


def blend(a: torch.Tensor | None, b: torch.Tensor | None, t: float, spherical: bool = False) -> torch.Tensor | None:
    """Blend two optional codes; when one is None, the other (None when both are)."""
    if a is None or b is None:
        return a if b is None else (b if a is None else None)
    return slerp(a, b, t) if spherical else lerp(a, b, t)


def nearer_end(a, b, t: float):
    """A for t < 0.5, B from 0.5 on: the one switch point of a blend's class (its condition and its label)."""
    return a if float(t) < 0.5 else b


CONDITION_BLENDS: tuple[str, ...] = ("nearest", "linear")
"""How an interpolation carries the class condition: the nearer end's (default) or a linear blend."""


def blend_condition(
    a: torch.Tensor | None, b: torch.Tensor | None, t: float, how: str = "nearest"
) -> torch.Tensor | None:
    """The class condition at ``t`` of an A → B interpolation.

    ``nearest`` keeps A's condition for t < 0.5 and B's from 0.5 on, so the decoder only ever sees
    conditions it was trained with; the shape code still moves smoothly and the class changes in
    one step at the middle. ``linear`` blends the two conditions like the codes. A class-conditioned
    decoder never saw a condition between two classes, and on the demo models that blend is what
    breaks cross-class interpolations: on the thin-aware demo of 2026-11-28, 12 of 15 mid-shapes
    collapse (slabs, lost legs, broken parts) with a linear condition, 5 with the nearer end's
    (studies/interpolation_study.py, 128³; docs/results.md, "Training recipe").
    """
    if how not in CONDITION_BLENDS:
        raise ValueError(f"condition blend {how!r}: use one of {', '.join(CONDITION_BLENDS)}")
    if a is None or b is None:
        return a if b is None else (b if a is None else None)
    if how == "linear":
        return lerp(a, b, t)
    return nearer_end(a, b, t)


@dataclass
class CodePCA:
    """A 2-D principal-component map of a set of codes (the viewer's latent map)."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (2, D), orthonormal rows
    explained: np.ndarray  # (2,) fraction of variance

    @classmethod
    def fit(cls, codes: np.ndarray | torch.Tensor) -> "CodePCA":
        x = np.asarray(codes.detach().cpu() if isinstance(codes, torch.Tensor) else codes, np.float64)
        mean = x.mean(axis=0)
        centred = x - mean
        if len(x) < 2:
            comps = np.eye(2, x.shape[1])
            return cls(mean, comps, np.zeros(2))
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        comps = np.zeros((2, x.shape[1]))
        comps[: min(2, len(vt))] = vt[:2]
        var = s**2
        explained = np.zeros(2)
        explained[: min(2, len(var))] = var[:2] / max(var.sum(), 1e-12)
        return cls(mean, comps, explained)

    def project(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        x = np.asarray(codes.detach().cpu() if isinstance(codes, torch.Tensor) else codes, np.float64)
        return (x - self.mean) @ self.components.T

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """2-D map position -> code (the mean plus the two components; other directions zero)."""
        return self.mean + np.asarray(xy, np.float64) @ self.components


def random_code(codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A code drawn from a Gaussian fitted to ``codes`` (per-dimension mean and std)."""
    mean = codes.mean(dim=0)
    std = codes.std(dim=0) if len(codes) > 1 else torch.full_like(mean, 0.01)
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    return mean + std * noise.to(mean.device)
