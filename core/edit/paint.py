"""Paint: optimise the colour code so the surface under the brushes takes their colours.

Only the colour code changes (the shape code and the decoder are fixed, so the geometry is
exactly the same). The loss is the L1 RGB error to the brush colour on the snapshot's surface
points under a brush, plus ``keep_weight`` times the L1 error to the colours before the edit
everywhere else; each step draws the same number of points under the brushes as elsewhere, so a
small brush is not outvoted by the rest of the surface. The colour head reads one colour code
per shape, so how local a stroke can be depends on what the model learned: the result reports
the CIELAB ΔE under the brushes and elsewhere (``benchmarks/bench_edit.py`` measures them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from core.edit.constraints import Brush, EditError
from core.edit.optimise import Cancel, EditProgress, EditResult, optimise_code
from core.edit.plausibility import class_gaussian
from core.edit.snapshot import Snapshot

__all__ = ["PaintConfig", "paint", "brush_mask", "rgb_to_lab", "delta_e"]


@dataclass
class PaintConfig:
    """Settings of one paint edit."""

    iterations: int = 150
    """Most Adam steps (stops earlier once the brushed area is within ``tolerance_delta_e``)."""
    min_iterations: int = 20
    lr: float = 0.03
    """Adam learning rate on the colour code (the demo's colour codes have a per-dimension std of ~0.22)."""
    keep_weight: float = 2.0
    """Weight of keeping the colours outside the brushes (the brushed area has weight 1). On the demo
    chair a red stroke on the back ends at mean ΔE 0.9 / 5.5 under the brush and 9.1 / 5.9 elsewhere
    with 1 / 2; with 3 the brush hardly takes (ΔE 16): one colour code cannot paint a spot alone."""
    reg_weight: float = 1e-3
    """Weight of the colour-code regulariser (squared Mahalanobis distance / D under the class Gaussian)."""
    points_per_step: int = 2048
    """Surface points per step, half under the brushes and half elsewhere."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or not np.isfinite(self.lr) or self.lr <= 0:
            raise EditError(f"paint: iterations ({self.iterations}) must be >= 1 and lr ({self.lr}) > 0")


def brush_mask(points: torch.Tensor, brushes: Sequence[Brush]) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) bool: under any brush; (N, 3): the colour of the last brush covering each point."""
    inside = torch.zeros(len(points), dtype=torch.bool, device=points.device)
    colour = torch.zeros(len(points), 3, device=points.device)
    for b in brushes:
        c = torch.tensor(b.centre, dtype=points.dtype, device=points.device)
        hit = (points - c).norm(dim=-1) <= b.radius
        inside |= hit
        colour[hit] = torch.tensor(b.colour, dtype=colour.dtype, device=points.device)
    return inside, colour


def rgb_to_lab(rgb: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, 3) sRGB in [0, 1] -> CIELAB (D65), the space ΔE is measured in."""
    c = np.clip(np.asarray(rgb.detach().cpu() if isinstance(rgb, torch.Tensor) else rgb, np.float64), 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def delta_e(rgb_a: np.ndarray | torch.Tensor, rgb_b: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N,) CIE76 colour difference ΔE*ab (about 2.3 is just noticeable; 10 is clearly different)."""
    return np.linalg.norm(rgb_to_lab(rgb_a) - rgb_to_lab(rgb_b), axis=1)


def paint(model, snapshot: Snapshot, brushes: Sequence[Brush], config: PaintConfig | None = None,
          cancel: Cancel = None, callback: Callable[[EditProgress], Any] | None = None,
          every: int = 10) -> EditResult:
    """Optimise the colour code of ``snapshot.codes`` towards the brushes' colours.

    Returns
    -------
    EditResult with metrics ``delta_e_brush`` / ``delta_e_rest`` (mean CIELAB ΔE to the brush
    colour under the brushes / to the colour before elsewhere), their 90th percentiles,
    ``brush_within_10`` and ``rest_within_3`` (fractions of points) and ``brush_points``.
    Raises :class:`EditError` for a model without colour or brushes that touch no surface.
    """
    config = config or PaintConfig()
    codes = snapshot.codes
    if codes.colour_code is None or snapshot.colours is None or not model.has_colour:
        raise EditError("paint: this model has no colour head; paint needs a model trained with colour")
    if not brushes:
        raise EditError("paint: give at least one brush (centre, radius, colour)")
    device = model.device
    inside, brush_rgb = brush_mask(snapshot.surface, brushes)
    if not bool(inside.any()):
        raise EditError("paint: no brush touches the surface; move a brush centre onto the shape or enlarge "
                        "its radius")
    target = torch.where(inside[:, None], brush_rgb, snapshot.colours)
    idx_in, idx_out = torch.nonzero(inside).flatten(), torch.nonzero(~inside).flatten()
    gaussian = class_gaussian(model, codes.class_name, kind="colour")
    gen = torch.Generator().manual_seed(config.seed)
    half = max(1, config.points_per_step // 2)
    shape_code = codes.shape_code.to(device)

    def loss_fn(code: torch.Tensor, it: int) -> dict[str, torch.Tensor]:
        a = idx_in[torch.randint(0, len(idx_in), (half,), generator=gen).to(device)]
        parts = [a]
        if len(idx_out):
            parts.append(idx_out[torch.randint(0, len(idx_out), (half,), generator=gen).to(device)])
        pick = torch.cat(parts)
        rgb = model.decode(snapshot.surface[pick], shape_code, code.to(device), codes.condition)[1]
        err = (rgb - target[pick]).abs().mean(dim=1)
        terms = {"brush": err[:half].mean()}
        total = terms["brush"]
        if len(idx_out):
            terms["keep"] = err[half:].mean()
            total = total + config.keep_weight * terms["keep"]
        terms["reg"] = gaussian.regulariser(code)
        return {"total": total + config.reg_weight * terms["reg"], **terms}

    code, history, cancelled, seconds = optimise_code(
        "paint", codes.colour_code.to(device), loss_fn, config.iterations, config.lr,
        min_iterations=config.min_iterations, cancel=cancel, callback=callback, every=every)
    with torch.no_grad():
        rgb = model.decode(snapshot.surface, shape_code, code.to(device), codes.condition)[1].cpu()
    de = delta_e(rgb, target.cpu())
    mask = inside.cpu().numpy()
    metrics = {
        "brush_points": int(mask.sum()),
        "delta_e_brush": float(de[mask].mean()),
        "delta_e_brush_p90": float(np.percentile(de[mask], 90)),
        "brush_within_10": float((de[mask] <= 10).mean()),
        "delta_e_rest": float(de[~mask].mean()) if (~mask).any() else 0.0,
        "delta_e_rest_p90": float(np.percentile(de[~mask], 90)) if (~mask).any() else 0.0,
        "rest_within_3": float((de[~mask] <= 3).mean()) if (~mask).any() else 1.0,
        "delta_e_brush_before": float(delta_e(snapshot.colours.cpu()[mask], target.cpu()[mask]).mean()),
    }
    return EditResult("paint", codes.shape_code, code, codes.condition, codes.class_name, history, seconds,
                      len(history), cancelled, gaussian.assess(code), metrics)
