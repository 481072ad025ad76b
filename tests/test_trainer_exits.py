"""The four ways out of :class:`core.training.trainer.Trainer`'s epoch loop, each on the real trainer and the
analytic toy data set: finished, time budget spent, cancelled, diverged.

Each exit must leave a run folder that ``--resume`` continues: latest.pt of the last *completed* epoch
(written atomically: no temporary file left), log.csv and stats.json up to that epoch and no further,
and the flag (or the error) that tells the caller why the run ended. Resuming the interrupted runs must
give bit for bit the state of the straight run. Two optimiser steps an epoch on a 1-thread CPU: seconds.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from core.model.checkpoint import read_checkpoint
from core.training import build_run_config, train
from core.training.config import RunConfig
from core.training.trainer import Trainer, TrainingDivergedError
from tests.test_training import _assert_same_state  # what an exact resume promises

BASE = [
    "train.samples_per_shape=128",
    "train.shapes_per_batch=2",
    "train.threads=1",
    "train.device=cpu",
    "model.dropout=0.1",
]  # 4 training shapes: 2 steps an epoch; dropout makes the torch RNG matter
EPOCHS = 3

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _config(epochs: int = EPOCHS, *extra: str) -> RunConfig:
    return build_run_config("tiny", overrides=[f"train.epochs={epochs}", *BASE, *extra])


def _latest(run: Path) -> dict:
    return read_checkpoint(run / "checkpoints" / "latest.pt")  # refuses a damaged or non-finite checkpoint


def _log_epochs(run: Path) -> list[int]:
    with open(run / "log.csv", newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _stats(run: Path) -> dict:
    return json.loads((run / "stats.json").read_text())


def _no_temp_files(run: Path) -> None:
    """Every file is written to a temporary name and renamed over the final one (core.utils.io_utils)."""
    leftovers = [p.name for p in run.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def data_dir(toy_data_dir):
    return toy_data_dir


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory):
    """The run every interrupted one must equal once resumed: EPOCHS epochs in one go."""
    run = tmp_path_factory.mktemp("straight")
    train(_config(), data_dir, run, progress=False)
    return _latest(run)


def test_finished_saves_the_last_epoch_and_resumes_to_itself(data_dir, straight, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(_config(), data_dir, run, progress=False)
    result = trainer.run()
    assert result.epochs_done == EPOCHS and not result.cancelled and not result.stopped_by_time
    assert result.checkpoint == run / "checkpoints" / "latest.pt"
    assert [int(r["epoch"]) for r in result.history] == list(range(1, EPOCHS + 1))
    assert trainer.state.completed == trainer.state.saved_epoch == EPOCHS
    latest = _latest(run)
    _assert_same_state(latest, straight)  # same seed, same run
    assert _log_epochs(run) == list(range(1, EPOCHS + 1)) and _stats(run)["epochs"] == EPOCHS
    assert (run / "config.json").is_file()
    _no_temp_files(run)
    again = train(_config(), data_dir, run, resume=True, progress=False)  # nothing left to train
    assert again.epochs_done == EPOCHS and not again.cancelled and not again.stopped_by_time
    _assert_same_state(_latest(run), straight)


def test_time_budget_spent_saves_the_epoch_and_resume_goes_on(data_dir, straight, tmp_path, caplog):
    """A budget of 1e-9 minutes is spent by any first epoch: the run stops after it, whatever the machine."""
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="core.training.trainer"):
        result = train(_config(EPOCHS, "train.max_minutes=1e-9"), data_dir, run, progress=False)
    assert result.stopped_by_time and not result.cancelled and result.epochs_done == 1
    assert result.checkpoint == run / "checkpoints" / "latest.pt" and _latest(run)["epoch"] == 1
    assert _log_epochs(run) == [1]
    budget = _stats(run)["time_budget"]
    assert budget["stopped_early"] and budget["epochs_done"] == 1 and budget["max_minutes"] == 1e-9
    assert "stopped at the time budget after 1 epochs" in caplog.text and "--resume" in caplog.text
    _no_temp_files(run)
    done = train(_config(EPOCHS, "train.max_minutes=0"), data_dir, run, resume=True, progress=False)
    assert done.epochs_done == EPOCHS and not done.stopped_by_time and _log_epochs(run) == [1, 2, 3]
    _assert_same_state(_latest(run), straight)


def test_cancelled_mid_epoch_saves_the_last_completed_epoch(data_dir, straight, tmp_path, caplog):
    """The cancel comes before epoch 2's second step: epoch 2's first step must not be saved as epoch 1."""
    run = tmp_path / "run"
    checks = {"n": 0}

    def cancel() -> bool:  # asked before each step: calls 1-2 are epoch 1, call 4 is epoch 2's second step
        checks["n"] += 1
        return checks["n"] >= 4

    trainer = Trainer(_config(), data_dir, run, cancel=cancel, progress=False)
    with caplog.at_level(logging.WARNING, logger="core.training.trainer"):
        result = trainer.run()
    assert result.cancelled and not result.stopped_by_time and result.epochs_done == 1 and checks["n"] == 4
    assert trainer.state.completed == trainer.state.saved_epoch == 1
    assert result.checkpoint == run / "checkpoints" / "latest.pt" and _latest(run)["epoch"] == 1
    assert [int(r["epoch"]) for r in result.history] == [1] and _log_epochs(run) == [1]
    assert _stats(run)["epochs"] == 1
    assert "training cancelled after epoch 1; continue with --resume" in caplog.text
    _no_temp_files(run)
    done = train(_config(), data_dir, run, resume=True, progress=False)
    assert done.epochs_done == EPOCHS and not done.cancelled
    _assert_same_state(_latest(run), straight)


def test_diverged_keeps_the_last_good_epoch_and_raises(data_dir, tmp_path):
    """The rates jump by 1e22 after epoch 2: epoch 3's loss is not finite; epoch 2 is saved, not epoch 3."""
    run = tmp_path / "run"
    config = _config(6, "train.lr_schedule=step", "train.lr_interval=2", "train.lr_factor=1e22")
    trainer = Trainer(config, data_dir, run, progress=False)
    with pytest.raises(TrainingDivergedError) as caught:
        trainer.run()
    assert caught.value.epoch == 3
    text = str(caught.value)
    assert text.startswith("training diverged in epoch 3: the loss is not finite")
    assert f"The last good checkpoint, epoch 2, is kept in {run / 'checkpoints' / 'latest.pt'}" in text
    assert trainer.state.saved_epoch == 2 and trainer.state.completed == 2
    latest = _latest(run)  # read_checkpoint refuses NaN weights: these are finite
    assert latest["epoch"] == 2
    assert _log_epochs(run) == [1, 2] and _stats(run)["epochs"] == 2
    assert not (run / "checkpoints" / "epoch_0003.pt").exists()
    _no_temp_files(run)
    again = train(
        _config(2, "train.lr_schedule=step", "train.lr_interval=2", "train.lr_factor=1e22"),
        data_dir,
        run,
        resume=True,
        progress=False,
    )  # resumable: continued to its 2 epochs, nothing left to do
    assert again.epochs_done == 2 and not again.cancelled
