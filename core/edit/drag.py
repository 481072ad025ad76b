"""Drag the surface: optimise the shape code so handles reach their targets and the rest stays.

DualSDF's editing idea (Hao et al., CVPR 2020) on a DeepSDF code: the user moves surface
points; the code — and only the shape code; colour and decoder are fixed — is optimised so

* ``handle``:   SDF(target) = 0 for every handle (the surface passes through the target),
* ``pin``:      SDF(p) = 0 for every pinned point (these stay on the surface),
* ``locality``: the field at probes of the current surface (on it and just inside/outside)
  keeps its value away from the handles; a probe's weight rises from 0 at the radius of
  influence to 1 at ``radius * (1 + falloff)``, so the region near a handle is free to move,
* ``reg``:      the code stays in its class's distribution (squared Mahalanobis / D, see
  :mod:`core.edit.plausibility`).

A code is global, so "local" is a request the optimiser balances, not a guarantee: the
benchmark (``benchmarks/bench_edit.py``) measures how far the surface outside the radius moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from core.edit.constraints import EditError, Handle, Pin
from core.edit.optimise import Cancel, EditProgress, EditResult, optimise_code
from core.edit.plausibility import class_gaussian
from core.edit.snapshot import Snapshot, decode_sdf

__all__ = ["DragConfig", "drag", "locality_weights", "ON_SURFACE"]

ON_SURFACE = 0.05
"""Handle sources and pins must have |SDF| below this before the drag (a point picked on the mesh
has ~0; more means a typo or a point of another shape)."""


@dataclass
class DragConfig:
    """Settings of one drag edit (unit-sphere frame)."""

    radius: float = 0.3
    """Radius of influence around each handle's source point: inside it the surface may move freely."""
    falloff: float = 0.5
    """The locality weight ramps from 0 at ``radius`` to 1 at ``radius * (1 + falloff)``."""
    iterations: int = 150
    """Most Adam steps; a drag usually stops earlier (see ``tolerance``)."""
    min_iterations: int = 100
    """Steps before the early stop may end it: the handle reaches its target in ~20 steps, the
    locality term needs ~100 more to pull the rest of the surface back (0.5 voxel at 64³ on the
    demo model after 150 steps, against 2-3 voxels after 20; benchmarks/bench_edit.py)."""
    lr: float = 0.02
    """Adam learning rate on the shape code (the demo's codes have a per-dimension std of ~0.17)."""
    handle_weight: float = 10.0
    """Weight of mean |SDF(target)|."""
    pin_weight: float = 10.0
    """Weight of mean |SDF(pin)|."""
    locality_weight: float = 30.0
    """Weight of the weighted mean |SDF_new - SDF_before| on the probes outside the radius (1 and
    10 left 2.2 and 0.8 voxels of mean Chamfer outside the radius on the demo chair; 30 left 0.5)."""
    reg_weight: float = 1e-3
    """Weight of the code regulariser (squared Mahalanobis distance / D under the class Gaussian)."""
    probes_per_step: int = 3000
    """Locality probes drawn per step from the snapshot's."""
    tolerance: float = 0.005
    """Stop once every handle and pin has |SDF| below this (a sixth of a voxel at 64³)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("radius", "lr", "tolerance"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value <= 0:
                raise EditError(f"drag: {name} = {value} must be a finite number > 0")
        if self.iterations < 1:
            raise EditError(f"drag: iterations = {self.iterations} must be at least 1")


def locality_weights(points: torch.Tensor, centres: torch.Tensor, radius: float, falloff: float) -> torch.Tensor:
    """(N,) weight in [0, 1] of ``points`` (N, 3): 0 within ``radius`` of any of ``centres`` (K, 3)."""
    if len(centres) == 0:
        return torch.ones(len(points), device=points.device)
    d = torch.cdist(points, centres).min(dim=1).values
    return ((d - radius) / max(radius * falloff, 1e-6)).clamp(0.0, 1.0)


def drag(
    model,
    snapshot: Snapshot,
    handles: Sequence[Handle],
    pins: Sequence[Pin] = (),
    config: DragConfig | None = None,
    init: torch.Tensor | None = None,
    cancel: Cancel = None,
    callback: Callable[[EditProgress], Any] | None = None,
    every: int = 10,
) -> EditResult:
    """Optimise the shape code of ``snapshot.codes`` so the handles' targets lie on the surface.

    Parameters
    ----------
    model : a ``TrainedModel``.
    snapshot : the shape before the drag (:func:`core.edit.take_snapshot`).
    handles : at least one :class:`Handle`; pins : points that must stay on the surface.
    init : the code to start from (default the snapshot's; the viewer passes the last preview's).
    cancel : ``threading.Event`` or callable, checked before every step.
    callback : called with an :class:`EditProgress` every ``every`` steps.

    Returns
    -------
    EditResult with metrics ``handle_sdf`` (per handle, after), ``handle_sdf_max``, ``pin_sdf_max``.
    """
    config = config or DragConfig()
    if not handles:
        raise EditError("drag: give at least one handle (source point and target)")
    device = model.device
    codes = snapshot.codes
    targets = torch.tensor([h.target for h in handles], dtype=torch.float32, device=device)
    sources = torch.tensor([h.source for h in handles], dtype=torch.float32, device=device)
    pin_pts = torch.tensor([p.point for p in pins], dtype=torch.float32, device=device).reshape(-1, 3)
    with torch.no_grad():
        start_sdf = decode_sdf(model, codes, torch.cat([sources, pin_pts])).abs().cpu()
    for i, value in enumerate(start_sdf.tolist()):
        if value > ON_SURFACE:
            what = f"handle source {handles[i].source}" if i < len(handles) else f"pin {pins[i - len(handles)].point}"
            raise EditError(
                f"drag: the {what} is {value:.3f} from the surface (more than {ON_SURFACE}); "
                "pick points on the shape's surface"
            )
    weights = locality_weights(snapshot.probes, sources, config.radius, config.falloff)
    keep = torch.nonzero(weights > 0).flatten()
    gaussian = class_gaussian(model, codes.class_name)
    gen = torch.Generator().manual_seed(config.seed)
    n_probe = min(config.probes_per_step, len(keep))
    n_t, n_p = len(targets), len(pin_pts)

    def loss_fn(code: torch.Tensor, it: int) -> dict[str, torch.Tensor]:
        pick = keep[torch.randint(0, len(keep), (n_probe,), generator=gen).to(device)] if n_probe else keep
        points = torch.cat([targets, pin_pts, snapshot.probes[pick]])
        sdf = decode_sdf(model, codes, points, code.to(device))
        terms = {"handle": sdf[:n_t].abs().mean()}
        total = config.handle_weight * terms["handle"]
        if n_p:
            terms["pin"] = sdf[n_t : n_t + n_p].abs().mean()
            total = total + config.pin_weight * terms["pin"]
        if n_probe:
            w = weights[pick]
            change = (sdf[n_t + n_p :] - snapshot.probe_sdf[pick]).abs()
            terms["locality"] = (w * change).sum() / w.sum().clamp(min=1e-6)
            total = total + config.locality_weight * terms["locality"]
        terms["reg"] = gaussian.regulariser(code)
        total = total + config.reg_weight * terms["reg"]
        terms["handle_max"] = sdf[: n_t + n_p].detach().abs().max()
        return {"total": total, **terms}

    start_code = (codes.shape_code if init is None else init).to(device)
    code, history, cancelled, seconds = optimise_code(
        "drag",
        start_code,
        loss_fn,
        config.iterations,
        config.lr,
        min_iterations=config.min_iterations,
        converged=lambda v: v["handle_max"] < config.tolerance,
        cancel=cancel,
        callback=callback,
        every=every,
    )
    with torch.no_grad():
        after = decode_sdf(model, codes, torch.cat([targets, pin_pts]), code.to(device)).cpu()
    metrics = {
        "handle_sdf": [float(v) for v in after[:n_t]],
        "handle_sdf_max": float(after[:n_t].abs().max()),
        "pin_sdf_max": float(after[n_t:].abs().max()) if n_p else 0.0,
        "radius": config.radius,
        "probes_outside_radius": int(len(keep)),
    }
    return EditResult(
        "drag",
        code,
        codes.colour_code,
        codes.condition,
        gaussian.class_name or codes.class_name,
        history,
        seconds,
        len(history),
        cancelled,
        gaussian.assess(code),
        metrics,
    )
