"""Graft: a code whose shape is B inside a region and A outside, blended across a band.

The target field is ``w(x) * SDF_B(x) + (1 - w(x)) * SDF_A(x)`` with ``w`` = 1 deeper than
``band`` inside the region, 0 farther than ``band`` outside and a smoothstep between. One shape
code (under A's condition) is fitted to it with DeepSDF's clamped L1 on probes near both
surfaces and uniform points of the box, starting from the best of five blends of the two codes.
The colour code is then fitted the same way to A's colours outside and B's inside. The result
is the nearest shape the model can represent, which is the point: it stays a plausible member
of the class, where a CSG cut of two meshes would not (the metrics say how near it got).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from core.edit.constraints import EditError, Region
from core.edit.optimise import Cancel, EditProgress, EditResult, optimise_code
from core.edit.plausibility import class_gaussian
from core.edit.snapshot import Snapshot, decode_sdf

__all__ = ["GraftConfig", "graft", "blend_weight"]


@dataclass
class GraftConfig:
    """Settings of one graft edit (unit-sphere frame)."""

    band: float = 0.05
    """Half-width of the band across the region's boundary where A blends into B."""
    iterations: int = 300
    """Adam steps on the shape code (then as many on the colour code, if the model has colour)."""
    lr: float = 0.01
    clamp: float = 0.1
    """Clamp of the L1 loss (DeepSDF: 0.1): far-field values do not matter."""
    reg_weight: float = 1e-3
    """Weight of the code regulariser (squared Mahalanobis distance / D under A's class Gaussian)."""
    samples_per_step: int = 4096
    uniform_points: int = 8192
    """Uniform points of [-1, 1]^3 added to the near-surface probes of A and B (keeps the far field)."""
    colour: bool = True
    """Also fit the colour code (A's colours outside, B's inside)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not np.isfinite(self.band) or self.band <= 0:
            raise EditError(f"graft: band = {self.band} must be a finite number > 0")
        if self.iterations < 1:
            raise EditError(f"graft: iterations = {self.iterations} must be at least 1")


def blend_weight(region: Region, points: torch.Tensor, band: float) -> torch.Tensor:
    """(N,) weight of B at ``points`` (N, 3): 1 inside the region, 0 outside, smoothstep across ±band."""
    t = ((band - region.signed_distance(points)) / (2 * band)).clamp(0.0, 1.0)
    return t * t * (3 - 2 * t)


def graft(
    model,
    snap_a: Snapshot,
    snap_b: Snapshot,
    region: Region,
    config: GraftConfig | None = None,
    cancel: Cancel = None,
    callback: Callable[[EditProgress], Any] | None = None,
    every: int = 10,
) -> EditResult:
    """Fit a code whose SDF is B's inside ``region`` and A's outside.

    Returns
    -------
    EditResult (class and condition of A) with metrics, on probes near the surfaces (clamped L1):
    ``inside_error`` (against B, B's probes deep inside the region) with ``inside_error_code_a``
    (A's own code there, the error before the graft), and ``outside_error`` (against A, A's probes
    well outside) with ``outside_error_code_b``; ``init_blend`` (the blend of A and B started from).
    """
    config = config or GraftConfig()
    device = model.device
    a, b = snap_a.codes, snap_b.codes
    gen = torch.Generator().manual_seed(config.seed)
    uniform = (torch.rand(config.uniform_points, 3, generator=gen) * 2 - 1).to(device)
    pool = torch.cat([snap_a.probes, snap_b.probes, uniform])
    n_a, n_b = len(snap_a.probes), len(snap_b.probes)
    with torch.no_grad():
        f_a = torch.cat([decode_sdf(model, a, c) for c in pool.split(32768)])
        f_b = torch.cat([decode_sdf(model, b, c) for c in pool.split(32768)])
    w = blend_weight(region, pool, config.band)
    if not bool((w[n_a : n_a + n_b] > 0.5).any()) and not bool((w[:n_a] > 0.5).any()):
        raise EditError(
            f"graft: the {region.kind} at {region.centre} touches neither shape's surface; "
            "move it onto the part of B to graft"
        )
    target = (w * f_b + (1 - w) * f_a).clamp(-config.clamp, config.clamp)
    gaussian = class_gaussian(model, a.class_name)

    def sdf_loss(code: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        pred = decode_sdf(model, a, pool[pick], code.to(device)).clamp(-config.clamp, config.clamp)
        return (pred - target[pick]).abs().mean()

    # Start from the blend of A and B (under A's condition) that fits the target best.
    probe = torch.randint(0, len(pool), (8192,), generator=gen).to(device)
    blends = [0.0, 0.25, 0.5, 0.75, 1.0]
    with torch.no_grad():
        scores = [float(sdf_loss(torch.lerp(a.shape_code, b.shape_code, t), probe)) for t in blends]
    t0 = blends[int(np.argmin(scores))]
    init = torch.lerp(a.shape_code, b.shape_code, t0)

    def loss_fn(code: torch.Tensor, it: int) -> dict[str, torch.Tensor]:
        pick = torch.randint(0, len(pool), (config.samples_per_step,), generator=gen).to(device)
        terms = {"sdf": sdf_loss(code, pick), "reg": gaussian.regulariser(code)}
        return {"total": terms["sdf"] + config.reg_weight * terms["reg"], **terms}

    code, history, cancelled, seconds = optimise_code(
        "graft", init.to(device), loss_fn, config.iterations, config.lr, cancel=cancel, callback=callback, every=every
    )

    colour = a.colour_code
    if (
        config.colour
        and not cancelled
        and a.colour_code is not None
        and b.colour_code is not None
        and snap_a.colours is not None
        and snap_b.colours is not None
    ):
        colour, c_hist, cancelled, c_seconds = _fit_colour(
            model, snap_a, snap_b, region, config, code, gen, cancel, callback, every
        )
        history += [
            {**h, "iteration": len(history) + h["iteration"], "seconds": seconds + h["seconds"]} for h in c_hist
        ]
        seconds += c_seconds

    def err(c: torch.Tensor, sel: torch.Tensor, ref: torch.Tensor) -> float:
        with torch.no_grad():
            pred = decode_sdf(model, a, pool[sel], c.to(device)).clamp(-config.clamp, config.clamp)
            return float((pred - ref[sel].clamp(-config.clamp, config.clamp)).abs().mean())

    idx = torch.arange(len(pool), device=device)
    inside = idx[n_a : n_a + n_b][w[n_a : n_a + n_b] >= 1.0]
    outside = idx[:n_a][w[:n_a] <= 0.0]
    metrics = {
        "init_blend": t0,
        "band": config.band,
        "inside_points": int(len(inside)),
        "outside_points": int(len(outside)),
    }
    if len(inside):
        metrics.update(inside_error=err(code, inside, f_b), inside_error_code_a=err(a.shape_code, inside, f_b))
    if len(outside):
        metrics.update(outside_error=err(code, outside, f_a), outside_error_code_b=err(b.shape_code, outside, f_a))
    return EditResult(
        "graft",
        code,
        colour,
        a.condition,
        a.class_name,
        history,
        seconds,
        len(history),
        cancelled,
        gaussian.assess(code),
        metrics,
    )


def _fit_colour(
    model,
    snap_a: Snapshot,
    snap_b: Snapshot,
    region: Region,
    config: GraftConfig,
    shape_code: torch.Tensor,
    gen: torch.Generator,
    cancel: Cancel,
    callback,
    every: int,
):
    """Colour code for the grafted shape: A's colours on A's surface outside, B's on B's inside."""
    device = model.device
    a = snap_a.codes
    # graft calls this only when both shapes have colour codes and surface colours.
    assert a.colour_code is not None and snap_b.codes.colour_code is not None
    assert snap_a.colours is not None and snap_b.colours is not None
    w_a = blend_weight(region, snap_a.surface, config.band)
    w_b = blend_weight(region, snap_b.surface, config.band)
    points = torch.cat([snap_a.surface[w_a < 0.5], snap_b.surface[w_b >= 0.5]])
    target = torch.cat([snap_a.colours[w_a < 0.5], snap_b.colours[w_b >= 0.5]])
    gaussian = class_gaussian(model, a.class_name, kind="colour")
    code_s = shape_code.to(device)

    def loss_fn(code: torch.Tensor, it: int) -> dict[str, torch.Tensor]:
        pick = torch.randint(0, len(points), (min(2048, len(points)),), generator=gen).to(device)
        rgb = model.decode(points[pick], code_s, code.to(device), a.condition)[1]
        terms = {"colour": (rgb - target[pick]).abs().mean(), "reg": gaussian.regulariser(code)}
        return {"total": terms["colour"] + config.reg_weight * terms["reg"], **terms}

    init = torch.lerp(a.colour_code, snap_b.codes.colour_code, float((w_b >= 0.5).float().mean() > 0.5))
    return optimise_code(
        "graft-colour",
        init.to(device),
        loss_fn,
        max(20, config.iterations // 3),
        config.lr * 2,
        cancel=cancel,
        callback=callback,
        every=every,
    )
