"""One optimisation step of the auto-decoder: the batch it draws, its loss, and the schedules it follows.

Loss per step over the global batch of B shapes x S samples (DeepSDF's ``train_deep_sdf.py``)::

    L = sum |clamp(f(z_i, x), d) - clamp(s, d)| / (B S)                    clamped L1, d = 0.1
      + colour_weight * sum_{|s| < band} |c(z_i, w_i, x) - rgb| / #near   colour, near the surface only
      + code_reg * min(1, epoch / warmup) * mean_i (|z_i| + |w_i|)          code regulariser

with f evaluated at ``z_i + n_i``, ``n_i ~ N(0, code_noise^2 I)`` drawn per shape and step when
``train.code_noise`` > 0 (the regulariser sees the code itself).

Recipe switches (``train.*``, all off by default): ``curriculum`` replaces the clamped L1 by
Curriculum DeepSDF's :func:`core.model.losses.curriculum_l1` with (eps, lambda) of the epoch's stage;
``surface_weight`` / ``normal_weight`` add ``mean |f(x_s)|`` and ``mean(1 - cos(grad f(x_s), n_s))``
on surface points drawn per step; ``lr_schedule`` picks step, cosine or onecycle rates
(:func:`learning_rates`).

Everything here is a function of (config, epoch, shapes): each shape's draw uses
``default_rng([seed, epoch, shape])`` and the rates and stages depend on the epoch only, so a resumed
run repeats the uninterrupted one exactly. Distributed, each rank's losses are normalised by the
global counts and multiplied by the world size, so DDP's gradient average equals the single-process
gradient. The loop around the steps is :class:`core.training.trainer.Trainer`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist

from core.data.training_set import SdfDataSet
from core.model.losses import curriculum_l1
from core.training.config import CURRICULUM_EPS, CURRICULUM_LAMBDA, RunConfig, TrainConfig

__all__ = ["learning_rates", "curriculum_stage", "surface_samples_per_shape", "all_sum"]


def _schedule_factor(t: TrainConfig, epoch: int) -> float:
    """The rate of ``epoch`` (0-based) as a fraction of the start rate; E = ``t.epochs``, m = ``lr_min_factor``.

    step: ``lr_factor ** (epoch // lr_interval)``; cosine: ``m + (1 - m) (1 + cos(pi p)) / 2`` with
    ``p = epoch / (E - 1)`` (start rate in the first epoch, m in the last); onecycle: warm-up
    ``(epoch + 1) / (W + 1)`` over the first ``W = ceil(0.05 E)`` epochs, then the cosine with
    ``p = (epoch - W) / (E - 1 - W)``.
    """
    if t.lr_schedule == "step":
        return t.lr_factor ** (epoch // max(1, t.lr_interval))
    start, last = 0, t.epochs - 1
    if t.lr_schedule == "onecycle":
        start = math.ceil(0.05 * t.epochs)
        if epoch < start:
            return (epoch + 1) / (start + 1)
    p = min(1.0, (epoch - start) / max(1, last - start))
    return t.lr_min_factor + (1.0 - t.lr_min_factor) * 0.5 * (1.0 + math.cos(math.pi * p))


def learning_rates(config: RunConfig, epoch: int) -> tuple[float, float]:
    """(network, codes) learning rates of ``epoch`` (0-based): a pure function of the epoch and the
    config, so a resumed run sets the very rates the straight run had (see :func:`_schedule_factor`)."""
    t = config.train
    factor = _schedule_factor(t, epoch)
    return t.lr_decoder * factor, t.lr_codes * factor


def curriculum_stage(config: RunConfig, epoch: int) -> tuple[float, float]:
    """Curriculum DeepSDF's (eps, lambda) for ``epoch`` (0-based): the stages from
    ``train.curriculum_first_stage`` to the last (four by default) share ``train.epochs`` equally."""
    first = config.train.curriculum_first_stage
    stages = len(CURRICULUM_EPS) - first
    stage = first + min(stages - 1, epoch * stages // max(1, config.train.epochs))
    return CURRICULUM_EPS[stage], CURRICULUM_LAMBDA[stage]


def surface_samples_per_shape(config: RunConfig) -> int:
    """Surface points drawn per shape per step when surface supervision is on (else 0)."""
    t = config.train
    return max(1, t.samples_per_shape // 4) if (t.surface_weight > 0 or t.normal_weight > 0) else 0


def _batch_tensors(data: SdfDataSet, shapes: list[int], config: RunConfig, epoch: int, device: torch.device):
    t = config.train
    draws = [data.draw(i, t.samples_per_shape, np.random.default_rng([t.seed, epoch, i])) for i in shapes]
    n = t.samples_per_shape

    def cat(key: str, dtype=torch.float32) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([d[key] for d in draws])).to(device=device, dtype=dtype)

    batch = {
        "xyz": cat("xyz"),
        "sdf": cat("sdf"),
        "rgb": cat("rgb"),
        "view": cat("view"),
        "has_rgb": cat("has_rgb", torch.bool),
        "shape": torch.tensor(shapes, dtype=torch.long, device=device),
        "class": torch.tensor([data.class_index(i) for i in shapes], dtype=torch.long, device=device),
        "row": torch.arange(len(shapes), device=device).repeat_interleave(n),
    }
    if t.code_noise > 0:  # own generators ([seed, epoch, shape, 2]): the draws above stay as without it
        noise = [
            np.random.default_rng([t.seed, epoch, i, 2]).normal(0.0, t.code_noise, config.model.code_size)
            for i in shapes
        ]
        batch["code_noise"] = torch.from_numpy(np.stack(noise)).to(device=device, dtype=torch.float32)
    m = surface_samples_per_shape(config)
    if m:  # own generators ([seed, epoch, shape, 1]): the SDF sample draws above stay as without them
        surf = [data.draw_surface(i, m, np.random.default_rng([t.seed, epoch, i, 1])) for i in shapes]
        batch["surface_xyz"] = torch.from_numpy(np.concatenate([d["xyz"] for d in surf])).to(device)
        batch["surface_normal"] = torch.from_numpy(np.concatenate([d["normal"] for d in surf])).to(device)
        batch["surface_row"] = torch.arange(len(shapes), device=device).repeat_interleave(m)
        # the true surface lies at -offset in a dilated field (core.data.open_mesh_sdf): that is its target
        batch["surface_level"] = torch.tensor(-data.surface_offset, device=device)
    return batch


def all_sum(value: float, world: int, device: torch.device) -> float:
    """``value`` summed over the ranks of a distributed run (itself in a single process)."""
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def _step(
    module, net, batch, config: RunConfig, epoch: int, global_shapes: int, world: int, device
) -> dict[str, torch.Tensor]:
    """Losses of this rank's part of one global batch, scaled so DDP's mean is the global loss."""
    t = config.train
    use_colour = module.config.colour
    xyz, row = batch["xyz"], batch["row"]
    view = batch["view"] if module.config.view_dependent else None
    on_surface = batch.get("surface_xyz")
    if on_surface is not None:  # one forward pass over samples and surface points (one DDP forward per step)
        on_surface = on_surface.detach().requires_grad_(True)
        n = len(xyz)
        xyz, row = torch.cat([xyz, on_surface]), torch.cat([row, batch["surface_row"]])
        view = None if view is None else torch.cat([view, torch.zeros_like(on_surface)])
    sdf, rgb = net(
        xyz,
        batch["shape"],
        batch["class"],
        row,
        view_dirs=view,
        with_colour=use_colour,
        code_noise=batch.get("code_noise"),
    )
    surface_terms: dict[str, torch.Tensor] = {}
    if on_surface is not None:
        surface_sdf, sdf = sdf[n:], sdf[:n]
        rgb = None if rgb is None else rgb[:n]
        surface_terms = _surface_terms(
            surface_sdf - batch["surface_level"],
            on_surface,
            batch["surface_normal"],
            config,
            global_shapes * surface_samples_per_shape(config),
            world,
        )
    global_samples = global_shapes * t.samples_per_shape
    gt = batch["sdf"]
    if t.curriculum:  # curriculum_l1 is a mean over this rank's samples; rescale to the global count
        eps, lam = curriculum_stage(config, epoch)
        sdf_loss = curriculum_l1(sdf, gt, t.clamp, eps, lam) * (len(gt) * world / global_samples)
    else:
        sdf_loss = (sdf.clamp(-t.clamp, t.clamp) - gt.clamp(-t.clamp, t.clamp)).abs().sum() / global_samples * world
    colour_loss = sdf_loss.new_zeros(())
    if use_colour and rgb is not None:
        near = batch["has_rgb"] & (gt.abs() < t.colour_band)
        count = all_sum(float(near.sum().item()), world, device)
        if count > 0:
            colour_loss = ((rgb - batch["rgb"]).abs().sum(dim=-1) * near).sum() / (3.0 * count) * world
        else:
            # No coloured sample near the surface in this global batch: a zero term that still
            # reaches the colour head, so every parameter takes part in the backward (DDP fails
            # on parameters without a gradient) and single- and multi-process steps stay equal.
            colour_loss = rgb.sum() * 0.0
    warm = min(1.0, epoch / max(1, t.code_reg_warmup)) if t.code_reg_warmup > 0 else 1.0
    norms = module.shape_codes(batch["shape"]).norm(dim=-1).sum()
    if module.colour_codes is not None:
        norms = norms + module.colour_codes(batch["shape"]).norm(dim=-1).sum()
    reg = t.code_reg * warm * norms / global_shapes * world
    total = sdf_loss + t.colour_weight * colour_loss + reg
    if "surface" in surface_terms:
        total = total + t.surface_weight * surface_terms["surface"]
    if "normal" in surface_terms:
        total = total + t.normal_weight * surface_terms["normal"]
    return {"loss": total, "sdf": sdf_loss, "colour": colour_loss, "reg": reg, **surface_terms}


def _surface_terms(
    surface_sdf: torch.Tensor,
    points: torch.Tensor,
    normals: torch.Tensor,
    config: RunConfig,
    global_count: int,
    world: int,
) -> dict[str, torch.Tensor]:
    """Surface supervision of the terms whose weight is on, normalised by the global point count.

    surface_sdf (M,) = f at ``points`` (M, 3), which require grad; normals (M, 3) unit. Returns
    ``surface`` = mean |f(x_s)| and ``normal`` = mean(1 - cos(grad_x f(x_s), n_s)); the gradient
    keeps its graph (``create_graph``) so the normal term trains the network and the codes.
    """
    t = config.train
    out: dict[str, torch.Tensor] = {}
    if t.surface_weight > 0:
        out["surface"] = surface_sdf.abs().sum() / global_count * world
    if t.normal_weight > 0:
        (grad,) = torch.autograd.grad(surface_sdf.sum(), points, create_graph=True)
        cos = torch.nn.functional.cosine_similarity(grad, normals, dim=1, eps=1e-8)
        out["normal"] = (1.0 - cos).sum() / global_count * world
    return out
