"""Does the plain code fit (decoder frozen) stop short because of where it starts, or what it may move?

Held-out shapes fitted with the decoder frozen reach about 9 points of F@1 less than the training shapes
reach at their trained codes (docs/experiments/2026-12-05-generalisation-and-prior-anchor.md). If
the fit were caught in a poor basin, a better start would close part of that gap; if the class's
condition vector held it back, freeing it would. This study runs ``main.py evaluate`` unchanged except
for one step of the fit:

* ``nearest``: the shape code starts at the class's trained code whose SDF is closest to the
  observation (mean clamped L1 over 4,000 of its samples; one pass per trained code), not at DeepSDF's
  small random code;
* ``free-condition``: the class's condition vector (its learned embedding) is optimised with the code,
  started at the class's own and pulled back to it by the code regulariser: the fit may borrow from
  neighbouring classes, the decoder stays frozen.

Both are patched into :mod:`core.tto.fit` for this process only (they are measured here before they
would become :class:`core.tto.config.TTOConfig` options). Every other argument goes to ``main.py
evaluate``; the control is the same command through ``main.py`` itself::

    python -m studies.code_start_study --start nearest evaluate --ckpt resources/real/model.pt \\
        --data data/sweethome3d --split test --limit 2 --iterations 300 --lr 0.01 --losses baseline \\
        --no-grid-reference --out runs/code_start/nearest
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from core.model.trained_model import TrainedModel

STARTS = ("nearest", "free-condition")
ROOT = Path(__file__).resolve().parents[1]


def nearest_trained_code(model: TrainedModel, observation: Any, class_name: str, samples: int = 4000) -> torch.Tensor:
    """The trained code of ``class_name`` whose SDF is closest to the observation's (clamped at 0.1)."""
    rows = model.codes_of_class(class_name)
    if not rows:
        raise ValueError(f"class {class_name!r} has no trained codes")
    cond = model.condition(class_name)
    points = torch.as_tensor(observation.points, dtype=torch.float32)
    sdf = torch.as_tensor(observation.sdf, dtype=torch.float32)
    pick = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[:samples]
    p, target = points[pick], sdf[pick].clamp(-0.1, 0.1)
    with torch.no_grad():
        errors = [
            float((model.sdf_fn(model.shape_codes[r], cond)(p).reshape(-1).clamp(-0.1, 0.1) - target).abs().mean())
            for r in rows
        ]
    return model.shape_codes[rows[min(range(len(rows)), key=errors.__getitem__)]].clone()


def patch_fit(start: str) -> None:
    """Patch the fit's code start (``nearest``) or its latent (``free-condition``) for this process."""
    fit_module = importlib.import_module("core.tto.fit")
    plain_fit: Callable[..., Any] = fit_module.fit
    plain_init: Callable[..., torch.Tensor] = fit_module._init_code
    plan: dict[str, Any] = {}

    def init_code(dim: int, std: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        if dim == plan.get("code_size"):  # the shape code (the colour code has another size)
            if start == "nearest":
                return plan["start"].to(device).clone().requires_grad_(True)
            extra = plan["condition_size"]
            return (torch.randn(dim + extra, generator=gen) * std).to(device).requires_grad_(True)
        return plain_init(dim, std, gen, device)

    def fit(model, observation, config=None, callback=None, every=10, cancel=None, class_name=None, text=None, seed=0):
        plan.clear()
        cond = model.condition(class_name, text)
        if start == "nearest" and class_name is not None:
            plan.update(code_size=model.code_size, start=nearest_trained_code(model, observation, class_name))
        elif start == "free-condition" and cond is not None:
            plan.update(code_size=model.code_size, condition_size=cond.numel())
        return plain_fit(model, observation, config, callback, every, cancel, class_name, text, seed)

    if start == "free-condition":
        plain_latent = TrainedModel.latent

        def latent(self: TrainedModel, shape_code: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
            code = shape_code.to(self.device, torch.float32)
            if condition is not None and code.numel() == self.code_size + condition.numel():
                moved = condition.to(self.device, torch.float32) + code[self.code_size :]
                return torch.cat([code[: self.code_size], moved])
            return plain_latent(self, shape_code, condition)

        TrainedModel.latent = latent  # type: ignore[method-assign]
    fit_module._init_code = init_code
    fit_module.fit = fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", choices=STARTS, required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER, help="main.py arguments, e.g. evaluate --ckpt ...")
    args = ap.parse_args()
    if not args.command or args.command[0] != "evaluate":
        ap.error("give main.py's evaluate command after --start, e.g. evaluate --ckpt resources/real/model.pt ...")
    patch_fit(args.start)
    sys.argv = [str(ROOT / "main.py"), *args.command]
    runpy.run_path(str(ROOT / "main.py"), run_name="__main__")


if __name__ == "__main__":
    main()
