"""What a training run keeps in its folder: the log, the checkpoints, and the checks around them.

A run folder (``main.py train --out RUN``) holds ``config.json``, ``log.csv`` (one row per epoch),
``stats.json``, ``checkpoints/latest.pt`` (every epoch, for ``--resume``), ``checkpoints/epoch_NNNN.pt``
(every ``train.save_every`` epochs) and ``tb/`` (TensorBoard, when installed). Every write is atomic, a
failed one says which checkpoint survived, and ``--overwrite`` removes only what a run writes
(:data:`RUN_FILES`). The loop that fills the folder is :class:`core.training.trainer.Trainer`.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import logging
from pathlib import Path
from typing import Any, Iterator

import torch

from core.data.training_set import SdfDataSet
from core.model.autodecoder import AutoDecoder
from core.model.checkpoint import read_checkpoint, save_checkpoint
from core.training.config import RunConfig, resume_changes
from core.utils.config_io import to_dict
from core.utils.errors import CheckpointError, ConfigError, DataSetError
from core.utils.io_utils import atomic_write, atomic_write_json

__all__ = [
    "RUN_FILES",
    "check_folders",
    "clear_run",
    "log_fields",
    "read_log",
    "resumable_checkpoint",
    "save_epoch",
    "tensorboard_writer",
    "training_state",
]

log = logging.getLogger(__name__)

_LOG_FIELDS = ["epoch", "loss", "sdf", "colour", "reg", "lr_decoder", "lr_codes", "seconds", "samples_per_s"]


def log_fields(config: RunConfig) -> list[str]:
    """log.csv's columns: the default ones, plus those of the recipe switches that are on."""
    t = config.train
    extra = ["eps", "lambda"] if t.curriculum else []
    extra += ["surface"] if t.surface_weight > 0 else []
    extra += ["normal"] if t.normal_weight > 0 else []
    clock = ["cpu_seconds"] if t.max_cpu_minutes > 0 else []
    return _LOG_FIELDS[:-2] + extra + _LOG_FIELDS[-2:] + clock


def _write_log(run_dir: Path, rows: list[dict[str, float]], fields: list[str] | None = None) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields or _LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(run_dir / "log.csv", lambda h: h.write(buffer.getvalue().encode("utf-8")))


def read_log(run_dir: Path, upto_epoch: int) -> list[dict[str, float]]:
    path = run_dir / "log.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        # a column added on resume (cpu_seconds of a budget given later) is empty in the rows before it
        rows = [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(handle)
            if float(row["epoch"]) <= upto_epoch
        ]
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


def training_state(module: AutoDecoder, optimizer, epoch: int, device: torch.device) -> dict[str, Any]:
    """Everything an exact resume needs at the end of ``epoch``: weights and codes, optimiser, RNG."""
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)  # dropout on the GPU draws from the CUDA generator
    return {
        "epoch": epoch,
        "model_state": _cpu_copy(module.state_dict()),
        "optimizer": _cpu_copy(optimizer.state_dict()),
        "rng": rng,
    }


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


def _has_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds training results (a checkpoint or a log), not merely a config.json."""
    folder = run_dir / "checkpoints"
    return (run_dir / "log.csv").exists() or (folder.is_dir() and any(folder.glob("*.pt")))


def check_folders(data_dir: Path, run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse impossible folders and a run that would silently replace an earlier one."""
    if resume and overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite replaces it; choose one.")
    if data_dir.exists() and not data_dir.is_dir():
        raise DataSetError(
            f"{data_dir}: is a file, not a data set folder. Pass the folder `main.py preprocess "
            "--out DIR` wrote (it holds manifest.json and SdfSamples/)."
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: is a file, not a run folder. Pass a new folder (or an earlier run's) as --out.")
    if not resume and not overwrite and _has_run(run_dir):
        raise ConfigError(
            f"{run_dir}: already holds a training run (checkpoints/log.csv). Continue it with "
            "--resume, replace it with --overwrite, or choose a new --out folder."
        )


RUN_FILES = (
    "log.csv",
    "stats.json",
    "config.json",
    "checkpoints/latest.pt",
    "checkpoints/epoch_*.pt",
    "tb/events.out.tfevents.*",
)
"""What a training run writes into its folder: all that ``--overwrite`` removes of an earlier run."""


def clear_run(run_dir: Path) -> None:
    """Remove an earlier run's results before an ``overwrite`` run writes its own (no stale epoch files).

    Only the files a run writes (:data:`RUN_FILES`, regular files, no links followed): anything else a
    user keeps in the folder (notes, an exported model) stays, and no folder is removed.
    """
    for pattern in RUN_FILES:
        for path in run_dir.glob(pattern):
            if path.is_file() and not path.is_symlink():
                path.unlink()


def resumable_checkpoint(run_dir: Path, config: RunConfig, device: torch.device) -> dict[str, Any]:
    """RUN/checkpoints/latest.pt, checked to continue with ``config``; the allowed changes are logged."""
    latest = run_dir / "checkpoints" / "latest.pt"
    if not latest.exists():
        raise CheckpointError(
            f"{latest}: nothing to resume. Start without --resume, or pass the run folder of an earlier run."
        )
    saved = read_checkpoint(latest, map_location=device)
    if "optimizer" not in saved or "rng" not in saved or "epoch" not in saved:
        raise CheckpointError(f"{latest}: an inference-only checkpoint (no optimiser state); it cannot be resumed.")
    changes = resume_changes(saved["config"], config, str(run_dir))
    done = int(saved["epoch"])
    if config.train.epochs < done:
        raise ConfigError(
            f"{run_dir}: train.epochs={config.train.epochs} but the run has already trained {done} "
            f"epochs; resume with --epochs {done} or more."
        )
    for change in changes:
        log.info("resuming %s at epoch %d with %s", run_dir, done, change)
    return saved


@contextlib.contextmanager
def _saving(path: Path, epoch: int, kept: str) -> Iterator[None]:
    """Turn a failed write (a full disk, a folder made read-only) into one :class:`CheckpointError` that says
    which checkpoint survived: the atomic writes never leave half a file under the final name."""
    try:
        yield
    except OSError as exc:
        raise CheckpointError(
            f"{path}: could not save epoch {epoch} ({exc.strerror or exc}). {kept} Free disk "
            "space (or make the folder writable), then continue with --resume."
        ) from None


def _kept(latest: Path, epoch: int | None) -> str:
    if epoch and latest.is_file():
        return f"The last good checkpoint, {latest} (epoch {epoch}), is kept."
    return "No checkpoint of this run was saved yet."


def save_epoch(
    run_dir: Path,
    state: dict[str, Any],
    data,
    config,
    stats_base: dict,
    history: list,
    keep_epoch: bool,
    saved_epoch: int | None = None,
) -> Path:
    epoch = int(state["epoch"])
    last = history[-1] if history else {}
    stats = {
        **stats_base,
        "epochs": epoch,
        "train_seconds": float(last.get("seconds", 0.0)),
        **({"train_cpu_seconds": float(last["cpu_seconds"])} if "cpu_seconds" in last else {}),
        "final_losses": {k: float(last[k]) for k in ("loss", "sdf", "colour", "reg", "surface", "normal") if k in last},
    }
    payload = _payload(state, data, config, stats)
    folder = run_dir / "checkpoints"
    latest = folder / "latest.pt"
    with _saving(latest, epoch, _kept(latest, saved_epoch)):
        save_checkpoint(latest, payload)
    with _saving(folder / f"epoch_{epoch:04d}.pt", epoch, _kept(latest, epoch)):
        if keep_epoch:
            save_checkpoint(folder / f"epoch_{epoch:04d}.pt", payload)
        _write_log(run_dir, history, log_fields(config))
        atomic_write_json(run_dir / "stats.json", stats)
    return latest


def tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: the CSV log still has everything
        log.info("tensorboard is not installed; logging to log.csv only")
        return None
    return SummaryWriter(str(run_dir / "tb"))
