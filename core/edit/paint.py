"""Paint: optimise the colour code, then fine-tune this shape's colour head, so the surface under
the brushes takes their colours and the rest keeps its own.

Stage 1 (code) changes only the colour code (the shape code and the geometry stay exactly the
same). The loss is the L1 RGB error to the brush colour on the snapshot's surface points under a
brush, plus ``keep_weight`` times the L1 error to the colours before the edit everywhere else;
each step draws the same number of points under the brushes as elsewhere, so a small brush is not
outvoted by the rest of the surface. One colour code per shape recolours whole parts, and a
colour the class never had does not take, so stage 2 (``detail``, on by default) fine-tunes a
private copy of the decoder's colour head on the same loss: the head reads trunk features and
Fourier-encoded xyz besides the code, so it can paint a spot. The shared model is never changed:
the result carries the whole decoder state with the new colour head as ``decoder_override``
(use it with ``TrainedModel.with_decoder``). The SDF does not read the colour head, so the
geometry is unchanged by stage 2 as well. The result reports the CIELAB ΔE under the brushes and
elsewhere (``benchmarks/bench_edit.py`` measures them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from core.edit.constraints import Brush, EditError
from core.edit.optimise import Cancel, EditProgress, EditResult, adam_loop, optimise_code
from core.edit.plausibility import class_gaussian
from core.edit.snapshot import Snapshot
from core.model.colour_head import ColourHeadInputs, private_copy

__all__ = ["PaintConfig", "paint", "check_paintable", "brush_mask", "rgb_to_lab", "delta_e"]


@dataclass
class PaintConfig:
    """Settings of one paint edit."""

    iterations: int = 150
    """Adam steps on the colour code (stage 1)."""
    min_iterations: int = 20
    lr: float = 0.03
    """Adam learning rate on the colour code (the demo's colour codes have a per-dimension std of ~0.22)."""
    keep_weight: float = 2.0
    """Weight of keeping the colours outside the brushes (the brushed area has weight 1), in both stages.
    With the code alone, a red stroke on the demo chair's back ends at mean ΔE 0.9 / 5.5 under the brush
    and 9.1 / 5.9 elsewhere with 1 / 2; with 3 the brush hardly takes (ΔE 16)."""
    reg_weight: float = 1e-3
    """Weight of the colour-code regulariser (squared Mahalanobis distance / D under the class Gaussian)."""
    points_per_step: int = 2048
    """Surface points per step, half under the brushes and half elsewhere (both stages)."""
    detail: bool = True
    """After the code, fine-tune a copy of the colour head for this shape (stage 2), so a stroke stays
    local and takes colours the class never had; the result's ``decoder_override`` holds it. False: the
    colour code only (the decoder is untouched and ``decoder_override`` is the one painted on)."""
    detail_iterations: int = 400
    """Adam steps on the colour head's weights (stage 2)."""
    detail_lr: float = 2e-3
    """Adam learning rate on the colour head's weights (stage 2)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or not np.isfinite(self.lr) or self.lr <= 0:
            raise EditError(f"paint: iterations ({self.iterations}) must be >= 1 and lr ({self.lr}) > 0")
        if self.detail_iterations < 1 or not np.isfinite(self.detail_lr) or self.detail_lr <= 0:
            raise EditError(
                f"paint: detail_iterations ({self.detail_iterations}) must be >= 1 and detail_lr "
                f"({self.detail_lr}) > 0 (or set detail=False to paint with the colour code only)"
            )
        if self.points_per_step < 2:
            raise EditError(
                f"paint: points_per_step ({self.points_per_step}) must be >= 2 (half under the brushes, half elsewhere)"
            )


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
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def delta_e(rgb_a: np.ndarray | torch.Tensor, rgb_b: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N,) CIE76 colour difference ΔE*ab (about 2.3 is just noticeable; 10 is clearly different)."""
    return np.linalg.norm(rgb_to_lab(rgb_a) - rgb_to_lab(rgb_b), axis=1)


NO_COLOUR = "paint: this model has no colour head; paint needs a model trained with colour"


def check_paintable(model, codes) -> None:
    """Refuse paint on a model (or a shape) without colour: :class:`EditError`, before any edit runs."""
    if codes.colour_code is None or not model.has_colour:
        raise EditError(NO_COLOUR)


def paint(
    model,
    snapshot: Snapshot,
    brushes: Sequence[Brush],
    config: PaintConfig | None = None,
    cancel: Cancel = None,
    callback: Callable[[EditProgress], Any] | None = None,
    every: int = 10,
    decoder_override: dict[str, torch.Tensor] | None = None,
) -> EditResult:
    """Paint ``snapshot.codes`` towards the brushes' colours: colour code, then (``config.detail``) colour head.

    ``decoder_override``: the decoder state the shape is shown with (an earlier stroke's result, a
    fine-tuned TTO decoder); None: the model's own. ``snapshot`` must have been taken with that
    decoder (``take_snapshot(model.with_decoder(decoder_override), codes)``): its colours are the
    ones kept. ``model`` itself is never changed. ``callback`` gets ``"paint"`` reports (the colour
    code so far) and then ``"paint-detail"`` reports whose ``decoder_override`` is the decoder so far;
    ``cancel`` stops either stage (a cancelled code stage skips the detail stage).

    Returns
    -------
    EditResult with the new colour code, ``decoder_override`` (the full decoder state dict with the
    fine-tuned colour head; with ``detail=False`` the one given) and metrics, measured with that
    decoder: ``delta_e_brush`` / ``delta_e_rest`` (mean CIELAB ΔE to the brush colour under the brushes
    / to the colour before elsewhere), their 90th percentiles, ``brush_within_10`` and ``rest_within_3``
    (fractions of points), ``brush_points``, ``code_iterations`` and ``detail_iterations``.
    Raises :class:`EditError` for a model without colour or brushes that touch no surface.
    """
    config = config or PaintConfig()
    codes = snapshot.codes
    base = model.with_decoder(decoder_override)
    check_paintable(base, codes)
    colour_code = codes.colour_code
    assert colour_code is not None  # check_paintable refuses a shape without one
    if snapshot.colours is None:
        raise EditError(NO_COLOUR)
    if not brushes:
        raise EditError("paint: give at least one brush (centre, radius, colour)")
    device = base.device
    inside, brush_rgb = brush_mask(snapshot.surface, brushes)
    if not bool(inside.any()):
        raise EditError("paint: no brush touches the surface; move a brush centre onto the shape or enlarge its radius")
    target = torch.where(inside[:, None], brush_rgb, snapshot.colours)
    idx_in, idx_out = torch.nonzero(inside).flatten(), torch.nonzero(~inside).flatten()
    gaussian = class_gaussian(base, codes.class_name, kind="colour")
    gen = torch.Generator().manual_seed(config.seed)
    half = max(1, config.points_per_step // 2)
    shape_code = codes.shape_code.to(device)

    def draw() -> torch.Tensor:
        """Indices of ``half`` points under the brushes, then ``half`` elsewhere (when there are any)."""
        parts = [idx_in[torch.randint(0, len(idx_in), (half,), generator=gen).to(device)]]
        if len(idx_out):
            parts.append(idx_out[torch.randint(0, len(idx_out), (half,), generator=gen).to(device)])
        return torch.cat(parts)

    def colour_loss(rgb: torch.Tensor, pick: torch.Tensor) -> dict[str, torch.Tensor]:
        err = (rgb - target[pick]).abs().mean(dim=1)
        terms = {"brush": err[:half].mean()}
        total = terms["brush"]
        if len(idx_out):
            terms["keep"] = err[half:].mean()
            total = total + config.keep_weight * terms["keep"]
        return {"total": total, **terms}

    def loss_fn(code: torch.Tensor, it: int) -> dict[str, torch.Tensor]:
        pick = draw()
        terms = colour_loss(base.decode(snapshot.surface[pick], shape_code, code.to(device), codes.condition)[1], pick)
        terms["reg"] = gaussian.regulariser(code)
        terms["total"] = terms["total"] + config.reg_weight * terms["reg"]
        return terms

    code, history, cancelled, seconds = optimise_code(
        "paint",
        colour_code.to(device),
        loss_fn,
        config.iterations,
        config.lr,
        min_iterations=config.min_iterations,
        cancel=cancel,
        callback=callback,
        every=every,
    )
    code_iterations = len(history)
    final = base
    override = decoder_override
    detail_steps = 0
    if config.detail and not cancelled:
        final, detail_history, cancelled, detail_seconds = _fine_tune_colour_head(
            base, snapshot, code, draw, colour_loss, config, cancel, callback, every, code_iterations, seconds
        )
        history += detail_history
        detail_steps = len(detail_history)
        seconds += detail_seconds
        override = {k: v.detach().cpu().clone() for k, v in final.decoder.state_dict().items()}
    with torch.no_grad():
        rgb = final.decode(snapshot.surface, shape_code, code.to(device), codes.condition)[1].cpu()
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
        "code_iterations": code_iterations,
        "detail_iterations": detail_steps,
    }
    return EditResult(
        "paint",
        codes.shape_code,
        code,
        codes.condition,
        codes.class_name,
        history,
        seconds,
        len(history),
        cancelled,
        gaussian.assess(code),
        metrics,
        override,
    )


def _fine_tune_colour_head(
    base,
    snapshot: Snapshot,
    code: torch.Tensor,
    draw,
    colour_loss,
    config: PaintConfig,
    cancel: Cancel,
    callback,
    every: int,
    first_iteration: int,
    first_seconds: float,
):
    """Stage 2: Adam on the colour head of a private copy of ``base``'s decoder (its other weights fixed).

    The trunk is fixed, so the head's input at each surface point (trunk features ++ colour code ++
    encoded xyz) is computed once, captured from the decoder itself; each step runs only the head.
    Returns (the fine-tuned model copy, history, cancelled, seconds).
    """
    start = time.perf_counter()
    work = private_copy(base)
    inputs = ColourHeadInputs(work, snapshot.surface, snapshot.codes.shape_code, code, snapshot.codes.condition)
    predict = inputs.predict

    history: list[dict[str, float]] = []
    every = max(1, int(every))

    def loss(_it: int) -> dict[str, torch.Tensor]:
        pick = draw()
        return colour_loss(predict(pick), pick)

    def after_step(it: int, terms: dict[str, float]) -> bool:
        step = first_iteration + it + 1
        values = {"iteration": step, "seconds": first_seconds + time.perf_counter() - start, **terms}
        history.append(values)
        if callback is not None and (it + 1) % every == 0:
            state = {k: v.detach().cpu().clone() for k, v in work.decoder.state_dict().items()}
            callback(EditProgress("paint-detail", step, values, code.detach().cpu().clone(), state))
        return False

    cancelled = adam_loop(
        list(inputs.head.parameters()),
        loss,
        config.detail_iterations,
        config.detail_lr,
        cancel=cancel,
        after_step=after_step,
    )
    return work, history, cancelled, time.perf_counter() - start
