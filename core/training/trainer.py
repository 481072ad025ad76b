"""The auto-decoder training loop: codes and network optimised jointly (Park et al. 2019, Sec. 4).

Loss per step over the global batch of B shapes x S samples (DeepSDF's ``train_deep_sdf.py``)::

    L = sum |clamp(f(z_i, x), d) - clamp(s, d)| / (B S)                    clamped L1, d = 0.1
      + colour_weight * sum_{|s| < band} |c(z_i, w_i, x) - rgb| / #near   colour, near the surface only
      + code_reg * min(1, epoch / warmup) * mean_i (|z_i| + |w_i|)          code regulariser

Recipe switches (``train.*``, all off by default): ``curriculum`` replaces the clamped L1 by
Curriculum DeepSDF's :func:`core.tto.losses.curriculum_l1` with (eps, lambda) of the epoch's stage;
``surface_weight`` / ``normal_weight`` add ``mean |f(x_s)|`` and ``mean(1 - cos(grad f(x_s), n_s))``
on surface points drawn per step; ``lr_schedule`` picks step, cosine or onecycle rates
(:func:`learning_rates`); ``max_minutes`` ends the run after the epoch that spends the time budget.

Determinism: shuffling uses ``default_rng([seed, epoch])``, each shape's draw
``default_rng([seed, epoch, shape])``, dropout the torch generator saved in every checkpoint;
learning rates are a function of the epoch. So a resumed run repeats the uninterrupted one
exactly, and ranks of a distributed run draw the very samples a single process would.

Distributed (``torchrun``): each rank takes every world-th shape of each global batch; the
losses are normalised by the global counts and multiplied by the world size, so DDP's gradient
average equals the single-process gradient. Codes stay dense and replicated (see
:mod:`core.model.autodecoder`). Only rank 0 writes files; the logged losses are summed over ranks.

Cancelling (``cancel`` or Ctrl-C) saves the state of the last *completed* epoch, kept in memory
at each epoch's end, never the half-updated weights of an interrupted one.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist

from core.data.training_set import SdfDataSet
from core.model.autodecoder import AutoDecoder
from core.model.checkpoint import read_checkpoint, save_checkpoint
from core.training.config import (
    CURRICULUM_EPS,
    CURRICULUM_LAMBDA,
    RunConfig,
    TrainConfig,
    config_differences,
    resume_changes,
)
from core.tto.losses import curriculum_l1
from core.utils import devices
from core.utils.cancel import Cancel, is_cancelled
from core.utils.config_io import field_default, to_dict
from core.utils.errors import CheckpointError, ConfigError, DataSetError
from core.utils.io_utils import atomic_write, atomic_write_json

__all__ = ["train", "TrainResult", "TrainingDivergedError", "resolve_device", "learning_rates", "curriculum_stage",
           "surface_samples_per_shape"]

log = logging.getLogger(__name__)
_LOG_FIELDS = ["epoch", "loss", "sdf", "colour", "reg", "lr_decoder", "lr_codes", "seconds", "samples_per_s"]


def _log_fields(config: RunConfig) -> list[str]:
    """log.csv's columns: the default ones, plus those of the recipe switches that are on."""
    t = config.train
    extra = ["eps", "lambda"] if t.curriculum else []
    extra += ["surface"] if t.surface_weight > 0 else []
    extra += ["normal"] if t.normal_weight > 0 else []
    clock = ["cpu_seconds"] if t.max_cpu_minutes > 0 else []
    return _LOG_FIELDS[:-2] + extra + _LOG_FIELDS[-2:] + clock


def _loss_keys(config: RunConfig) -> list[str]:
    """The per-step loss terms summed into each epoch's log row."""
    t = config.train
    return ["loss", "sdf", "colour", "reg"] + (["surface"] if t.surface_weight > 0 else []) + (
        ["normal"] if t.normal_weight > 0 else [])


@dataclass
class TrainResult:
    """What a finished (or cancelled) run leaves behind."""

    run_dir: Path
    checkpoint: Path | None
    epochs_done: int
    cancelled: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_by_time: bool = False
    """The run ended early because ``train.max_minutes`` was spent (``--resume`` continues it)."""


def resolve_device(name: str) -> torch.device:
    """The training device of ``train.device`` (see :func:`core.utils.devices.resolve_device`)."""
    return devices.resolve_device(name, what="train.device")


def process_group_backend(device: torch.device) -> str:
    """The ``torch.distributed`` backend for a run on ``device``: ``nccl`` for CUDA, ``gloo`` for the CPU.

    It follows the run's device, not what the machine has: NCCL moves only CUDA tensors, so a CPU
    run (``train.device=cpu``) on a machine with a GPU must still use gloo.
    """
    return "nccl" if device.type == "cuda" else "gloo"


def _dist_info(device: torch.device) -> tuple[int, int]:
    """(rank, world size); under ``torchrun`` starts the process group with ``device``'s backend."""
    if dist.is_available() and dist.is_initialized():
        backend = str(dist.get_backend())
        if device.type != "cuda" and backend == "nccl":
            raise ConfigError(f"train.device={device.type!r} but the process group runs nccl, which carries only "
                              "CUDA tensors; start it with the gloo backend or train with train.device=cuda")
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available():
        if device.type == "cuda":  # NCCL binds each rank to its own GPU
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=process_group_backend(device))
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _text_embeddings(module: AutoDecoder, data: SdfDataSet, model_name: str) -> None:
    """Fill the text conditioner's frozen class / shape embeddings (cached in the data folder)."""
    from core.model.text_encoder import TextEmbeddingCache, class_prompt

    cache = TextEmbeddingCache(data.data_dir / "text_embeddings.npz", model_name)
    cond = module.conditioner
    cond.class_text_embeddings.copy_(torch.from_numpy(cache.get([class_prompt(c) for c in data.class_names])))
    texts = [s.text or class_prompt(s.class_name) for s in data.shapes]
    cond.shape_text_embeddings.copy_(torch.from_numpy(cache.get(texts)))


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
        "xyz": cat("xyz"), "sdf": cat("sdf"), "rgb": cat("rgb"), "view": cat("view"),
        "has_rgb": cat("has_rgb", torch.bool),
        "shape": torch.tensor(shapes, dtype=torch.long, device=device),
        "class": torch.tensor([data.class_index(i) for i in shapes], dtype=torch.long, device=device),
        "row": torch.arange(len(shapes), device=device).repeat_interleave(n),
    }
    m = surface_samples_per_shape(config)
    if m:  # own generators ([seed, epoch, shape, 1]): the SDF sample draws above stay as without them
        surf = [data.draw_surface(i, m, np.random.default_rng([t.seed, epoch, i, 1])) for i in shapes]
        batch["surface_xyz"] = torch.from_numpy(np.concatenate([d["xyz"] for d in surf])).to(device)
        batch["surface_normal"] = torch.from_numpy(np.concatenate([d["normal"] for d in surf])).to(device)
        batch["surface_row"] = torch.arange(len(shapes), device=device).repeat_interleave(m)
        # the true surface lies at -offset in a dilated field (core.data.open_mesh_sdf): that is its target
        batch["surface_level"] = torch.tensor(-data.surface_offset, device=device)
    return batch


def _all_sum(value: float, world: int, device: torch.device) -> float:
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def _step(module, net, batch, config: RunConfig, epoch: int, global_shapes: int, world: int,
          device) -> dict[str, torch.Tensor]:
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
    sdf, rgb = net(xyz, batch["shape"], batch["class"], row, view_dirs=view, with_colour=use_colour)
    surface_terms: dict[str, torch.Tensor] = {}
    if on_surface is not None:
        surface_sdf, sdf = sdf[n:], sdf[:n]
        rgb = None if rgb is None else rgb[:n]
        surface_terms = _surface_terms(surface_sdf - batch["surface_level"], on_surface, batch["surface_normal"],
                                       config,
                                       global_shapes * surface_samples_per_shape(config), world)
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
        count = _all_sum(float(near.sum().item()), world, device)
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


def _surface_terms(surface_sdf: torch.Tensor, points: torch.Tensor, normals: torch.Tensor, config: RunConfig,
                   global_count: int, world: int) -> dict[str, torch.Tensor]:
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


def _write_log(run_dir: Path, rows: list[dict[str, float]], fields: list[str] | None = None) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields or _LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(run_dir / "log.csv", lambda h: h.write(buffer.getvalue().encode("utf-8")))


def _read_log(run_dir: Path, upto_epoch: int) -> list[dict[str, float]]:
    path = run_dir / "log.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        # a column added on resume (cpu_seconds of a budget given later) is empty in the rows before it
        rows = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)
                if float(row["epoch"]) <= upto_epoch]
    for row in rows:
        row["epoch"] = int(row["epoch"])  # written back as "3", not "3.0"
    return rows


def _cpu_copy(value: Any) -> Any:
    """A deep copy with every tensor copied to the CPU (the state stays valid while training goes on)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return copy.deepcopy(value)


def _training_state(module: AutoDecoder, optimizer, epoch: int, device: torch.device) -> dict[str, Any]:
    """Everything an exact resume needs at the end of ``epoch``: weights and codes, optimiser, RNG."""
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)  # dropout on the GPU draws from the CUDA generator
    return {"epoch": epoch, "model_state": _cpu_copy(module.state_dict()),
            "optimizer": _cpu_copy(optimizer.state_dict()), "rng": rng}


def _payload(state: dict[str, Any], data: SdfDataSet, config: RunConfig, stats: dict) -> dict[str, Any]:
    return {
        "config": to_dict(config),
        "model_state": state["model_state"],
        "shape_ids": [s.id for s in data.shapes],
        "shape_classes": [s.class_name for s in data.shapes],
        "shape_texts": [s.text for s in data.shapes],
        "class_names": list(data.class_names),
        "normalization": {s.id: s.normalization for s in data.shapes if s.normalization},
        "stats": stats,
        "epoch": state["epoch"],
        "optimizer": state["optimizer"],
        "rng": state["rng"],
    }


class TrainingDivergedError(ConfigError):
    """The training loss became NaN or infinite: the settings (mostly the learning rates) diverge."""

    def __init__(self, epoch: int, losses: dict[str, float]) -> None:
        self.epoch, self.losses = epoch, dict(losses)
        super().__init__(self._text())

    def _text(self, tail: str = "") -> str:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in self.losses.items())
        return f"training diverged in epoch {self.epoch}: the loss is not finite ({shown}).{tail}"

    def explain(self, run_dir: Path, config: RunConfig, saved_epoch: int) -> None:
        """Complete the message: what was kept and what to change (called where both are known)."""
        t = config.train
        latest = run_dir / "checkpoints" / "latest.pt"
        kept = (f" The last good checkpoint, epoch {saved_epoch}, is kept in {latest}." if saved_epoch > 0
                else " No checkpoint was written.")
        rates = {name: (getattr(t, name), field_default(TrainConfig, name)) for name in ("lr_decoder", "lr_codes")}
        above = {name: default for name, (value, default) in rates.items() if value > default}
        suggest = above or {name: value / 10 for name, (value, _) in rates.items()}
        fix = (" Lower the learning rates (now " + ", ".join(f"train.{n}={v:g}" for n, (v, _) in rates.items())
               + "; defaults " + ", ".join(f"{d:g}" for _, d in rates.values()) + "), e.g. "
               + " ".join(f"--set train.{n}={v:g}" for n, v in suggest.items())
               + ", and train again into a new --out folder (or the same one with --overwrite).")
        if t.lr_factor > 1:
            fix += (f" Note train.lr_factor={t.lr_factor:g} raises the rates every {t.lr_interval} epochs; "
                    f"a factor below 1 (default {field_default(TrainConfig, 'lr_factor'):g}) lowers them.")
        self.args = (self._text(kept + fix),)


def _has_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds training results (a checkpoint or a log), not merely a config.json."""
    folder = run_dir / "checkpoints"
    return (run_dir / "log.csv").exists() or (folder.is_dir() and any(folder.glob("*.pt")))


def _check_folders(data_dir: Path, run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse impossible folders and a run that would silently replace an earlier one."""
    if resume and overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite replaces it; choose one.")
    if data_dir.exists() and not data_dir.is_dir():
        raise DataSetError(f"{data_dir}: is a file, not a data set folder. Pass the folder `main.py preprocess "
                           "--out DIR` wrote (it holds manifest.json and SdfSamples/).")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: is a file, not a run folder. Pass a new folder (or an earlier run's) as --out.")
    if not resume and not overwrite and _has_run(run_dir):
        raise ConfigError(f"{run_dir}: already holds a training run (checkpoints/log.csv). Continue it with "
                          "--resume, replace it with --overwrite, or choose a new --out folder.")


RUN_FILES = ("log.csv", "stats.json", "config.json", "checkpoints/latest.pt", "checkpoints/epoch_*.pt",
             "tb/events.out.tfevents.*")
"""What a training run writes into its folder: all that ``--overwrite`` removes of an earlier run."""


def _clear_run(run_dir: Path) -> None:
    """Remove an earlier run's results before an ``overwrite`` run writes its own (no stale epoch files).

    Only the files a run writes (:data:`RUN_FILES`, regular files, no links followed): anything else a
    user keeps in the folder (notes, an exported model) stays, and no folder is removed.
    """
    for pattern in RUN_FILES:
        for path in run_dir.glob(pattern):
            if path.is_file() and not path.is_symlink():
                path.unlink()


def _resumable_checkpoint(run_dir: Path, config: RunConfig, device: torch.device) -> dict[str, Any]:
    """RUN/checkpoints/latest.pt, checked to continue with ``config``; the allowed changes are logged."""
    latest = run_dir / "checkpoints" / "latest.pt"
    if not latest.exists():
        raise CheckpointError(f"{latest}: nothing to resume. Start without --resume, or pass the run folder "
                              "of an earlier run.")
    saved = read_checkpoint(latest, map_location=device)
    if "optimizer" not in saved or "rng" not in saved or "epoch" not in saved:
        raise CheckpointError(f"{latest}: an inference-only checkpoint (no optimiser state); it cannot be resumed.")
    changes = resume_changes(saved["config"], config, str(run_dir))
    done = int(saved["epoch"])
    if config.train.epochs < done:
        raise ConfigError(f"{run_dir}: train.epochs={config.train.epochs} but the run has already trained {done} "
                          f"epochs; resume with --epochs {done} or more.")
    for change in changes:
        log.info("resuming %s at epoch %d with %s", run_dir, done, change)
    return saved


def train(config: RunConfig, data_dir: Path, run_dir: Path, resume: bool = False, cancel: Cancel = None,
          progress: bool = True, callback: Callable[[dict[str, float]], None] | None = None,
          overwrite: bool = False) -> TrainResult:
    """Train (or resume) a run; return where its checkpoint is.

    Parameters
    ----------
    config : the whole run config (stored in ``RUN/config.json`` and every checkpoint).
    data_dir : a preprocessed data set folder.
    run_dir : output folder: ``config.json``, ``log.csv``, ``tb/``, ``checkpoints/{latest,epoch_NNNN}.pt``.
    resume : continue from ``RUN/checkpoints/latest.pt`` (exactly: same weights as one long run).
        ``config`` must equal the saved run's except for :data:`RESUME_MAY_CHANGE` (epochs, device, threads,
        time budget); anything else is refused with the differences listed.
    cancel : ``threading.Event`` or callable; checked between steps. Ctrl-C is handled the same
        way: the last completed epoch is saved, so ``--resume`` continues from it.
    callback : called with each epoch's log row (epoch, losses, learning rates, speed).
    overwrite : replace the run already in ``run_dir`` (its checkpoints, log and TensorBoard files);
        without it (and without ``resume``) a folder holding a run is refused, so nothing is lost.

    Raises
    ------
    TrainingDivergedError
        The loss became NaN or infinite; the last good epoch is saved first, never the broken one.
    """
    device = resolve_device(config.train.device)
    with _deterministic_on_cpu(device), _tf32_on_cuda(device, config.train.tf32):
        return _train(config, Path(data_dir), Path(run_dir), resume, cancel, progress, callback, overwrite)


@contextlib.contextmanager
def _tf32_on_cuda(device: torch.device, tf32: bool):
    """``train.tf32`` while a CUDA run trains (the process's previous setting is restored after)."""
    if device.type != "cuda":
        yield
        return
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(tf32)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@contextlib.contextmanager
def _deterministic_on_cpu(device: torch.device):
    """Deterministic kernels while a CPU run trains (the previous setting is restored after).

    The per-point gather of the folded code layers (``decoder.py``: ``(...)[latent_row]``, used for
    row layouts other than equal contiguous blocks, e.g. with surface points appended) has a
    backward that accumulates with ``index_put_``; with several CPU threads its order of float
    additions varies from run to run, so neither two straight runs nor a resumed one were equal
    bit for bit. The deterministic (sorted) version makes a CPU run a function of its seed and
    thread count. (The plain batch's block broadcast needs no gather: its backward is a sum.)
    ``warn_only``: an op without a deterministic version warns instead of failing.
    On CUDA the setting stays as it is (cuBLAS would need CUBLAS_WORKSPACE_CONFIG).
    """
    if device.type != "cpu":
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def _warm_start(module: AutoDecoder, config: RunConfig, data: SdfDataSet, source: dict[str, Any], path: Path) -> None:
    """Load ``train.init_from``'s weights and codes (``source``, read from ``path``) into ``module``
    (see :class:`TrainConfig`).

    Refused, before any training, when the checkpoint's shapes or model settings differ: a code
    belongs to one shape of one data set, and weights fit one architecture.
    """
    if "model_state" not in source or "shape_ids" not in source:
        raise CheckpointError(f"{path}: train.init_from needs a training or exported model checkpoint "
                              "(weights, codes and shape ids); this file has none.")
    ids = [s.id for s in data.shapes]
    if list(source["shape_ids"]) != ids:
        raise CheckpointError(f"{path}: train.init_from was trained on other shapes ({len(source['shape_ids'])} "
                              f"shapes) than this data set's training split ({len(ids)}); warm-start from a "
                              "run on the same data set and train.classes.")
    differ = config_differences(source.get("config", {}), config, f"{path}: stored config", sections=("model",))
    if differ:
        shown = "; ".join(f"{k}: {a!r} there, {b!r} here" for k, a, b in differ)
        raise ConfigError(f"{path}: train.init_from has other model settings ({shown}). A warm start keeps the "
                          "architecture: give the same --preset / --conditioning / model.* settings.")
    module.load_state_dict(source["model_state"])
    log.info("warm start from %s (epoch %s)", path, source.get("epoch", "?"))


def _train(config: RunConfig, data_dir: Path, run_dir: Path, resume: bool, cancel: Cancel, progress: bool,
           callback: Callable[[dict[str, float]], None] | None, overwrite: bool) -> TrainResult:
    """:func:`train` itself, run inside :func:`_deterministic_on_cpu`."""
    _check_folders(Path(data_dir), run_dir, resume, overwrite)
    t = config.train
    device = resolve_device(t.device)
    rank, world = _dist_info(device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if t.threads > 0:
        torch.set_num_threads(t.threads)

    saved = _resumable_checkpoint(run_dir, config, device) if resume else None  # checked before any long work
    warm = read_checkpoint(Path(t.init_from)) if saved is None and t.init_from else None  # so is a warm start's
    data = SdfDataSet(Path(data_dir), "train", t.max_samples_per_shape, t.classes, seed=t.seed,
                      with_surface=surface_samples_per_shape(config) > 0)
    if data.skipped and rank == 0:
        log.warning("%d shape file(s) could not be read and are skipped (see the log above)", len(data.skipped))
    if config.model.colour and not data.has_colour:
        log.warning("%s has no colours: the colour head is trained on nothing", data_dir)
    torch.manual_seed(t.seed)
    module = AutoDecoder(config.model, num_shapes=len(data), num_classes=len(data.class_names))
    if config.model.conditioning == "text":
        _text_embeddings(module, data, config.model.text_model)
    if warm is not None:
        _warm_start(module, config, data, warm, Path(t.init_from))
    module.to(device)
    code_params = list(module.shape_codes.parameters())
    if module.colour_codes is not None:
        code_params += list(module.colour_codes.parameters())
    code_ids = {id(p) for p in code_params}
    net_params = [p for p in module.parameters() if id(p) not in code_ids]
    optimizer = torch.optim.Adam([{"params": net_params, "lr": t.lr_decoder},
                                  {"params": code_params, "lr": t.lr_codes}])

    start_epoch, history = 0, []
    latest = run_dir / "checkpoints" / "latest.pt"
    if saved is not None:
        if saved["shape_ids"] != [s.id for s in data.shapes]:
            raise CheckpointError(f"{latest}: the training shapes differ from {data_dir}'s; "
                                  "resume with the same data set.")
        module.load_state_dict(saved["model_state"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"]["torch"].cpu())
        if "cuda" in saved["rng"] and device.type == "cuda":
            torch.cuda.set_rng_state(saved["rng"]["cuda"].cpu(), device)
        start_epoch = int(saved["epoch"])
        history = _read_log(run_dir, start_epoch) if rank == 0 else []
        saved_epochs = saved["config"].get("train", {}).get("epochs", t.epochs)
        stretched = (["curriculum stages"] if t.curriculum else []) + (
            [f"{t.lr_schedule} learning rates"] if t.lr_schedule != "step" else [])
        if saved_epochs != t.epochs and stretched and rank == 0:
            log.warning("train.epochs %s -> %s stretches the %s over the new length: the epochs still to come "
                        "differ from what the run had planned", saved_epochs, t.epochs, " and ".join(stretched))
    net: torch.nn.Module = module
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    if rank == 0:
        if overwrite:
            _clear_run(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", {**to_dict(config), "data": str(Path(data_dir).resolve())})
    writer = _tensorboard(run_dir) if rank == 0 else None
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=t.epochs, initial=start_epoch, desc="train", unit="epoch", dynamic_ncols=True)

    stats_base = {"shapes": len(data), "classes": list(data.class_names), "samples_per_shape": t.samples_per_shape,
                  "world_size": world, "device": str(device), "surface_offset": data.surface_offset}
    switches = ("curriculum", "curriculum_first_stage", "init_from", "surface_weight", "normal_weight", "lr_schedule",
                "lr_min_factor", "max_minutes", "max_cpu_minutes")
    recipe = {k: getattr(t, k) for k in switches if getattr(t, k) != field_default(TrainConfig, k)}
    if recipe:
        stats_base["recipe"] = recipe
    budget = {k: getattr(t, k) for k in ("max_minutes", "max_cpu_minutes") if getattr(t, k) > 0}
    if budget:
        stats_base["time_budget"] = {**budget, "stopped_early": False}
    fields = _log_fields(config)
    stopped_by_time = False
    train_seconds = float(history[-1]["seconds"]) if history else 0.0
    cpu_seconds = float(history[-1].get("cpu_seconds") or 0.0) if history else 0.0
    epoch = start_epoch
    cancelled = False
    checkpoint: Path | None = latest if latest.exists() else None
    boundary: dict[str, Any] | None = None  # the state at the end of the last completed epoch (rank 0)
    saved_epoch = completed = start_epoch
    try:
        for epoch in range(start_epoch, t.epochs):
            lr_net, lr_codes = learning_rates(config, epoch)
            optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"] = lr_net, lr_codes
            net.train()
            order = np.random.default_rng([t.seed, epoch]).permutation(len(data))
            batches = [order[i:i + t.shapes_per_batch] for i in range(0, len(order), t.shapes_per_batch)]
            batches = [b for b in batches if len(b) >= world]
            sums = dict.fromkeys(_loss_keys(config), 0.0)
            tic, cpu_tic = time.perf_counter(), time.process_time()
            for global_batch in batches:
                if is_cancelled(cancel):
                    raise KeyboardInterrupt
                mine = [int(i) for i in global_batch[rank::world]]
                batch = _batch_tensors(data, mine, config, epoch, device)
                losses = _step(module, net, batch, config, epoch, len(global_batch), world, device)
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                optimizer.step()
                for k in sums:
                    sums[k] += float(losses[k].detach()) / world / len(batches)
            done = epoch + 1
            if world > 1:  # each rank holds its share of the global losses
                totals = torch.tensor(list(sums.values()), dtype=torch.float64, device=device)
                dist.all_reduce(totals)
                sums = dict(zip(sums, totals.tolist(), strict=True))
            if not all(math.isfinite(v) for v in sums.values()):  # every rank sees the same sums
                raise TrainingDivergedError(done, sums)
            if rank == 0:
                boundary = _training_state(module, optimizer, done, device)
            completed = done
            seconds = time.perf_counter() - tic
            train_seconds += seconds
            cpu_seconds += time.process_time() - cpu_tic
            row = {"epoch": done, **sums, "lr_decoder": lr_net, "lr_codes": lr_codes, "seconds": train_seconds,
                   "samples_per_s": len(data) * t.samples_per_shape / max(seconds, 1e-9)}
            if t.max_cpu_minutes > 0:
                row["cpu_seconds"] = cpu_seconds
            if t.curriculum:
                row["eps"], row["lambda"] = curriculum_stage(config, epoch)
            # The time budget: rank 0's clock decides for all ranks, so every rank stops after the same epoch.
            spent = (t.max_minutes > 0 and train_seconds >= 60.0 * t.max_minutes) or (
                t.max_cpu_minutes > 0 and cpu_seconds >= 60.0 * t.max_cpu_minutes)
            out_of_time = bool(budget) and done < t.epochs and _all_sum(float(rank == 0 and spent), world, device) > 0
            if out_of_time:
                stopped_by_time = True
                stats_base["time_budget"] = {**budget, "stopped_early": True, "epochs_done": done,
                                             "seconds": train_seconds, "cpu_seconds": cpu_seconds}
            history.append(row)
            if callback:
                callback(row)
            if rank == 0:
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", sdf=f"{row['sdf']:.4f}", col=f"{row['colour']:.3f}",
                                    pts=f"{row['samples_per_s'] / 1e3:.0f}k/s")
                if writer is not None and done % max(1, t.log_every) == 0:
                    for k in fields:
                        if k not in ("epoch", "seconds"):
                            writer.add_scalar(f"train/{k}", row[k], done)
                if done % max(1, t.checkpoint_every) == 0 or done == t.epochs or out_of_time:
                    checkpoint = _save(run_dir, boundary, data, config, stats_base, history,
                                       keep_epoch=done % max(1, t.checkpoint_every) == 0, saved_epoch=saved_epoch)
                    saved_epoch = done
            if out_of_time:
                if rank == 0:
                    log.warning("stopped at the time budget after %d epochs (%.1f s, %.1f CPU-s of train.max_minutes=%g"
                                " / train.max_cpu_minutes=%g, counted over the whole run); to go on, --resume with a "
                                "larger budget (--set train.max_minutes=M / train.max_cpu_minutes=M, or 0 for none)",
                                done, train_seconds, cpu_seconds, t.max_minutes, t.max_cpu_minutes)
                break
    except TrainingDivergedError as exc:
        # The weights of the diverged epoch are NaN/inf: keep them out of every file, but save
        # the last good epoch when it is newer than the last checkpoint (as a cancel does).
        if rank == 0 and boundary is not None and boundary["epoch"] > saved_epoch:
            history = [row for row in history if int(row["epoch"]) <= boundary["epoch"]]
            _save(run_dir, boundary, data, config, stats_base, history, keep_epoch=False, saved_epoch=saved_epoch)
            saved_epoch = int(boundary["epoch"])
        exc.explain(run_dir, config, saved_epoch)
        raise
    except KeyboardInterrupt:
        cancelled = True
        # Save the last completed epoch from its in-memory copy: the live weights, optimiser and
        # RNG may already hold part of the interrupted epoch, and saving those under the
        # completed epoch's number would break exact resume.
        last_done = boundary["epoch"] if boundary is not None else completed
        history = [row for row in history if int(row["epoch"]) <= last_done]
        if rank == 0 and boundary is not None and last_done > saved_epoch:
            checkpoint = _save(run_dir, boundary, data, config, stats_base, history, keep_epoch=False,
                               saved_epoch=saved_epoch)
            saved_epoch = last_done
        log.warning("training cancelled after epoch %s; continue with --resume", last_done)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    epochs_done = int(history[-1]["epoch"]) if history else start_epoch
    return TrainResult(run_dir=run_dir, checkpoint=checkpoint, epochs_done=epochs_done,
                       cancelled=cancelled, history=history, stopped_by_time=stopped_by_time)


@contextlib.contextmanager
def _saving(path: Path, epoch: int, kept: str) -> Iterator[None]:
    """Turn a failed write (a full disk, a folder made read-only) into one :class:`CheckpointError` that says
    which checkpoint survived: the atomic writes never leave half a file under the final name."""
    try:
        yield
    except OSError as exc:
        raise CheckpointError(f"{path}: could not save epoch {epoch} ({exc.strerror or exc}). {kept} Free disk "
                              "space (or make the folder writable), then continue with --resume.") from None


def _kept(latest: Path, epoch: int | None) -> str:
    if epoch and latest.is_file():
        return f"The last good checkpoint, {latest} (epoch {epoch}), is kept."
    return "No checkpoint of this run was saved yet."


def _save(run_dir: Path, state: dict[str, Any], data, config, stats_base: dict, history: list,
          keep_epoch: bool, saved_epoch: int | None = None) -> Path:
    epoch = int(state["epoch"])
    last = history[-1] if history else {}
    stats = {**stats_base, "epochs": epoch, "train_seconds": float(last.get("seconds", 0.0)),
             **({"train_cpu_seconds": float(last["cpu_seconds"])} if "cpu_seconds" in last else {}),
             "final_losses": {k: float(last[k])
                              for k in ("loss", "sdf", "colour", "reg", "surface", "normal") if k in last}}
    payload = _payload(state, data, config, stats)
    folder = run_dir / "checkpoints"
    latest = folder / "latest.pt"
    with _saving(latest, epoch, _kept(latest, saved_epoch)):
        save_checkpoint(latest, payload)
    with _saving(folder / f"epoch_{epoch:04d}.pt", epoch, _kept(latest, epoch)):
        if keep_epoch:
            save_checkpoint(folder / f"epoch_{epoch:04d}.pt", payload)
        _write_log(run_dir, history, _log_fields(config))
        atomic_write_json(run_dir / "stats.json", stats)
    return latest


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: the CSV log still has everything
        log.info("tensorboard is not installed; logging to log.csv only")
        return None
    return SummaryWriter(str(run_dir / "tb"))



