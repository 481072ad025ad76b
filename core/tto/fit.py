"""Fit a shape (and colour) code of a trained decoder to an observation.

:func:`iterate_fit` is the loop, as a generator of :class:`TTOProgress` so the viewer can draw
intermediate shapes and stop it; :func:`fit` runs it to the end and returns a
:class:`TTOResult`. The decoder is never changed: gradients are taken with
``torch.autograd.grad`` with respect to the codes only (no ``.grad`` is written on a
parameter and no ``requires_grad`` flag of the shared model is touched), and fine-tuning
works on a deep copy whose weights are returned in ``TTOResult.decoder_override``.

The model is a :class:`~core.model.trained_model.TrainedModel`, the one typed way to decode:
to mesh a result, ``model.with_decoder(result.decoder_override)`` and its ``sdf_fn`` /
``colour_fn`` under ``condition(result.class_name, result.text)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generator, Iterator, cast

import numpy as np
import torch

from core.model.colour_head import ColourHeadInputs, private_copy
from core.model.decoder import SdfColourDecoder
from core.model.decoder_field import compute_dtype
from core.model.trained_model import TrainedModel
from core.tto import losses as L
from core.tto.anchor import PriorAnchor, prior_anchor
from core.tto.config import TTOConfig, for_observation
from core.tto.observations import Observation
from core.utils.cancel import Cancel, is_cancelled
from core.utils.errors import ObservationError

__all__ = ["TTOProgress", "TTOResult", "iterate_fit", "fit", "resolve_condition"]


@dataclass
class TTOProgress:
    """One report of a running fit.

    Attributes
    ----------
    iteration : steps done so far in the current stage's numbering (fine-tuning continues
        after the code fit's last step).
    losses : ``total``, ``sdf``, ``reg`` and, where on, ``surface``, ``normal``, ``colour`` (floats).
    shape_code : (Ds,) float32 tensor on the CPU (a detached copy).
    colour_code : (Dc,) float32 tensor on the CPU, or None.
    lr : learning rate of that step.
    stage : ``"class:<name>"`` while a class is inferred, ``"code"``, ``"finetune"``, ``"colour"`` (the colour head).
    class_name : class the fit runs under (None without class conditioning).
    done : True on the last report; cancelled : True when it ended because of ``cancel``.
    result : the :class:`TTOResult`, set on the last report only.
    """

    iteration: int
    losses: dict[str, float]
    shape_code: torch.Tensor
    colour_code: torch.Tensor | None
    lr: float
    stage: str = "code"
    class_name: str | None = None
    done: bool = False
    cancelled: bool = False
    result: "TTOResult | None" = None


@dataclass
class TTOResult:
    """Outcome of a fit.

    Attributes
    ----------
    shape_code : (Ds,) float32 CPU tensor; colour_code : (Dc,) or None.
    class_name, text : the conditioning used (inferred class, or as given).
    history : one dict per step: ``iteration``, ``stage``, ``lr`` and the losses.
    seconds : wall time of the whole fit (class inference included).
    cancelled : stopped early by ``cancel`` (the codes are those reached so far).
    decoder_override : state dict of the fine-tuned decoder copy, or None.
    class_scores : class → SDF loss of its short fit, when the class was inferred.
    config : the :class:`TTOConfig` used.
    """

    shape_code: torch.Tensor
    colour_code: torch.Tensor | None
    class_name: str | None
    text: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False
    decoder_override: dict[str, torch.Tensor] | None = None
    class_scores: dict[str, float] | None = None
    config: TTOConfig | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def final_losses(self) -> dict[str, float]:
        """The last step's losses of the shape (code or fine-tuning); ``colour_head``: the colour stage's last
        colour loss when it ran (its steps change colours only)."""
        shape_rows = [row for row in self.history if row.get("stage") != "colour"]
        last = shape_rows[-1] if shape_rows else {}
        losses = {k: v for k, v in last.items() if k not in ("iteration", "stage", "lr")}
        if self.history and self.history[-1].get("stage") == "colour":
            losses["colour_head"] = self.history[-1]["colour"]
        return losses

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (codes as lists; the fine-tuned weights are not included)."""
        return {
            "shape_code": self.shape_code.tolist(),
            "colour_code": None if self.colour_code is None else self.colour_code.tolist(),
            "class_name": self.class_name,
            "text": self.text,
            "seconds": self.seconds,
            "cancelled": self.cancelled,
            "finetuned_decoder": self.decoder_override is not None,
            "class_scores": self.class_scores,
            "final_losses": self.final_losses,
            "config": None if self.config is None else self.config.to_dict(),
            "notes": self.notes,
        }


def resolve_condition(
    model: TrainedModel, class_name: str | None, text: str | None, source: str = "observation"
) -> torch.Tensor | None:
    """The model's conditioning vector (Dcond,) for a class / prompt; None without conditioning.

    Raises
    ------
    ObservationError
        ``class_name`` is not one of the model's classes (the message lists them).
    """
    names = list(model.class_names)
    if class_name is not None and names and class_name not in names:
        raise ObservationError(
            f"{source}: unknown class {class_name!r}; this model knows: {', '.join(names)}. "
            "Pick one of them with --class, or leave it out to have the class inferred."
        )
    return model.condition(class_name=class_name, text=text)


@dataclass
class _Side:
    """The samples on one side of the surface (outside or inside), on the batches' device."""

    points: torch.Tensor
    """(K, 3) float32."""
    sdf: torch.Tensor
    """(K,) float32."""
    rgb: torch.Tensor | None
    """(K, 3) float32, or None without colours."""
    near: torch.Tensor
    """(M,) long on the CPU: the rows within the near band."""


class _Batches:
    """Draws DeepSDF batches (half positive, half negative) from an observation, on a device."""

    def __init__(self, obs: Observation, device: torch.device, near_band: float) -> None:
        def t(x: np.ndarray | None) -> torch.Tensor | None:
            return None if x is None else torch.as_tensor(np.asarray(x, np.float32), device=device)

        def dense(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, np.float32), device=device)

        pos = obs.sdf >= 0
        self.sides: list[_Side] = []
        for mask in (pos, ~pos):
            idx = np.flatnonzero(mask)
            near = idx[np.abs(obs.sdf[idx]) < near_band]
            self.sides.append(
                _Side(
                    points=dense(obs.points[idx]),
                    sdf=dense(obs.sdf[idx]),
                    rgb=None if obs.colours is None else dense(obs.colours[idx]),
                    near=torch.as_tensor(np.searchsorted(idx, near), dtype=torch.long),
                )
            )
        self.surface_points = t(obs.surface_points) if obs.has_surface else None
        self.surface_normals = t(obs.surface_normals) if obs.has_normals else None
        self.device = device
        self.errors: list[torch.Tensor] | None = None
        """Per side, (K,) float32 on the CPU: each sample's last measured clamped error, the weights of the
        hard draws (``TTOConfig.hard_draws``); None until :meth:`set_errors` first measures them."""

    def set_errors(self, errors: list[torch.Tensor]) -> None:
        """Every sample's error, one (K,) tensor per side (outside, inside)."""
        self.errors = [e.detach().float().cpu().clamp_min(_ERROR_FLOOR) for e in errors]

    def record_errors(self, rows: list[torch.Tensor], errors: torch.Tensor) -> None:
        """The errors (n,) of a batch drawn by :meth:`draw_indexed` (its ``rows``), once errors are kept."""
        if self.errors is None:
            return
        parts = torch.split(errors.detach().float().cpu().clamp_min(_ERROR_FLOOR), [len(r) for r in rows])
        for kept, idx, err in zip(self.errors, rows, parts, strict=True):
            kept[idx.cpu()] = err

    def near_colours(self, band: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every sample within ``band`` of the surface, both sides, with its colour: (K, 3) points and (K, 3)
        RGB in [0, 1] (None without colours)."""
        picks = [(side, torch.abs(side.sdf) < band) for side in self.sides]
        points = torch.cat([side.points[mask] for side, mask in picks])
        if any(side.rgb is None for side, _ in picks):
            return points, None
        return points, torch.cat([side.rgb[mask] for side, mask in picks if side.rgb is not None])

    def draw(
        self, n: int, near_fraction: float, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``n`` samples, half outside and half inside, ``near_fraction`` of each from the near band.

        Points (n, 3), SDF (n,) and RGB (n, 3) or None, on the batches' device.
        """
        points, sdf, rgb, _ = self.draw_indexed(n, near_fraction, gen)
        return points, sdf, rgb

    def draw_indexed(
        self, n: int, near_fraction: float, gen: torch.Generator, hard_share: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        """:meth:`draw`, with the drawn rows of each side (outside, inside) as a fourth item; ``hard_share`` of
        each side's half drawn in proportion to the kept errors (none before they are measured)."""
        half = max(1, n // 2)
        pts: list[torch.Tensor] = []
        sdf: list[torch.Tensor] = []
        rgb: list[torch.Tensor] = []
        rows: list[torch.Tensor] = []
        for s, side in enumerate(self.sides):
            size = len(side.sdf)
            n_hard = int(round(half * hard_share)) if self.errors is not None else 0
            n_near = int(round((half - n_hard) * near_fraction)) if len(side.near) else 0
            idx = torch.randint(0, size, (half - n_hard - n_near,), generator=gen)
            if n_near:
                pick = torch.randint(0, len(side.near), (n_near,), generator=gen)
                idx = torch.cat([idx, side.near[pick]])
            if n_hard and self.errors is not None:
                idx = torch.cat([idx, torch.multinomial(self.errors[s], n_hard, replacement=True, generator=gen)])
            idx = idx.to(self.device)
            rows.append(idx)
            pts.append(side.points.index_select(0, idx))  # index_select: several times faster than [idx] on rows
            sdf.append(side.sdf.index_select(0, idx))
            if side.rgb is not None:
                rgb.append(side.rgb.index_select(0, idx))
        return torch.cat(pts), torch.cat(sdf), (torch.cat(rgb) if rgb else None), rows

    def draw_surface(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.surface_points is None:
            return None, None
        idx = torch.randint(0, len(self.surface_points), (n,), generator=gen).to(self.device)
        normals = None if self.surface_normals is None else self.surface_normals[idx]
        return self.surface_points[idx], normals


_ERROR_FLOOR = 1e-6
"""The least weight a sample keeps in the hard draws (a sample fitted exactly may still be drawn; all zero
would be no distribution)."""

PREFIX_CACHE_BYTES = 768 * 2**20
"""The most memory the fine-tuning's frozen-prefix cache may take (else every step runs the whole trunk)."""


class _PrefixCache:
    """The frozen trunk prefix of every sample a fine-tuning step can draw, computed once.

    Fine-tuning trains the decoder's last layers with the codes fixed, so the output of the layers
    before the first trained one depends on the sample alone: each step gathers it instead of
    recomputing it (the same numbers, in the step's precision), and runs only the trained layers.
    """

    def __init__(
        self,
        decoder: SdfColourDecoder,
        start: int,
        latent: torch.Tensor,
        batches: _Batches,
        autocast: torch.autocast,
        chunk: int = 32768,
    ) -> None:
        self.decoder, self.start, self.latent = decoder, start, latent
        self.features: list[torch.Tensor] = []
        with torch.no_grad(), autocast:
            for side in batches.sides:
                pts = side.points
                self.features.append(
                    torch.cat(
                        [decoder.trunk_prefix(pts[i : i + chunk], latent, start) for i in range(0, len(pts), chunk)]
                    )
                )

    @staticmethod
    def fits(decoder: SdfColourDecoder, start: int, batches: _Batches, dtype: torch.dtype) -> bool:
        width = cast(torch.nn.Linear, decoder.layers[start - 1]).out_features
        count = sum(len(side.points) for side in batches.sides)
        return count * width * torch.tensor([], dtype=dtype).element_size() <= PREFIX_CACHE_BYTES

    def side_sdf(self, side: int, points: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """SDF of the samples ``start:stop`` of one side (``points`` are those samples)."""
        return self.decoder.sdf_from(self.start, self.features[side][start:stop], points, self.latent)

    def sdf(self, points: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
        """(N,) SDF of the drawn samples (``rows`` per side, as :meth:`_Batches.draw_indexed` gives)."""
        x = torch.cat([features.index_select(0, idx) for features, idx in zip(self.features, rows, strict=True)])
        return self.decoder.sdf_from(self.start, x, points, self.latent)


@dataclass
class _FitContext:
    """What one stage of a fit works with (a class trial, the code fit, fine-tuning).

    The stages differ by a few fields only, so each is a :func:`dataclasses.replace` of the
    fit's context: class trials use a short config, their own generator, no colour and no
    history; fine-tuning uses the decoder copy as ``model``.
    """

    model: TrainedModel
    """Decodes (fine-tuning: the private decoder copy)."""
    surface_offset: float
    """How far outside the observed surface the zero level set of the samples lies (the surface term's
    target is minus this): the model's offset, or a dilated observation's own for an undilated model."""
    batches: _Batches
    """The observation's samples, on ``model.device``."""
    config: TTOConfig
    condition: torch.Tensor | None
    """(Dcond,) condition vector of ``class_name`` / the prompt; None without conditioning."""
    gen: torch.Generator
    """Seeds the code initialisation and the sample draws of this stage."""
    fit_colour: bool
    """Fit a colour code too (the observation and the model have colour, ``config.fit_colour``)."""
    cancel: Cancel
    every: int
    """Report every ``every`` steps."""
    seed: int
    class_name: str | None = None
    history: list[dict[str, Any]] | None = None
    """Where each step's losses go (None: not recorded)."""
    prefix: _PrefixCache | None = None
    """Fine-tuning without colour: the frozen trunk prefix of every sample (see :class:`_PrefixCache`)."""

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def autocast(self) -> torch.autocast:
        """The precision of this stage's decoder calls (``config.precision``; see :class:`TTOConfig`)."""
        dtype = compute_dtype(self.device, self.config.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32)


def _step_losses(
    ctx: _FitContext, iteration: int, shape_code: torch.Tensor, colour_code: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """All loss terms of one step (tensors; ``total`` is what is minimised)."""
    config, decode, fit_colour = ctx.config, ctx.model.decode, ctx.fit_colour
    points, gt, gt_rgb, drawn = ctx.batches.draw_indexed(
        L.samples_at(config, iteration), L.near_fraction_at(config, iteration), ctx.gen, L.hard_share(config)
    )
    # Colours are compared near the surface only: the colour head runs on those samples alone.
    near = (torch.abs(gt) < config.colour_band) if (fit_colour and gt_rgb is not None) else None
    rows = None if near is None else near.nonzero()[:, 0]
    with ctx.autocast:
        if ctx.prefix is not None and not fit_colour:
            pred, rgb = ctx.prefix.sdf(points, drawn), None
        else:
            pred, rgb = decode(points, shape_code, colour_code if fit_colour else None, ctx.condition, colour_rows=rows)
    pred, rgb = pred.float(), (None if rgb is None else rgb.float())
    clamp = L.clamp_at(config, iteration)
    if config.curriculum:
        eps, lam = L.curriculum_schedule(config, iteration)
        sdf_loss = L.curriculum_l1(pred, gt, clamp, eps, lam)
    else:
        sdf_loss = L.clamped_l1(pred, gt, clamp)
    if ctx.batches.errors is not None:
        ctx.batches.record_errors(drawn, L.clamped_errors(pred.detach(), gt, config.clamp))
    # Plain DeepSDF loss at the base clamp, whatever is minimised: comparable across loss sets.
    out = {"sdf": sdf_loss, "l1": L.clamped_l1(pred.detach(), gt, config.clamp)}
    total = sdf_loss
    if config.code_reg:
        reg = config.code_reg * L.code_prior(shape_code)
        if fit_colour and colour_code is not None:
            reg = reg + config.code_reg * L.code_prior(colour_code)
        out["reg"] = reg
        total = total + reg
    if near is not None and rgb is not None and gt_rgb is not None and bool(near.any()):  # near implies gt_rgb
        out["colour"] = L.colour_l1(rgb, gt_rgb[near])
        total = total + config.colour_weight * out["colour"]
    if config.surface_term or config.normal_term:
        surf, normals = ctx.batches.draw_surface(config.n_surface_samples, ctx.gen)
        if surf is not None:
            want_normals = config.normal_term and normals is not None
            if want_normals:
                surf = surf.detach().requires_grad_(True)
            with ctx.autocast:
                f_surf, _ = decode(surf, shape_code, None, ctx.condition)
            f_surf = f_surf.float()
            if config.surface_term:  # the true surface lies at -surface_offset of a dilated field
                out["surface"] = L.surface_loss(f_surf + ctx.surface_offset)
                total = total + config.surface_weight * out["surface"]
            if want_normals and normals is not None:  # want_normals implies normals; the test narrows the type
                (grad,) = torch.autograd.grad(f_surf.sum(), surf, create_graph=True)
                out["normal"] = L.normal_loss(grad, normals)
                total = total + config.normal_weight * out["normal"]
    out["total"] = total
    return out


@torch.no_grad()
def _measure_errors(ctx: _FitContext, code: torch.Tensor, chunk: int = 32768) -> None:
    """Every sample's clamped error under the stage's decoder and ``code``, kept for the hard draws
    (``TTOConfig.hard_draws``); through the frozen-prefix cache when the stage has one."""
    code, clamp = code.detach(), ctx.config.clamp
    errors = []
    for s, side in enumerate(ctx.batches.sides):
        parts = []
        for i in range(0, len(side.points), chunk):
            points = side.points[i : i + chunk]
            with ctx.autocast:
                if ctx.prefix is not None:
                    pred = ctx.prefix.side_sdf(s, points, i, i + chunk)
                else:
                    pred = ctx.model.decode(points, code, None, ctx.condition)[0]
            parts.append(L.clamped_errors(pred.float(), side.sdf[i : i + chunk], clamp))
        errors.append(torch.cat(parts) if parts else side.sdf.new_zeros(0))
    ctx.batches.set_errors(errors)


def _floats(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items()}


def _init_code(dim: int, std: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.randn(dim, generator=gen) * std).to(device).requires_grad_(True)


def _run_code_fit(ctx: _FitContext, stage: str) -> Iterator[TTOProgress]:
    """Adam on the code(s) with DeepSDF's schedule; yields progress; the last item has ``done``."""
    config, model, device = ctx.config, ctx.model, ctx.device
    shape_code = _init_code(model.code_size, config.code_std, ctx.gen, device)
    colour_code = None
    params = [shape_code]
    if model.has_colour and model.colour_code_size:
        if ctx.fit_colour:
            colour_code = _init_code(model.colour_code_size, config.code_std, ctx.gen, device)
            params.append(colour_code)
        else:
            colour_code = torch.zeros(model.colour_code_size, device=device)  # the prior's mean: no colour observed
    optimizer = torch.optim.Adam(params, lr=config.lr)
    terms: dict[str, float] = {}
    lr = config.lr
    cancelled = False
    it = 0
    for it in range(config.iterations):
        if is_cancelled(ctx.cancel):
            cancelled = True
            break
        lr = L.learning_rate(config, it)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if stage == "code" and config.hard_draws and it and it % config.hard_refresh_every == 0:
            _measure_errors(ctx, shape_code)
        out = _step_losses(ctx, it, shape_code, colour_code)
        grads = torch.autograd.grad(out["total"], params, allow_unused=True)
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.zeros_like(p) if g is None else g
        optimizer.step()
        terms = _floats(out)
        if ctx.history is not None:
            ctx.history.append({"iteration": it + 1, "stage": stage, "lr": lr, **terms})
        if (it + 1) % ctx.every == 0 and it + 1 < config.iterations:
            yield TTOProgress(
                it + 1,
                terms,
                shape_code.detach().cpu().clone(),
                None if colour_code is None else colour_code.detach().cpu().clone(),
                lr,
                stage,
                ctx.class_name,
            )
    else:
        it = config.iterations
    yield TTOProgress(
        it if cancelled else config.iterations,
        terms,
        shape_code.detach().cpu().clone(),
        None if colour_code is None else colour_code.detach().cpu().clone(),
        lr,
        stage,
        ctx.class_name,
        done=True,
        cancelled=cancelled,
    )


@torch.no_grad()
def _score(ctx: _FitContext, code: torch.Tensor) -> float:
    """SDF loss (clamp ``config.clamp``) on one fixed batch: the same samples for every class."""
    gen = torch.Generator().manual_seed(ctx.seed + 7919)
    points, gt, _ = ctx.batches.draw(max(ctx.config.n_samples, 8000), 0.0, gen)
    pred, _ = ctx.model.decode(points, code.to(points.device), None, ctx.condition)
    return float(L.clamped_l1(pred, gt, ctx.config.clamp))


def _finetune_layers(decoder: torch.nn.Module, k: int, loss_fn: Callable[[], torch.Tensor]) -> list[torch.nn.Module]:
    """The last ``k`` linear layers (module order) that the SDF loss reaches."""
    linears = [m for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    # Leaf parameters, not ``m.weight``: under weight normalisation ``weight`` is recomputed
    # from (g, v) on every access, so a tensor taken before the loss is not in its graph.
    params = [list(m.parameters()) for m in linears]
    flat = [p for group in params for p in group]
    grads = iter(torch.autograd.grad(loss_fn(), flat, allow_unused=True))
    reached: list[torch.nn.Module] = []
    for m, group in zip(linears, params, strict=True):
        gs = [next(grads) for _ in group]
        if any(g is not None and bool(torch.any(g != 0)) for g in gs):
            reached.append(m)
    return reached[-max(1, k) :]


def _infer_class(
    ctx: _FitContext, observation: Observation
) -> Generator[TTOProgress, None, tuple[dict[str, float], bool]]:
    """Infer the class by the strategy of ``config.class_strategy``, yielding progress.

    Returns (with ``yield from``) class -> SDF loss of its short fit (the classes scored so far when
    cancelled) and whether it was cancelled.
    """
    if ctx.config.class_strategy == "sequential":
        return (yield from _infer_class_sequential(ctx, observation))
    return (yield from _infer_class_batched(ctx, observation))


def _infer_class_sequential(
    ctx: _FitContext, observation: Observation
) -> Generator[TTOProgress, None, tuple[dict[str, float], bool]]:
    """The reference: a full short code fit under every class, one after another."""
    short = replace(
        ctx.config,
        iterations=ctx.config.class_iterations,
        lr=ctx.config.class_lr,
        lr_decay_every=None,
        surface_term=False,
        normal_term=False,
    )
    scores: dict[str, float] = {}
    for name in ctx.model.class_names:
        trial = replace(
            ctx,
            config=short,
            condition=resolve_condition(ctx.model, name, None, observation.source),
            gen=torch.Generator().manual_seed(ctx.seed),
            fit_colour=False,
            class_name=name,
            history=None,
        )
        last = None
        for progress in _run_code_fit(trial, f"class:{name}"):
            last = progress
            if not progress.done:
                yield progress
        if last is None or last.cancelled:
            return scores, True
        # Scored on the full config's batch size and clamp (the short config keeps both).
        scores[name] = _score(replace(trial, config=ctx.config), last.shape_code)
    return scores, False


def _infer_class_batched(
    ctx: _FitContext, observation: Observation
) -> Generator[TTOProgress, None, tuple[dict[str, float], bool]]:
    """Short code fits under every class at once: one batched forward per step.

    Every class starts from the same code (drawn from the prior, as the sequential strategy draws it)
    and sees the same ``class_samples`` points each step; the decoder's per-shape block layout folds
    each class's latent once and broadcasts it over its block. After ``class_iterations`` steps (the
    learning rate decays at half, as in DeepSDF) every class is scored on one fixed batch, as the
    sequential strategy scores. On 21 held-out real shapes it picked the class of 15 (the sequential
    strategy: 14) in a twentieth of the time (benchmarks/bench_fit.py); the samples per step matter
    little (250: 13, 500: 15, 1000: 14), the steps much (60 steps: 10); starting each class from its
    mean training code or dropping the worse half after each quarter (successive halving) did worse (12, 10).
    On every held-out shape of the real set (47, ``studies.class_inference_study``) it is right for 35; none of
    these moved that (2026-12-05): starting each class from its best-fitting trained code (34), 250 steps of 200
    points (34), scoring near the surface or with a smaller clamp (29-35), adding the fitted code's distance to
    its class's trained codes (33-35), or a surface-descriptor classifier breaking near-ties (35; alone: 33).
    """
    model, config, device = ctx.model, ctx.config, ctx.device
    names = list(model.class_names)
    class_conditions: list[torch.Tensor] = []
    for name in names:
        condition = resolve_condition(model, name, None, observation.source)
        assert condition is not None  # classes are inferred only under conditioning (iterate_fit's probe)
        class_conditions.append(condition.to(device))
    conditions = torch.stack(class_conditions)
    schedule = replace(
        config,
        iterations=config.class_iterations,
        lr=config.class_lr,
        lr_decay_every=None,
        surface_term=False,
        normal_term=False,
        curriculum=False,
    )
    gen = torch.Generator().manual_seed(ctx.seed)
    start = torch.randn(model.code_size, generator=gen) * config.code_std
    codes = start.to(device).expand(len(names), -1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([codes], lr=schedule.lr)
    trial = replace(ctx, config=schedule, fit_colour=False, history=None)
    for it in range(schedule.iterations):
        if is_cancelled(ctx.cancel):
            return {}, True
        lr = L.learning_rate(schedule, it)
        for group in optimizer.param_groups:
            group["lr"] = lr
        points, gt, _ = ctx.batches.draw(config.class_samples, L.near_fraction_at(schedule, it), gen)
        per_class = _class_losses(trial, points, gt, torch.cat([codes, conditions], dim=1), L.clamp_at(schedule, it))
        reg = config.code_reg * (codes**2).mean(dim=1) if config.code_reg else 0.0
        optimizer.zero_grad(set_to_none=True)
        (per_class + reg).sum().backward()
        optimizer.step()
        if (it + 1) % ctx.every == 0 and it + 1 < schedule.iterations:
            best = int(per_class.detach().argmin())
            yield TTOProgress(
                it + 1,
                {"sdf": float(per_class.detach()[best])},
                codes[best].detach().cpu().clone(),
                None,
                lr,
                f"class:{names[best]}",
                names[best],
            )
    score = _class_scores(trial, codes, conditions)
    return dict(zip(names, score.tolist(), strict=True)), False


def _class_losses(
    ctx: _FitContext, points: torch.Tensor, gt: torch.Tensor, latent: torch.Tensor, clamp: float
) -> torch.Tensor:
    """(B,) clamped L1 of B latents on the same (n, 3) points: one forward over B blocks of n."""
    b, n = latent.shape[0], points.shape[0]
    row = torch.arange(b, device=points.device).repeat_interleave(n)
    with ctx.autocast:
        pred, _ = ctx.model.decoder(points.repeat(b, 1), latent, None, with_colour=False, latent_row=row)
    pred = pred.float().view(b, n)
    return L.clamped_errors(pred, gt[None], clamp).mean(dim=1)


@torch.no_grad()
def _class_scores(ctx: _FitContext, codes: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
    """(C,) SDF loss (clamp ``config.clamp``) of each class's code on one fixed batch (as :func:`_score`)."""
    gen = torch.Generator().manual_seed(ctx.seed + 7919)
    points, gt, _ = ctx.batches.draw(max(ctx.config.n_samples, 8000), 0.0, gen)
    return _class_losses(ctx, points, gt, torch.cat([codes, conditions], dim=1), ctx.config.clamp).cpu()


def iterate_fit(
    model: TrainedModel,
    observation: Observation,
    config: TTOConfig | None = None,
    class_name: str | None = None,
    text: str | None = None,
    seed: int = 0,
    cancel: Cancel = None,
    every: int = 10,
) -> Iterator[TTOProgress]:
    """Fit codes to ``observation``; yield progress every ``every`` steps and a final report.

    Parameters
    ----------
    model : the trained decoder, codes and classes (never changed).
    observation : unit-sphere-frame samples (:mod:`core.tto.observations`).
    class_name : the class to condition on; None infers it by short fits under every class
        (``config.class_strategy``: all classes in one batched fit by default) keeping the lowest SDF loss.
        Ignored by models without conditioning.
    text : a free text prompt (text-conditioned models).
    seed : seeds the code initialisation and the sample draws (``torch.Generator``).
    cancel : ``threading.Event`` or a callable returning True to stop; checked before every step.

    Yields
    ------
    TTOProgress; the last one has ``done=True`` and ``result`` set.

    Raises
    ------
    ObservationError
        Unknown class name, or an observation that fails validation.
    """
    start = time.perf_counter()
    # automatic settings chosen by what was observed (a partial scan's fine-tuning keeps the prior's hidden side)
    config = for_observation(config or TTOConfig(), observation.kind)
    # the samples measured to the model's own surface: a dilated model's zero level set lies its
    # surface_offset outside the true surface (core.data.open_mesh_sdf), and so do its targets
    observation = observation.validate().for_surface_offset(model.surface_offset)
    notes: list[str] = []
    if observation.surface_offset > model.surface_offset:
        notes.append(
            f"the observation's samples are dilated by {observation.surface_offset:g}, this model's "
            f"surfaces by {model.surface_offset:g}: its surface comes out that much further out"
        )
    if config.hard_draws and observation.kind == "scan":
        notes.append(
            "hard draws on a single-view scan: from the front they gave up more of the hidden side than the "
            "uniform draws (docs/experiments/2026-12-05-hard-draws.md); turn them off for partial input"
        )
    if (config.surface_term or config.normal_term) and not observation.has_surface:
        notes.append("surface / normal terms skipped: the observation has no surface points")
    if config.normal_term and observation.has_surface and not observation.has_normals:
        notes.append("normal term skipped: the observation has no surface normals")
    elif config.normal_term and not config.finetune_last_layers:
        notes.append(
            "normal term: acts on fine-tuned layers only (a ReLU decoder's normals do not depend "
            "on the code); turn on finetune_last_layers for it to matter"
        )
    history: list[dict[str, Any]] = []
    ctx = _FitContext(
        model=model,
        surface_offset=observation.surface_offset,
        batches=_Batches(observation, model.device, config.near_band),
        config=config,
        condition=None,
        gen=torch.Generator().manual_seed(int(seed)),
        fit_colour=bool(config.fit_colour and observation.has_colour and model.has_colour),
        cancel=cancel,
        every=max(1, int(every)),
        seed=int(seed),
        history=history,
    )

    decoder = model.decoder
    was_training = decoder.training
    decoder.eval()
    class_scores: dict[str, float] | None = None
    cancelled = False
    try:
        names = list(model.class_names)
        probe = resolve_condition(model, class_name, text, observation.source)
        if class_name is None and text is None and probe is not None and len(names) > 1:
            class_scores, cancelled = yield from _infer_class(ctx, observation)
            if not cancelled:
                class_name = min(class_scores, key=class_scores.__getitem__)
        elif class_name is None and text is None and probe is not None and len(names) == 1:
            class_name = names[0]

        condition = resolve_condition(model, class_name, text, observation.source) if not cancelled else None
        ctx = replace(ctx, condition=condition, class_name=class_name)
        last = None
        if not cancelled:
            for progress in _run_code_fit(ctx, "code"):
                last = progress
                if not progress.done:
                    yield progress
            assert last is not None  # _run_code_fit always ends with a done report
            cancelled = last.cancelled
        shape_code = last.shape_code if last else torch.zeros(model.code_size)
        colour_code = last.colour_code if last else None
        override: dict[str, torch.Tensor] | None = None
        if config.finetune_last_layers and not cancelled:
            override, cancelled = yield from _finetune(ctx, shape_code, colour_code)
        if config.finetune_last_layers and config.finetune_colour and ctx.fit_colour and not cancelled:
            override, cancelled = yield from _finetune_colour(ctx, override, shape_code, colour_code)
        result = TTOResult(
            shape_code=shape_code,
            colour_code=colour_code,
            class_name=class_name,
            text=text,
            history=history,
            seconds=time.perf_counter() - start,
            cancelled=cancelled,
            decoder_override=override,
            class_scores=class_scores,
            config=config,
            notes=notes,
        )
        final = history[-1] if history else {}
        yield TTOProgress(
            int(final.get("iteration", 0)),
            {k: v for k, v in final.items() if k not in ("iteration", "stage", "lr")},
            shape_code,
            colour_code,
            float(final.get("lr", config.lr)),
            "done",
            class_name,
            done=True,
            cancelled=cancelled,
            result=result,
        )
    finally:
        decoder.train(was_training)


def _finetune(
    ctx: _FitContext, shape_code: torch.Tensor, colour_code: torch.Tensor | None
) -> Generator[TTOProgress, None, tuple[dict[str, torch.Tensor] | None, bool]]:
    """Fine-tune the last layer(s) of a private decoder copy with the codes fixed, yielding progress.

    Returns (with ``yield from``) the copy's state dict (None when nothing was trained) and whether it
    was cancelled.
    """
    config, model, class_name = ctx.config, ctx.model, ctx.class_name
    tuned = model.with_decoder({k: v.detach().clone() for k, v in model.decoder.state_dict().items()})
    decoder = tuned.decoder
    for p in decoder.parameters():
        p.requires_grad_(False)
    code = shape_code.to(ctx.device)
    ccode = None if colour_code is None else colour_code.to(ctx.device)
    # The schedules as they stand at the end of the code fit. The colour loss is left out when it cannot
    # reach the trained layers (the colour head reads a detached trunk and is not among them): its
    # forward pass would cost a fifth of every step for nothing.
    last_it = config.iterations
    ft_colour = ctx.fit_colour and not model.config.colour_detach_trunk
    ft_ctx = replace(ctx, model=tuned, config=replace(config, iterations=max(1, last_it)), fit_colour=ft_colour)

    def probe_loss() -> torch.Tensor:
        for p in decoder.parameters():
            p.requires_grad_(True)
        gen_p = torch.Generator().manual_seed(0)
        pts, gt, _ = ctx.batches.draw(min(config.n_samples, 2048), 0.0, gen_p)
        pred, _ = tuned.decode(pts, code, None, ctx.condition)
        return L.clamped_l1(pred, gt, config.clamp)

    layers = _finetune_layers(decoder, config.finetune_layers, probe_loss)
    for p in decoder.parameters():
        p.requires_grad_(False)
    params = [p for m in layers for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    ft_ctx = replace(ft_ctx, prefix=_prefix_cache(ft_ctx, decoder, layers, code))
    if not params:
        return None, False
    anchor = _anchor_of(ctx, code)
    optimizer = torch.optim.Adam(params, lr=config.finetune_lr)
    cancelled = False
    terms: dict[str, float] = {}
    for step in range(config.finetune_iterations):
        if is_cancelled(ctx.cancel):
            cancelled = True
            break
        if config.hard_draws and step % config.hard_refresh_every == 0:
            _measure_errors(ft_ctx, code)
        out = _step_losses(ft_ctx, last_it, code, ccode)
        total = out["total"] - out.get("reg", 0.0)  # the codes are fixed here
        if anchor is not None:
            out["anchor"] = _anchor_loss(ft_ctx, anchor, code)
            total = total + (config.finetune_anchor_weight or 0.0) * out["anchor"]
        optimizer.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(total, params, allow_unused=True)
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.zeros_like(p) if g is None else g
        optimizer.step()
        terms = _floats(out)
        if ctx.history is not None:  # always set for the fit's own context (iterate_fit)
            ctx.history.append(
                {"iteration": last_it + step + 1, "stage": "finetune", "lr": config.finetune_lr, **terms}
            )
        if (step + 1) % ctx.every == 0 and step + 1 < config.finetune_iterations:
            yield TTOProgress(
                last_it + step + 1, terms, shape_code, colour_code, config.finetune_lr, "finetune", class_name
            )
    for p in decoder.parameters():
        p.requires_grad_(False)
    state = {k: v.detach().clone() for k, v in decoder.state_dict().items()}
    return state, cancelled


def _anchor_of(ctx: _FitContext, code: torch.Tensor) -> PriorAnchor | None:
    """The fine-tuning's prior anchor (None when off or when the observation leaves no point unobserved)."""
    config = ctx.config
    if not config.finetune_anchor_weight:  # 0 (off), or None before for_observation resolves it
        return None
    observed = torch.cat([side.points for side in ctx.batches.sides]).cpu().numpy()

    def frozen(points: torch.Tensor) -> torch.Tensor:
        with ctx.autocast:
            return ctx.model.decode(points, code, None, ctx.condition)[0]

    return prior_anchor(
        observed,
        frozen,
        config.finetune_anchor_gap,
        config.clamp,
        config.finetune_anchor_pool,
        ctx.device,
        seed=int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.gen)),
    )


def _anchor_loss(ctx: _FitContext, anchor: PriorAnchor, code: torch.Tensor) -> torch.Tensor:
    """The anchor term of one fine-tuning step: the tuned decoder against the frozen one at drawn anchor points."""
    points, target = anchor.draw(ctx.config.finetune_anchor_points, ctx.gen)
    with ctx.autocast:
        pred = ctx.model.decode(points, code, None, ctx.condition)[0]
    return anchor.loss(pred.float(), target, ctx.config.clamp)


def _finetune_colour(
    ctx: _FitContext,
    override: dict[str, torch.Tensor] | None,
    shape_code: torch.Tensor,
    colour_code: torch.Tensor | None,
) -> Generator[TTOProgress, None, tuple[dict[str, torch.Tensor] | None, bool]]:
    """Fit the colour head of the (fine-tuned) decoder copy to the observation's near-surface colours.

    The codes and every other weight stay fixed, so the geometry is the one the fine-tuning left; the head's
    inputs are captured once (:class:`~core.model.colour_head.ColourHeadInputs`) and each step runs the head
    alone. Returns (with ``yield from``) the decoder state with the new head (``override`` unchanged when
    there is nothing to fit) and whether it was cancelled.
    """
    config = ctx.config
    points, rgb = ctx.batches.near_colours(config.colour_band)
    if colour_code is None or rgb is None or len(points) == 0 or config.colour_finetune_iterations == 0:
        return override, False
    gen = torch.Generator().manual_seed(ctx.seed + 7)
    if 0 < config.colour_finetune_pool < len(points):
        pool = torch.randperm(len(points), generator=gen)[: config.colour_finetune_pool].to(points.device)
        points, rgb = points[pool], rgb[pool]
    work = private_copy(ctx.model) if override is None else ctx.model.with_decoder(override)
    inputs = ColourHeadInputs(work, points, shape_code.to(ctx.device), colour_code.to(ctx.device), ctx.condition)
    params = list(inputs.head.parameters())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=config.colour_finetune_lr)
    first = int(ctx.history[-1]["iteration"]) if ctx.history else 0
    cancelled = False
    for step in range(config.colour_finetune_iterations):
        if is_cancelled(ctx.cancel):
            cancelled = True
            break
        pick = torch.randint(len(points), (min(config.colour_finetune_points, len(points)),), generator=gen)
        pick = pick.to(points.device)
        with ctx.autocast:  # the step's precision, as the code fit's and the fine-tuning's
            predicted = inputs.predict(pick)
        loss = L.colour_l1(predicted.float(), rgb[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        terms = {"colour": float(loss.detach())}
        if ctx.history is not None:
            ctx.history.append(
                {"iteration": first + step + 1, "stage": "colour", "lr": config.colour_finetune_lr, **terms}
            )
        if (step + 1) % ctx.every == 0 and step + 1 < config.colour_finetune_iterations:
            yield TTOProgress(
                first + step + 1, terms, shape_code, colour_code, config.colour_finetune_lr, "colour", ctx.class_name
            )
    for p in params:
        p.requires_grad_(False)
    return {k: v.detach().clone() for k, v in work.decoder.state_dict().items()}, cancelled


def _prefix_cache(
    ctx: _FitContext, decoder: SdfColourDecoder, trained: list[torch.nn.Module], code: torch.Tensor
) -> _PrefixCache | None:
    """The frozen-prefix cache of a fine-tuning, when it applies: no colour term, at least one frozen
    trunk layer before the first trained one, and the samples' features within :data:`PREFIX_CACHE_BYTES`."""
    if ctx.fit_colour:
        return None
    trunk = list(decoder.layers)
    first = min((trunk.index(m) for m in trained if m in trunk), default=len(trunk))
    if first < 1 or any(m not in trunk and m is not decoder.sdf_out for m in trained):
        return None
    dtype = compute_dtype(ctx.device, ctx.config.precision)
    if not _PrefixCache.fits(decoder, first, ctx.batches, dtype):
        return None
    latent = ctx.model.latent(code, ctx.condition)
    return _PrefixCache(decoder, first, latent, ctx.batches, ctx.autocast)


def fit(
    model: TrainedModel,
    observation: Observation,
    config: TTOConfig | None = None,
    callback: Callable[[TTOProgress], Any] | None = None,
    every: int = 10,
    cancel: Cancel = None,
    class_name: str | None = None,
    text: str | None = None,
    seed: int = 0,
) -> TTOResult:
    """Run :func:`iterate_fit` to the end, calling ``callback(progress)`` on every report.

    Returns
    -------
    TTOResult (``cancelled`` set when ``cancel`` stopped it; the codes are those reached).
    """
    result = None
    for progress in iterate_fit(
        model, observation, config, class_name=class_name, text=text, seed=seed, cancel=cancel, every=every
    ):
        if callback is not None:
            callback(progress)
        if progress.done and progress.result is not None:
            result = progress.result
    assert result is not None
    return result
