"""The loop every edit shares: Adam on one code, progress reports, cancel, early stop.

Gradients are taken with ``torch.autograd.grad`` with respect to the code only, as in
:mod:`core.tto.fit`: the decoder's weights and flags are never touched, so an edit can run on
a worker thread while the viewer meshes with the same model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from core.edit.plausibility import Plausibility
from core.utils.cancel import Cancel, is_cancelled

__all__ = ["Cancel", "EditProgress", "EditResult", "adam_loop", "is_cancelled", "optimise_code"]


@dataclass
class EditProgress:
    """One report of a running edit: ``losses`` (floats) after ``iteration`` steps, the code so far (CPU).

    ``decoder_override``: the decoder state so far when the edit fine-tunes weights (a paint's
    ``"paint-detail"`` stage); None while only a code changes.
    """

    kind: str
    iteration: int
    losses: dict[str, float]
    code: torch.Tensor
    decoder_override: dict[str, torch.Tensor] | None = None


@dataclass
class EditResult:
    """Outcome of :func:`~core.edit.drag`, :func:`~core.edit.paint` or :func:`~core.edit.graft`.

    Attributes
    ----------
    kind : ``"drag"``, ``"paint"`` or ``"graft"``.
    shape_code : (Ds,) CPU float32; colour_code : (Dc,) or None; condition : (Dcond,) or None.
    class_name : the class whose code Gaussian judged plausibility (and conditions the shape).
    history : one dict per step: ``iteration``, ``seconds`` (since the start) and the loss terms.
    seconds : wall time of the optimisation; iterations : steps run; cancelled : stopped by ``cancel``
        (the codes are those reached so far).
    plausibility : of the edited code (shape code, or colour code for paint).
    metrics : what the edit achieved, e.g. ``handle_sdf_max`` (drag), ``delta_e_brush`` (paint).
    decoder_override : full decoder state dict (CPU) to show the result with (``TrainedModel.with_decoder``):
        a paint's fine-tuned colour head. None: the decoder the edit started from, unchanged (drag and
        graft never change weights; the caller keeps the override the shape already had).
    """

    kind: str
    shape_code: torch.Tensor
    colour_code: torch.Tensor | None
    condition: torch.Tensor | None
    class_name: str | None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    iterations: int = 0
    cancelled: bool = False
    plausibility: Plausibility | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    decoder_override: dict[str, torch.Tensor] | None = None

    @property
    def final_losses(self) -> dict[str, float]:
        return {
            k: v for k, v in (self.history[-1] if self.history else {}).items() if k not in ("iteration", "seconds")
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary of the edit (codes as lists; a ``decoder_override`` only as a flag)."""
        return {
            "kind": self.kind,
            "class_name": self.class_name,
            "shape_code": self.shape_code.tolist(),
            "colour_code": None if self.colour_code is None else self.colour_code.tolist(),
            "condition": None if self.condition is None else self.condition.tolist(),
            "seconds": self.seconds,
            "iterations": self.iterations,
            "cancelled": self.cancelled,
            "final_losses": self.final_losses,
            "plausibility": None if self.plausibility is None else self.plausibility.to_dict(),
            "metrics": self.metrics,
            "fine_tuned_decoder": self.decoder_override is not None,
        }


LossFn = Callable[[torch.Tensor, int], dict[str, torch.Tensor]]
"""(code, iteration) -> loss terms as 0-d tensors; ``total`` is minimised."""


def adam_loop(
    params: list[torch.Tensor],
    loss_fn: Callable[[int], dict[str, torch.Tensor]],
    iterations: int,
    lr: float,
    *,
    cancel: Cancel,
    after_step: Callable[[int, dict[str, float]], bool],
) -> bool:
    """Adam on ``params`` for at most ``iterations`` steps; True when ``cancel`` stopped it.

    ``loss_fn(step)`` gives the loss terms (``total`` is minimised); ``after_step(step, terms as
    floats)`` runs after each step and stops the loop by returning True. The one optimisation loop
    of every edit: a code (drag, paint, graft) or the weights of a colour head (paint's detail).
    """
    optimiser = torch.optim.Adam(params, lr=lr)
    try:
        with torch.enable_grad():
            for it in range(int(iterations)):
                if is_cancelled(cancel):
                    return True
                terms = loss_fn(it)
                grads = torch.autograd.grad(terms["total"], params)
                for param, grad in zip(params, grads, strict=True):
                    param.grad = grad
                optimiser.step()
                if after_step(it, {k: float(v.detach()) for k, v in terms.items()}):
                    break
    finally:
        for param in params:
            param.grad = None
    return False


def optimise_code(
    kind: str,
    init: torch.Tensor,
    loss_fn: LossFn,
    iterations: int,
    lr: float,
    *,
    min_iterations: int = 0,
    converged: Callable[[dict[str, float]], bool] | None = None,
    cancel: Cancel = None,
    callback: Callable[[EditProgress], Any] | None = None,
    every: int = 10,
) -> tuple[torch.Tensor, list[dict[str, float]], bool, float]:
    """Adam on a copy of ``init`` (D,) for at most ``iterations`` steps.

    Stops early once ``converged(losses)`` holds after ``min_iterations``, or when ``cancel``
    is set (checked before every step). Returns (code (D,) CPU, history, cancelled, seconds).
    """
    start = time.perf_counter()
    code = init.detach().clone().to(torch.float32).requires_grad_(True)
    history: list[dict[str, float]] = []
    every = max(1, int(every))

    def after_step(it: int, terms: dict[str, float]) -> bool:
        values = {"iteration": it + 1, "seconds": time.perf_counter() - start, **terms}
        history.append(values)
        if callback is not None and (it + 1) % every == 0:
            callback(EditProgress(kind, it + 1, values, code.detach().cpu().clone()))
        return converged is not None and it + 1 >= min_iterations and converged(values)

    cancelled = adam_loop([code], lambda it: loss_fn(code, it), iterations, lr, cancel=cancel, after_step=after_step)
    return code.detach().cpu().clone(), history, cancelled, time.perf_counter() - start
