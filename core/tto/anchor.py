"""The prior anchor of a decoder fine-tuning: where the observation says nothing, keep the prior's field.

Why: fine-tuning the decoder's last layers fits what the camera saw very well, but nothing in its loss
speaks for what the camera did not see, and on single-view scans it traded the hidden side for the seen
one (docs/results.md "Partial scans": unseen F@1 31.8 frozen, 23.0 fine-tuned, from the front). The
anchor adds, during the fine-tuning only,

    w_a * mean_a |clamp(f_tuned(z, a)) - clamp(f_frozen(z, a))|

over anchor points ``a``: points of the normalised cube farther than ``gap`` from every observed sample,
near the frozen decoder's surface at the fitted code ``z`` (``|f_frozen| <`` the clamp, where the clamped
loss has a gradient). The frozen field there is the prior's completion of the shape; the anchor keeps it
while the observed samples pull the seen side into place. With a full observation hardly any point is far
from every sample, so the anchor has little to hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from core.tto import losses as L

__all__ = ["PriorAnchor", "prior_anchor"]


@dataclass(frozen=True)
class PriorAnchor:
    """Anchor points and the frozen decoder's SDF at them (both on the fit's device)."""

    points: torch.Tensor
    """(K, 3) float32."""
    target: torch.Tensor
    """(K,) float32: the frozen decoder's SDF at ``points`` with the fitted code."""

    def draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` anchor points (with replacement) and their targets."""
        idx = torch.randint(0, len(self.points), (n,), generator=gen).to(self.points.device)
        return self.points[idx], self.target[idx]

    def loss(self, pred: torch.Tensor, target: torch.Tensor, clamp: float) -> torch.Tensor:
        """The anchor term's mean clamped L1 (``pred`` the tuned decoder's SDF at drawn points)."""
        return L.clamped_l1(pred, target, clamp)


def prior_anchor(
    observed: np.ndarray,
    frozen_sdf,
    gap: float,
    clamp: float,
    pool: int,
    device: torch.device,
    seed: int = 0,
    candidates: int = 262144,
) -> PriorAnchor | None:
    """Anchor points for a fine-tuning; None when no candidate qualifies (a full observation).

    observed (N, 3): every sample point of the observation; ``frozen_sdf(points (M, 3) tensor) -> (M,)``
    the frozen decoder at the fitted code. ``candidates`` uniform points of [-1, 1]^3 (a fixed generator,
    so a fit is a function of its seed) are kept when farther than ``gap`` from every observed point and
    within ``clamp`` of the frozen surface; at most ``pool`` of them are kept.
    """
    rng = np.random.default_rng([seed, 7])
    cand = rng.uniform(-1.0, 1.0, size=(candidates, 3)).astype(np.float32)
    if len(observed):
        far = cKDTree(np.asarray(observed, np.float32)).query(cand, distance_upper_bound=gap)[0] > gap
        cand = cand[far]
    if not len(cand):
        return None
    points = torch.from_numpy(cand).to(device)
    with torch.no_grad():
        target = torch.cat([frozen_sdf(chunk).float() for chunk in torch.split(points, 65536)])
    keep = torch.abs(target) < clamp
    if not bool(keep.any()):
        return None
    points, target = points[keep], target[keep]
    if len(points) > pool:
        pick = torch.from_numpy(rng.choice(len(points), pool, replace=False)).to(device)
        points, target = points[pick], target[pick]
    return PriorAnchor(points.contiguous(), target.contiguous())
