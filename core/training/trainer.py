"""The auto-decoder training loop: codes and network optimised jointly (Park et al. 2019, Sec. 4).

One step's batch, loss and schedules are :mod:`core.training.step`; here is the loop around the steps
(:class:`Trainer`): set-up, resume, and the ways out of the loop; what the run keeps in its folder (the log,
the checkpoints, the checks before a run starts) is :mod:`core.training.run_folder`.
``train.max_minutes`` ends the run after the epoch that spends the time budget.

Determinism: shuffling uses ``default_rng([seed, epoch])``, each shape's draw
``default_rng([seed, epoch, shape])``, dropout the torch generator saved in every checkpoint;
learning rates are a function of the epoch. So a resumed run repeats the uninterrupted one
exactly, and ranks of a distributed run draw the very samples a single process would.

Distributed (``torchrun``): each rank takes every world-th shape of each global batch (the step's
losses are scaled so DDP's gradient average equals the single-process gradient, see
:mod:`core.training.step`). Codes stay dense and replicated (see :mod:`core.model.autodecoder`).
Only rank 0 writes files; the logged losses are summed over ranks.

Cancelling (``cancel`` or Ctrl-C) saves the state of the last *completed* epoch, kept in memory
at each epoch's end, never the half-updated weights of an interrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

from core.data.training_set import SdfDataSet
from core.model.autodecoder import AutoDecoder
from core.model.checkpoint import read_checkpoint
from core.training.config import RunConfig, TrainConfig, config_differences
from core.training.run_folder import (
    check_folders,
    clear_run,
    log_fields,
    read_log,
    resumable_checkpoint,
    save_epoch,
    tensorboard_writer,
    training_state,
)
from core.training.step import (  # learning_rates ... _step are also imported from here (tests, benchmarks)
    _batch_tensors,
    _step,
    all_sum,
    curriculum_stage,
    learning_rates,
    surface_samples_per_shape,
)
from core.utils import devices
from core.utils.cancel import Cancel, is_cancelled
from core.utils.config_io import field_default, to_dict
from core.utils.errors import CheckpointError, ConfigError
from core.utils.io_utils import atomic_write_json

__all__ = [
    "train",
    "Trainer",
    "LoopState",
    "TrainResult",
    "TrainingDivergedError",
    "resolve_device",
    "learning_rates",
    "curriculum_stage",
    "surface_samples_per_shape",
]

log = logging.getLogger(__name__)


def _loss_keys(config: RunConfig) -> list[str]:
    """The per-step loss terms summed into each epoch's log row."""
    t = config.train
    return (
        ["loss", "sdf", "colour", "reg"]
        + (["surface"] if t.surface_weight > 0 else [])
        + (["normal"] if t.normal_weight > 0 else [])
    )


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
            raise ConfigError(
                f"train.device={device.type!r} but the process group runs nccl, which carries only "
                "CUDA tensors; start it with the gloo backend or train with train.device=cuda"
            )
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
        kept = (
            f" The last good checkpoint, epoch {saved_epoch}, is kept in {latest}."
            if saved_epoch > 0
            else " No checkpoint was written."
        )
        rates = {name: (getattr(t, name), field_default(TrainConfig, name)) for name in ("lr_decoder", "lr_codes")}
        above = {name: default for name, (value, default) in rates.items() if value > default}
        suggest = above or {name: value / 10 for name, (value, _) in rates.items()}
        fix = (
            " Lower the learning rates (now "
            + ", ".join(f"train.{n}={v:g}" for n, (v, _) in rates.items())
            + "; defaults "
            + ", ".join(f"{d:g}" for _, d in rates.values())
            + "), e.g. "
            + " ".join(f"--set train.{n}={v:g}" for n, v in suggest.items())
            + ", and train again into a new --out folder (or the same one with --overwrite)."
        )
        if t.lr_factor > 1:
            fix += (
                f" Note train.lr_factor={t.lr_factor:g} raises the rates every {t.lr_interval} epochs; "
                f"a factor below 1 (default {field_default(TrainConfig, 'lr_factor'):g}) lowers them."
            )
        self.args = (self._text(kept + fix),)


def train(
    config: RunConfig,
    data_dir: Path,
    run_dir: Path,
    resume: bool = False,
    cancel: Cancel = None,
    progress: bool = True,
    callback: Callable[[dict[str, float]], None] | None = None,
    overwrite: bool = False,
) -> TrainResult:
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
    return Trainer(
        config,
        Path(data_dir),
        Path(run_dir),
        resume=resume,
        cancel=cancel,
        progress=progress,
        callback=callback,
        overwrite=overwrite,
    ).run()


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


WARM_START_MAY_CHANGE: tuple[str, ...] = ("model.dropout", "model.dropout_layers")
"""Model settings a warm start may change: they hold no weights (dropout regularises a second stage)."""


def _warm_start(module: AutoDecoder, config: RunConfig, data: SdfDataSet, source: dict[str, Any], path: Path) -> None:
    """Load ``train.init_from``'s weights and codes (``source``, read from ``path``) into ``module``
    (see :class:`TrainConfig`).

    Refused, before any training, when the checkpoint's shapes or model settings differ: a code
    belongs to one shape of one data set, and weights fit one architecture. With ``train.init_extends``
    the data set may hold more shapes and classes than the checkpoint: those keep ``module``'s fresh
    initialisation (:func:`extended_state`).
    """
    if "model_state" not in source or "shape_ids" not in source:
        raise CheckpointError(
            f"{path}: train.init_from needs a training or exported model checkpoint "
            "(weights, codes and shape ids); this file has none."
        )
    extends = config.train.init_extends
    rows = warm_code_rows(source, data, extends=extends)
    if rows is None:
        hint = (
            "every shape of the checkpoint must be in this data set's training split (with the same class); "
            f"{_missing_shapes(source, data)}"
            if extends
            else "warm-start from a run on the same data set and train.classes (or on the data set an augmented "
            "one was made from), or set train.init_extends=true when this data set adds shapes to the checkpoint's"
        )
        raise CheckpointError(
            f"{path}: train.init_from was trained on other shapes ({len(source['shape_ids'])} "
            f"shapes) than this data set's training split ({len(data.shapes)}); {hint}."
        )
    if extends and config.model.conditioning == "onehot":
        raise ConfigError(
            f"{path}: train.init_extends cannot extend a onehot-conditioned model (the decoder's input is one "
            "number per class); use embedding or text conditioning, or train from scratch."
        )
    differ = [
        d
        for d in config_differences(source.get("config", {}), config, f"{path}: stored config", sections=("model",))
        if d[0] not in WARM_START_MAY_CHANGE
    ]
    if differ:
        shown = "; ".join(f"{k}: {a!r} there, {b!r} here" for k, a, b in differ)
        raise ConfigError(
            f"{path}: train.init_from has other model settings ({shown}). A warm start keeps the "
            "architecture: give the same --preset / --conditioning / model.* settings."
        )
    state = extended_state(module, source, data, rows)
    copies = sum(r >= 0 for r in rows) - len(source["shape_ids"])
    if copies:
        log.info("warm start: %d augmented copies start at their source shapes' codes", copies)
    new_shapes = sum(r < 0 for r in rows)
    if new_shapes:
        log.info("warm start: %d shapes the checkpoint never saw start from fresh codes", new_shapes)
    module.load_state_dict(state)
    log.info("warm start from %s (epoch %s)", path, source.get("epoch", "?"))


TEXT_BUFFERS = ("conditioner.class_text_embeddings", "conditioner.shape_text_embeddings")
"""Text conditioning's frozen sentence embeddings: computed for this data set, never taken from a checkpoint
of another (its rows are another set's shapes and classes)."""


def extended_state(
    module: AutoDecoder, source: dict[str, Any], data: SdfDataSet, rows: list[int]
) -> dict[str, torch.Tensor]:
    """``source``'s model state laid out for ``module`` (built for ``data``): code row ``n`` is the
    checkpoint's row ``rows[n]``, or ``module``'s own fresh row where ``rows[n]`` is -1; each class
    embedding row is the checkpoint's row of the class of the same name, or ``module``'s own for a new
    class. With the checkpoint's own shapes and classes in its order this is its state unchanged."""
    state = dict(source["model_state"])
    own = module.state_dict()
    same_rows = rows == list(range(len(source["shape_ids"])))
    if not same_rows:
        index = torch.as_tensor(rows, dtype=torch.long)
        known = index >= 0
        for key in ("shape_codes.weight", "colour_codes.weight"):
            if key in state:
                table = own[key].detach().clone()
                table[known] = state[key][index[known]].to(table)
                state[key] = table
    names = [str(c) for c in source.get("class_names") or []]
    embedding = "conditioner.embedding.weight"
    if embedding in state and names and names != list(data.class_names):
        table = own[embedding].detach().clone()
        for n, name in enumerate(data.class_names):
            if name in names:
                table[n] = state[embedding][names.index(name)].to(table)
        state[embedding] = table
    if (names and names != list(data.class_names)) or not same_rows:
        for key in TEXT_BUFFERS:
            if key in own:
                state[key] = own[key]
    return state


def _missing_shapes(source: dict[str, Any], data: SdfDataSet) -> str:
    """A short list of the checkpoint's shapes this data set's training split lacks."""
    here = {(s.class_name, s.id) for s in data.shapes} | {(None, s.id) for s in data.shapes}
    classes = list(source.get("shape_classes") or [None] * len(source["shape_ids"]))
    missing = [
        f"{c}/{i}" if c else str(i) for c, i in zip(classes, source["shape_ids"], strict=True) if (c, i) not in here
    ]
    if not missing:
        return "a shape id is there twice"
    return f"missing here: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} ({len(missing)} in all)"


def warm_code_rows(source: dict[str, Any], data: SdfDataSet, extends: bool = False) -> list[int] | None:
    """For each training shape of ``data``, the row of ``source``'s codes it starts from; None when they
    do not fit.

    The checkpoint's own shapes, in its order (rows 0, 1, ...), or an augmented set made from its
    data set (:mod:`core.data.augment`): every shape of the checkpoint is there, and every other shape is
    a copy of one of them (``augment_of``), which starts at its source's code — the transformed shape's
    nearest point in the space, so the copies begin where the prior already is. With ``extends``, a shape
    the checkpoint never saw (not a copy of one) gets -1: it starts fresh.
    """
    ids = [str(i) for i in source["shape_ids"]]
    if ids == [s.id for s in data.shapes]:
        return list(range(len(ids)))
    recorded = list(source.get("shape_classes") or [])
    by_class = len(recorded) == len(ids)  # ids are unique within a class only
    classes: list[str | None] = [str(c) for c in recorded] if by_class else [None] * len(ids)
    keys = list(zip(classes, ids, strict=True))
    row_of = {key: n for n, key in enumerate(keys)}
    if len(row_of) != len(ids):
        return None
    rows: list[int] = []
    for shape in data.shapes:
        key = (shape.class_name if by_class else None, shape.id if shape.augment_of is None else shape.augment_of)
        if key in row_of:
            rows.append(row_of[key])
        elif extends and shape.augment_of is None:
            rows.append(-1)
        else:
            return None
    originals = {rows[n] for n, shape in enumerate(data.shapes) if shape.augment_of is None and rows[n] >= 0}
    known = sum(shape.augment_of is None and rows[n] >= 0 for n, shape in enumerate(data.shapes))
    if len(originals) != len(ids) or known != len(ids):
        return None  # a shape of the checkpoint is missing, or one is there twice
    return rows


@dataclass
class LoopState:
    """What the epoch loop changes as it goes: the one place its exits (finished, time budget spent,
    cancelled, diverged) read what to save and report. Held by :class:`Trainer`, rank-local."""

    start_epoch: int
    """The epoch the loop starts after: 0, or the resumed checkpoint's."""
    history: list[dict[str, float]]
    """Log rows of the epochs done so far, the resumed run's included (rank 0; others their own)."""
    train_seconds: float
    """Wall-clock seconds of training over the whole run, resumes included (the ``seconds`` column)."""
    cpu_seconds: float
    """CPU seconds over the whole run (``cpu_seconds``, logged with ``train.max_cpu_minutes``)."""
    checkpoint: Path | None
    """RUN/checkpoints/latest.pt once it exists (written by this run or the resumed one)."""
    completed: int = 0
    """The last epoch whose steps all finished."""
    saved_epoch: int = 0
    """The epoch latest.pt holds; 0 before any."""
    boundary: dict[str, Any] | None = None
    """The state at the end of the last completed epoch (rank 0): what a cancel or a divergence saves,
    never the live weights, which may hold part of an interrupted epoch."""
    cancelled: bool = False
    stopped_by_time: bool = False

    def __post_init__(self) -> None:
        self.completed = self.saved_epoch = self.start_epoch


class Trainer:
    """One run of :func:`train`: set up, loop over the epochs, and leave the run folder at one of four exits.

    The exits: all ``train.epochs`` done; the time budget spent (``stopped_by_time``); cancelled
    (``cancel`` or Ctrl-C: the last completed epoch is saved); diverged (a non-finite loss: the last good
    epoch is saved, :class:`TrainingDivergedError` raised). The set-up objects (data, model, optimiser)
    are attributes fixed by :meth:`run`'s first steps; what the loop changes lives in :attr:`state`.
    """

    state: LoopState
    """The loop's state: set by :meth:`run` once the model is built (and resumed), read by every exit."""

    def __init__(
        self,
        config: RunConfig,
        data_dir: Path,
        run_dir: Path,
        *,
        resume: bool = False,
        cancel: Cancel = None,
        progress: bool = True,
        callback: Callable[[dict[str, float]], None] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.config, self.t = config, config.train
        self.data_dir, self.run_dir = Path(data_dir), Path(run_dir)
        self.resume, self.cancel, self.progress = resume, cancel, progress
        self.callback, self.overwrite = callback, overwrite
        self.latest = self.run_dir / "checkpoints" / "latest.pt"
        self.fields = log_fields(config)
        self.writer: Any = None
        self.bar: Any = None

    # -- set-up ------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train (or resume) the run; see :func:`train`. Deterministic kernels on the CPU, ``train.tf32`` on
        CUDA, while it runs (the process's settings are restored after)."""
        device = resolve_device(self.t.device)
        with _deterministic_on_cpu(device), _tf32_on_cuda(device, self.t.tf32):
            return self._run()

    def _run(self) -> TrainResult:
        check_folders(self.data_dir, self.run_dir, self.resume, self.overwrite)
        self._start_process()
        saved = resumable_checkpoint(self.run_dir, self.config, self.device) if self.resume else None
        # checked before any long work, as a warm start's checkpoint is
        init_from = self.t.init_from
        warm = read_checkpoint(Path(init_from)) if saved is None and init_from else None
        self._load_data()
        self._build_model(warm)
        start_epoch, history = self._restore(saved) if saved is not None else (0, [])
        self._wrap_distributed()
        self._prepare_run_dir()  # before the state looks for latest.pt: --overwrite removes it
        self.state = self._loop_state(start_epoch, history)
        self.stats_base, self.budget = self._run_stats()
        return self._loop()

    def _start_process(self) -> None:
        """The device, this process's rank in a distributed run, and torch's thread count."""
        self.device = resolve_device(self.t.device)
        self.rank, self.world = _dist_info(self.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if self.t.threads > 0:
            torch.set_num_threads(self.t.threads)

    def _load_data(self) -> None:
        t = self.t
        self.data = SdfDataSet(
            self.data_dir,
            "train",
            t.max_samples_per_shape,
            t.classes,
            seed=t.seed,
            with_surface=surface_samples_per_shape(self.config) > 0,
        )
        if self.data.skipped and self.rank == 0:
            log.warning(
                "%d shape file(s) could not be read and are skipped (see the log above)", len(self.data.skipped)
            )
        if self.config.model.colour and not self.data.has_colour:
            log.warning("%s has no colours: the colour head is trained on nothing", self.data_dir)

    def _build_model(self, warm: dict[str, Any] | None) -> None:
        """The auto-decoder (seeded, warm-started if asked) and Adam over two groups: network, codes."""
        config, data = self.config, self.data
        torch.manual_seed(self.t.seed)
        module = AutoDecoder(config.model, num_shapes=len(data), num_classes=len(data.class_names))
        if config.model.conditioning == "text":
            _text_embeddings(module, data, config.model.text_model)
        if warm is not None:
            _warm_start(module, config, data, warm, Path(str(self.t.init_from)))
        module.to(self.device)
        code_params = list(module.shape_codes.parameters())
        if module.colour_codes is not None:
            code_params += list(module.colour_codes.parameters())
        code_ids = {id(p) for p in code_params}
        net_params = [p for p in module.parameters() if id(p) not in code_ids]
        self.module = module
        self.net: torch.nn.Module = module
        self.optimizer = torch.optim.Adam(
            [{"params": net_params, "lr": self.t.lr_decoder}, {"params": code_params, "lr": self.t.lr_codes}]
        )

    def _loop_state(self, start_epoch: int, history: list[dict[str, float]]) -> LoopState:
        """The loop's state at ``start_epoch``: the clocks go on from the log's last row."""
        last = history[-1] if history else {}
        return LoopState(
            start_epoch=start_epoch,
            history=history,
            train_seconds=float(last.get("seconds", 0.0)),
            cpu_seconds=float(last.get("cpu_seconds") or 0.0),
            checkpoint=self.latest if self.latest.exists() else None,
        )

    def _restore(self, saved: dict[str, Any]) -> tuple[int, list[dict[str, float]]]:
        """Load the resumed checkpoint's weights, optimiser and RNG, so the loop goes on as if never stopped;
        return (its epoch, the log rows up to it)."""
        t, rank = self.t, self.rank
        if saved["shape_ids"] != [s.id for s in self.data.shapes]:
            raise CheckpointError(
                f"{self.latest}: the training shapes differ from {self.data_dir}'s; resume with the same data set."
            )
        self.module.load_state_dict(saved["model_state"])
        self.optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"]["torch"].cpu())
        if "cuda" in saved["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(saved["rng"]["cuda"].cpu(), self.device)
        start_epoch = int(saved["epoch"])
        history = read_log(self.run_dir, start_epoch) if rank == 0 else []
        saved_epochs = saved["config"].get("train", {}).get("epochs", t.epochs)
        stretched = (["curriculum stages"] if t.curriculum else []) + (
            [f"{t.lr_schedule} learning rates"] if t.lr_schedule != "step" else []
        )
        if saved_epochs != t.epochs and stretched and rank == 0:
            log.warning(
                "train.epochs %s -> %s stretches the %s over the new length: the epochs still to come "
                "differ from what the run had planned",
                saved_epochs,
                t.epochs,
                " and ".join(stretched),
            )
        return start_epoch, history

    def _wrap_distributed(self) -> None:
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.module, device_ids=device_ids)

    def _prepare_run_dir(self) -> None:
        """Rank 0: clear an overwritten run, write config.json."""
        if self.rank == 0:
            if self.overwrite:
                clear_run(self.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                self.run_dir / "config.json", {**to_dict(self.config), "data": str(self.data_dir.resolve())}
            )

    def _run_stats(self) -> tuple[dict[str, Any], dict[str, float]]:
        """(stats.json's fixed part, the time budget of the ``max_*minutes`` that are on)."""
        t, data = self.t, self.data
        stats = {
            "shapes": len(data),
            "classes": list(data.class_names),
            "samples_per_shape": t.samples_per_shape,
            "world_size": self.world,
            "device": str(self.device),
            "surface_offset": data.surface_offset,
        }
        switches = (
            "curriculum",
            "curriculum_first_stage",
            "init_from",
            "init_extends",
            "surface_weight",
            "normal_weight",
            "lr_schedule",
            "lr_min_factor",
            "max_minutes",
            "max_cpu_minutes",
        )
        recipe = {k: getattr(t, k) for k in switches if getattr(t, k) != field_default(TrainConfig, k)}
        if recipe:
            stats["recipe"] = recipe
        budget = {k: getattr(t, k) for k in ("max_minutes", "max_cpu_minutes") if getattr(t, k) > 0}
        if budget:
            stats["time_budget"] = {**budget, "stopped_early": False}
        return stats, budget

    # -- the loop and its exits ----------------------------------------------------------------------

    def _loop(self) -> TrainResult:
        """The epochs from the start one on, and the exit each way out of them leaves."""
        self._open_outputs()
        try:
            for epoch in range(self.state.start_epoch, self.t.epochs):
                if self._epoch(epoch):
                    self._stop_for_time()
                    break
        except TrainingDivergedError as exc:
            self._on_diverged(exc)
            raise
        except KeyboardInterrupt:
            self._on_cancel()
        finally:
            self._close_outputs()
        return self._result()

    def _open_outputs(self) -> None:
        """Rank 0: TensorBoard (if installed) and the progress bar."""
        if self.rank != 0:
            return
        self.writer = tensorboard_writer(self.run_dir)
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.t.epochs, initial=self.state.start_epoch, desc="train", unit="epoch", dynamic_ncols=True
            )

    def _close_outputs(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()

    def _epoch(self, epoch: int) -> bool:
        """Train, log and save epoch ``epoch`` (0-based); return whether the time budget ends the run after it."""
        s = self.state
        lrs = learning_rates(self.config, epoch)
        self.optimizer.param_groups[0]["lr"], self.optimizer.param_groups[1]["lr"] = lrs
        self.net.train()
        batches = self._batches(epoch)
        tic, cpu_tic = time.perf_counter(), time.process_time()
        sums = self._reduce(self._steps(epoch, batches))
        done = epoch + 1
        if not all(math.isfinite(v) for v in sums.values()):  # every rank sees the same sums
            raise TrainingDivergedError(done, sums)
        if self.rank == 0:
            s.boundary = training_state(self.module, self.optimizer, done, self.device)
        s.completed = done
        seconds = time.perf_counter() - tic
        s.train_seconds += seconds
        s.cpu_seconds += time.process_time() - cpu_tic
        row = self._log_row(epoch, sums, lrs, seconds)
        out_of_time = self._out_of_time(done)
        s.history.append(row)
        if self.callback:
            self.callback(row)
        if self.rank == 0:
            self._report(row, out_of_time)
        return out_of_time

    def _batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's global batches of shape indices (seeded shuffle; none smaller than the world)."""
        size = self.t.shapes_per_batch
        order = np.random.default_rng([self.t.seed, epoch]).permutation(len(self.data))
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        return [b for b in batches if len(b) >= self.world]

    def _steps(self, epoch: int, batches: list[np.ndarray]) -> dict[str, float]:
        """One optimiser step per global batch; this rank's share of the epoch's mean losses."""
        rank, world = self.rank, self.world
        sums = dict.fromkeys(_loss_keys(self.config), 0.0)
        for global_batch in batches:
            if is_cancelled(self.cancel):
                raise KeyboardInterrupt
            mine = [int(i) for i in global_batch[rank::world]]
            batch = _batch_tensors(self.data, mine, self.config, epoch, self.device)
            losses = _step(self.module, self.net, batch, self.config, epoch, len(global_batch), world, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            self.optimizer.step()
            for k in sums:
                sums[k] += float(losses[k].detach()) / world / len(batches)
        return sums

    def _reduce(self, sums: dict[str, float]) -> dict[str, float]:
        """The global losses: each rank holds its share of them."""
        if self.world == 1:
            return sums
        totals = torch.tensor(list(sums.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        return dict(zip(sums, totals.tolist(), strict=True))

    def _log_row(self, epoch: int, sums: dict[str, float], lrs: tuple[float, float], seconds: float) -> dict:
        t, s = self.t, self.state
        row = {
            "epoch": epoch + 1,
            **sums,
            "lr_decoder": lrs[0],
            "lr_codes": lrs[1],
            "seconds": s.train_seconds,
            "samples_per_s": len(self.data) * t.samples_per_shape / max(seconds, 1e-9),
        }
        if t.max_cpu_minutes > 0:
            row["cpu_seconds"] = s.cpu_seconds
        if t.curriculum:
            row["eps"], row["lambda"] = curriculum_stage(self.config, epoch)
        return row

    def _out_of_time(self, done: int) -> bool:
        """Whether the time budget is spent with epochs still to go (then noted in the stats).

        Rank 0's clock decides for all ranks, so every rank stops after the same epoch.
        """
        t, s = self.t, self.state
        if not self.budget or done >= t.epochs:
            return False
        spent = (t.max_minutes > 0 and s.train_seconds >= 60.0 * t.max_minutes) or (
            t.max_cpu_minutes > 0 and s.cpu_seconds >= 60.0 * t.max_cpu_minutes
        )
        if all_sum(float(self.rank == 0 and spent), self.world, self.device) <= 0:
            return False
        s.stopped_by_time = True
        self.stats_base["time_budget"] = {
            **self.budget,
            "stopped_early": True,
            "epochs_done": done,
            "seconds": s.train_seconds,
            "cpu_seconds": s.cpu_seconds,
        }
        return True

    def _report(self, row: dict[str, float], out_of_time: bool) -> None:
        """Rank 0: the progress bar, TensorBoard, and the checkpoint when one is due."""
        t, done = self.t, int(row["epoch"])
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                loss=f"{row['loss']:.4f}",
                sdf=f"{row['sdf']:.4f}",
                col=f"{row['colour']:.3f}",
                pts=f"{row['samples_per_s'] / 1e3:.0f}k/s",
            )
        if self.writer is not None and done % max(1, t.log_every) == 0:
            for k in self.fields:
                if k not in ("epoch", "seconds"):
                    self.writer.add_scalar(f"train/{k}", row[k], done)
        keep_epoch = done % max(1, t.checkpoint_every) == 0
        if keep_epoch or done == t.epochs or out_of_time:
            self._save_boundary(keep_epoch)

    def _save_boundary(self, keep_epoch: bool) -> None:
        """Save the last completed epoch (latest.pt, the log, stats.json; ``keep_epoch``: epoch_NNNN.pt too)."""
        s = self.state
        assert s.boundary is not None  # set at the end of every finished epoch, and only then is this called
        s.checkpoint = save_epoch(
            self.run_dir,
            s.boundary,
            self.data,
            self.config,
            self.stats_base,
            s.history,
            keep_epoch=keep_epoch,
            saved_epoch=s.saved_epoch,
        )
        s.saved_epoch = int(s.boundary["epoch"])

    def _stop_for_time(self) -> None:
        s, t = self.state, self.t
        if self.rank == 0:
            log.warning(
                "stopped at the time budget after %d epochs (%.1f s, %.1f CPU-s of train.max_minutes=%g"
                " / train.max_cpu_minutes=%g, counted over the whole run); to go on, --resume with a "
                "larger budget (--set train.max_minutes=M / train.max_cpu_minutes=M, or 0 for none)",
                s.completed,
                s.train_seconds,
                s.cpu_seconds,
                t.max_minutes,
                t.max_cpu_minutes,
            )

    def _on_diverged(self, exc: TrainingDivergedError) -> None:
        """The diverged epoch's weights are NaN/inf: keep them out of every file, but save the last good
        epoch when it is newer than the last checkpoint (as a cancel does); complete the message."""
        s = self.state
        if self.rank == 0 and s.boundary is not None and s.boundary["epoch"] > s.saved_epoch:
            s.history = [row for row in s.history if int(row["epoch"]) <= s.boundary["epoch"]]
            # the checkpoint path is not kept: the error leaves train() without a result
            save_epoch(
                self.run_dir,
                s.boundary,
                self.data,
                self.config,
                self.stats_base,
                s.history,
                keep_epoch=False,
                saved_epoch=s.saved_epoch,
            )
            s.saved_epoch = int(s.boundary["epoch"])
        exc.explain(self.run_dir, self.config, s.saved_epoch)

    def _on_cancel(self) -> None:
        """Save the last completed epoch from its in-memory copy: the live weights, optimiser and RNG may
        already hold part of the interrupted epoch, and saving those under the completed epoch's number
        would break exact resume."""
        s = self.state
        s.cancelled = True
        last_done = s.boundary["epoch"] if s.boundary is not None else s.completed
        s.history = [row for row in s.history if int(row["epoch"]) <= last_done]
        if self.rank == 0 and s.boundary is not None and last_done > s.saved_epoch:
            self._save_boundary(keep_epoch=False)
        log.warning("training cancelled after epoch %s; continue with --resume", last_done)

    def _result(self) -> TrainResult:
        s = self.state
        epochs_done = int(s.history[-1]["epoch"]) if s.history else s.start_epoch
        return TrainResult(
            run_dir=self.run_dir,
            checkpoint=s.checkpoint,
            epochs_done=epochs_done,
            cancelled=s.cancelled,
            history=s.history,
            stopped_by_time=s.stopped_by_time,
        )
