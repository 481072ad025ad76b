"""The auto-decoder trainer on the analytic toy data set: learning, exact resume, determinism,
checkpoint files, atomic writes, cancelling, damaged data, the CLI and a 2-process gloo run."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.training_set import SdfDataSet
from core.model import load_trained_model
from core.model.autodecoder import AutoDecoder
from core.model.checkpoint import read_checkpoint
from core.training import RunConfig, build_run_config, train
from core.utils.config_io import from_dict, to_dict
from core.utils.errors import CheckpointError, ConfigError, DataSetError

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IDS = ["ball0", "ball1", "slab0", "slab1"]  # sorted by (class, id)
# 4 training shapes, 2 per batch: two optimiser steps per epoch (so a cancel can land mid-epoch).
BASE = [
    "train.samples_per_shape=128",
    "train.shapes_per_batch=2",
    "train.threads=1",
    "train.device=cpu",
    "train.checkpoint_every=50",
    "train.seed=3",
]


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def data_dir(toy_data_dir):
    return toy_data_dir


def _config(epochs: int, *extra: str, preset: str = "tiny") -> RunConfig:
    return build_run_config(preset, overrides=[f"train.epochs={epochs}", *BASE, *extra])


def _latest(run_dir: Path) -> dict:
    return read_checkpoint(run_dir / "checkpoints" / "latest.pt")


def _assert_same_state(a: dict, b: dict) -> None:
    """Weights, codes, optimiser moments and RNG exactly equal."""
    assert a["epoch"] == b["epoch"]
    assert a["model_state"].keys() == b["model_state"].keys()
    assert {"shape_codes.weight", "colour_codes.weight"} <= a["model_state"].keys()
    for key, value in a["model_state"].items():
        assert torch.equal(value, b["model_state"][key]), key
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for key in sa[i]:
            assert torch.equal(torch.as_tensor(sa[i][key]), torch.as_tensor(sb[i][key])), (i, key)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def _log_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _losses(rows) -> list[tuple[float, ...]]:
    keys = ("epoch", "loss", "sdf", "colour", "reg", "lr_decoder", "lr_codes")
    return [tuple(float(r[k]) for k in keys) for r in rows]


def _no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.rglob("*.tmp")]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """A straight 5-epoch run with dropout (so the torch RNG matters)."""
    run = tmp_path_factory.mktemp("reference")
    result = train(_config(5, "model.dropout=0.1"), data_dir, run, progress=False)
    assert result.epochs_done == 5 and not result.cancelled
    return run


# -- (a) learning ------------------------------------------------------------------------------


def test_loss_decreases(data_dir, tmp_path):
    config = _config(60, "train.samples_per_shape=256", "train.shapes_per_batch=4", "train.lr_interval=30")
    result = train(config, data_dir, tmp_path / "run", progress=False)
    h = result.history
    assert [r["epoch"] for r in h] == list(range(1, 61))
    first = {k: np.mean([r[k] for r in h[:5]]) for k in ("loss", "sdf", "colour")}
    last = {k: np.mean([r[k] for r in h[-5:]]) for k in ("loss", "sdf", "colour")}
    assert last["loss"] < 0.8 * first["loss"], (first, last)
    assert last["sdf"] < 0.8 * first["sdf"], (first, last)
    assert last["colour"] < first["colour"], (first, last)
    # DeepSDF's step schedule, and the regulariser's linear warm-up from 0
    assert h[0]["lr_decoder"] == pytest.approx(1e-3) and h[29]["lr_codes"] == pytest.approx(2e-3)
    assert h[30]["lr_decoder"] == pytest.approx(5e-4) and h[30]["lr_codes"] == pytest.approx(1e-3)
    assert h[0]["reg"] == 0.0 and 0 < h[1]["reg"] < h[50]["reg"]
    # the trained model separates inside from outside on its own training shapes
    model = load_trained_model(result.checkpoint, device="cpu")
    ball = model.index_of("ball1")  # radius 0.7
    with torch.no_grad():
        sdf, rgb = model.decode(
            torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.98]]),
            model.shape_codes[ball],
            model.colour_codes[ball],
            model.condition("ball"),
        )
    assert sdf[0] < 0 < sdf[1]


# -- (b) exact resume, (c) determinism ---------------------------------------------------------


def test_exact_resume_equals_straight_run(data_dir, reference, tmp_path):
    run = tmp_path / "run"
    first = train(_config(2, "model.dropout=0.1"), data_dir, run, progress=False)
    assert first.epochs_done == 2 and _latest(run)["epoch"] == 2
    second = train(_config(5, "model.dropout=0.1"), data_dir, run, resume=True, progress=False)
    assert second.epochs_done == 5 and [r["epoch"] for r in second.history] == [1, 2, 3, 4, 5]
    _assert_same_state(_latest(run), _latest(reference))
    assert _losses(_log_rows(run)) == _losses(_log_rows(reference))
    # resuming a finished run trains nothing and keeps the checkpoint
    again = train(_config(5, "model.dropout=0.1"), data_dir, run, resume=True, progress=False)
    assert again.epochs_done == 5 and again.checkpoint == run / "checkpoints" / "latest.pt"
    _assert_same_state(_latest(run), _latest(reference))


def test_same_seed_same_run(data_dir, reference, tmp_path):
    train(_config(5, "model.dropout=0.1"), data_dir, tmp_path / "again", progress=False)
    _assert_same_state(_latest(tmp_path / "again"), _latest(reference))
    train(_config(5, "model.dropout=0.1", "train.seed=4"), data_dir, tmp_path / "other", progress=False)
    other, ref = _latest(tmp_path / "other"), _latest(reference)
    assert not torch.equal(other["model_state"]["shape_codes.weight"], ref["model_state"]["shape_codes.weight"])


# -- (d) files ---------------------------------------------------------------------------------


def test_run_folder_files(data_dir, tmp_path):
    run = tmp_path / "run"
    config = _config(5, "train.checkpoint_every=2")
    result = train(config, data_dir, run, progress=False)
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_0002.pt", "epoch_0004.pt", "latest.pt"]
    assert result.checkpoint == ckpts / "latest.pt"
    latest, e2, e4 = (read_checkpoint(ckpts / n) for n in ("latest.pt", "epoch_0002.pt", "epoch_0004.pt"))
    assert (latest["epoch"], e2["epoch"], e4["epoch"]) == (5, 2, 4)
    assert not torch.equal(e4["model_state"]["shape_codes.weight"], latest["model_state"]["shape_codes.weight"])
    # the stored config is the run config
    assert latest["config"] == to_dict(config)
    assert from_dict(RunConfig, latest["config"]) == config
    saved = json.loads((run / "config.json").read_text())
    assert saved == {**to_dict(config), "data": str(data_dir)}
    assert latest["shape_ids"] == TRAIN_IDS and latest["class_names"] == ["ball", "slab"]
    assert latest["shape_classes"] == ["ball", "ball", "slab", "slab"]
    assert set(latest["normalization"]) == set(TRAIN_IDS)
    rows = _log_rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert set(rows[0]) == {
        "epoch",
        "loss",
        "sdf",
        "colour",
        "reg",
        "lr_decoder",
        "lr_codes",
        "seconds",
        "samples_per_s",
    }
    stats = json.loads((run / "stats.json").read_text())
    assert stats["epochs"] == 5 and stats["shapes"] == 4 and stats["world_size"] == 1 and stats["device"] == "cpu"
    assert stats == latest["stats"]
    assert stats["final_losses"]["loss"] == pytest.approx(float(rows[-1]["loss"]))
    _no_temp_files(run)
    # resume to 6: the log keeps its rows and its integer epochs
    train(_config(6, "train.checkpoint_every=2"), data_dir, run, resume=True, progress=False)
    assert [r["epoch"] for r in _log_rows(run)] == ["1", "2", "3", "4", "5", "6"]
    assert _losses(_log_rows(run))[:5] == _losses(rows)


# -- (e) atomic checkpoint writes --------------------------------------------------------------


def test_interrupted_checkpoint_write_keeps_previous(data_dir, tmp_path, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj, handle, *args, **kwargs):
        # Each checkpoint writes latest.pt, then epoch_NNNN.pt: call 3 is the second write of
        # latest.pt (epoch 2). It dies half way through, as a full disk would.
        calls["n"] += 1
        if calls["n"] == 3:
            assert obj["epoch"] == 2
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise OSError(28, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)  # what core.utils.io_utils.atomic_torch_save calls
    run = tmp_path / "run"
    with pytest.raises(
        CheckpointError,
        match=r"could not save epoch 2 \(No space left on device\)\. The last good "
        r"checkpoint, .*latest.pt \(epoch 1\), is kept",
    ):
        train(_config(3, "train.checkpoint_every=1"), data_dir, run, progress=False)
    monkeypatch.undo()
    assert calls["n"] == 3
    ckpts = run / "checkpoints"
    _no_temp_files(run)
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_0001.pt", "latest.pt"]
    latest, e1 = read_checkpoint(ckpts / "latest.pt"), read_checkpoint(ckpts / "epoch_0001.pt")
    assert latest["epoch"] == 1
    for key, value in e1["model_state"].items():
        assert torch.equal(latest["model_state"][key], value)
    # and the run resumes from it
    result = train(_config(3, "train.checkpoint_every=1"), data_dir, run, resume=True, progress=False)
    assert result.epochs_done == 3 and _latest(run)["epoch"] == 3


# -- (f) cancel --------------------------------------------------------------------------------


def test_cancel_event_then_resume(data_dir, reference, tmp_path):
    run = tmp_path / "run"
    stop = threading.Event()
    seen = []

    def callback(row):
        seen.append(row["epoch"])
        if row["epoch"] == 2:
            stop.set()

    config = _config(5, "model.dropout=0.1")
    result = train(config, data_dir, run, cancel=stop, callback=callback, progress=False)
    assert result.cancelled and result.epochs_done == 2 and seen == [1, 2]
    assert result.checkpoint == run / "checkpoints" / "latest.pt"
    assert _latest(run)["epoch"] == 2
    assert [r["epoch"] for r in _log_rows(run)] == ["1", "2"]
    assert json.loads((run / "stats.json").read_text())["epochs"] == 2
    _no_temp_files(run)
    done = train(config, data_dir, run, resume=True, progress=False)
    assert done.epochs_done == 5 and not done.cancelled
    _assert_same_state(_latest(run), _latest(reference))


def test_cancel_mid_epoch_saves_last_completed_epoch(data_dir, reference, tmp_path):
    """A cancel between the two steps of epoch 3 must not save epoch 3's first step as 'epoch 2'."""
    run = tmp_path / "run"
    checks = {"n": 0}

    def cancel():  # checked before each step: 2 steps per epoch, so call 6 is epoch 3's second step
        checks["n"] += 1
        return checks["n"] >= 6

    config = _config(5, "model.dropout=0.1")
    result = train(config, data_dir, run, cancel=cancel, progress=False)
    assert result.cancelled and result.epochs_done == 2 and checks["n"] == 6
    assert _latest(run)["epoch"] == 2
    train(config, data_dir, run, resume=True, progress=False)
    _assert_same_state(_latest(run), _latest(reference))


def test_cancel_before_first_epoch_writes_nothing(data_dir, tmp_path):
    result = train(_config(3), data_dir, tmp_path / "run", cancel=lambda: True, progress=False)
    assert result.cancelled and result.epochs_done == 0 and result.checkpoint is None
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- (g) resume errors -------------------------------------------------------------------------


def test_resume_errors(data_dir, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(_config(2), data_dir, run, resume=True, progress=False)
    train(_config(1), data_dir, run, progress=False)
    with pytest.raises(
        ConfigError,
        match=r"other settings \(model.hidden_dims: \[32, 32, 32, 32\] in the run, "
        r"\[16, 16, 16, 16\] now\)",
    ):
        train(_config(2, "model.hidden_dims=[16,16,16,16]"), data_dir, run, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"other settings \(model.conditioning: 'embedding' in the run, 'onehot'"):
        train(_config(2, "model.conditioning=onehot"), data_dir, run, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"train.classes: None in the run, \['ball'\] now"):
        train(_config(2, 'train.classes=["ball"]'), data_dir, run, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"train.lr_decoder: 0.001 in the run, 0.002 now; train.seed: 3 in the run"):
        train(_config(2, "train.lr_decoder=0.002", "train.seed=4"), data_dir, run, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="training shapes differ"):  # same settings, other data
        train(_config(2), _strip_one_shape(data_dir, tmp_path / "fewer"), run, resume=True, progress=False)
    train(_config(3), data_dir, run, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"train.epochs=2 but the run has already trained 3 epochs"):
        train(_config(2), data_dir, run, resume=True, progress=False)
    assert _latest(run)["epoch"] == 3  # nothing was overwritten


def _strip_one_shape(src: Path, dst: Path) -> Path:
    """A copy of the data set without the training shape slab1."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["shapes"] = [r for r in manifest["shapes"] if r["id"] != "slab1"]
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


# -- (h) damaged data --------------------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif how == "no_arrays":
        np.savez(path, points=np.zeros((10, 4), np.float32))
    elif how == "nan":
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["pos"][3, 3] = np.nan
        np.savez(path, **arrays)
    elif how == "wrong_shape":
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["neg"] = arrays["neg"][:, :3]
        np.savez(path, **arrays)
    elif how == "missing":
        path.unlink()


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "no_arrays", "nan", "wrong_shape", "missing"])
def test_damaged_npz_is_skipped(data_dir, tmp_path, how, caplog):
    data = Path(shutil.copytree(data_dir, tmp_path / "data"))
    bad = data / "SdfSamples" / "toy" / "ball" / "ball1.npz"
    _damage(bad, how)
    with caplog.at_level("WARNING", logger="core.data.training_set"):
        ds = SdfDataSet(data, "train")
    assert [s.id for s in ds.shapes] == ["ball0", "slab0", "slab1"]
    assert [p for p, _ in ds.skipped] == [str(bad)]
    assert any("skipping" in r.message and "ball1.npz" in r.message for r in caplog.records)


def test_training_skips_damaged_file(data_dir, tmp_path, caplog):
    data = Path(shutil.copytree(data_dir, tmp_path / "data"))
    _damage(data / "SdfSamples" / "toy" / "slab" / "slab0.npz", "truncated")
    with caplog.at_level("WARNING"):
        result = train(_config(2), data, tmp_path / "run", progress=False)
    assert result.epochs_done == 2
    assert _latest(tmp_path / "run")["shape_ids"] == ["ball0", "ball1", "slab1"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "slab0.npz" in messages and "could not be read and are skipped" in messages


def test_all_files_damaged_is_a_clear_error(data_dir, tmp_path):
    data = Path(shutil.copytree(data_dir, tmp_path / "data"))
    for sid in TRAIN_IDS:
        cls = sid[:-1]
        _damage(data / "SdfSamples" / "toy" / cls / f"{sid}.npz", "empty")
    with pytest.raises(DataSetError, match=r"no readable shapes in split 'train' \(4 unreadable\)"):
        SdfDataSet(data, "train")


def test_data_without_colour_trains_geometry(data_dir, tmp_path, caplog):
    data = _strip_colours(data_dir, tmp_path / "nocol")
    with caplog.at_level("WARNING"):
        result = train(_config(2), data, tmp_path / "run", progress=False)
    assert result.epochs_done == 2 and all(r["colour"] == 0.0 for r in result.history)
    assert "no colours" in " ".join(r.getMessage() for r in caplog.records)


def _strip_colours(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for f in dst.rglob("*.npz"):
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files if "rgb" not in k}
        np.savez(f, **arrays)
    return dst


# -- (i) the CLI -------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    from core.commands import train_command

    parser = argparse.ArgumentParser(prog="main.py train")
    train_command.add_arguments(parser)
    return train_command.run(parser.parse_args(list(argv)))


def test_train_command_with_config_file_and_overrides(data_dir, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(
        textwrap.dedent("""
        [model]
        preset = "tiny"
        dropout = 0.1
        colour_hidden = 8

        [train]
        epochs = 5
        samples_per_shape = 64
        shapes_per_batch = 2
        threads = 1
        checkpoint_every = 50
    """)
    )
    run = tmp_path / "run"
    common = [
        "--data",
        str(data_dir),
        "--out",
        str(run),
        "--config",
        str(toml),
        "--device",
        "cpu",
        "--no-progress",
        "--conditioning",
        "onehot",
        "--set",
        "model.hidden_dims=[24,24,24,24]",
    ]
    assert _cli(*common, "--set", "train.epochs=2") == 0
    assert "trained 2 epochs" in capsys.readouterr().out
    saved = json.loads((run / "config.json").read_text())
    model, tr = saved["model"], saved["train"]
    assert model["preset"] == "tiny" and model["code_size"] == 8  # the file's preset, not --preset's default
    assert model["dropout"] == 0.1 and model["colour_hidden"] == 8  # from the file
    assert model["hidden_dims"] == [24, 24, 24, 24] and model["conditioning"] == "onehot"  # --set, switch
    assert tr["epochs"] == 2 and tr["samples_per_shape"] == 64 and tr["device"] == "cpu"  # --set beats the file
    ckpt = _latest(run)
    assert ckpt["epoch"] == 2 and ckpt["config"]["model"] == model
    loaded = load_trained_model(run / "checkpoints" / "latest.pt", device="cpu")
    assert loaded.conditioning == "onehot" and loaded.condition("slab").tolist() == [0.0, 1.0]
    # --resume with the --epochs shortcut (applied after --set)
    assert _cli(*common, "--set", "train.epochs=2", "--resume", "--epochs", "3") == 0
    assert "trained 3 epochs" in capsys.readouterr().out and _latest(run)["epoch"] == 3


def test_train_command_errors(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = = 3\n")
    out = ["--data", str(data_dir), "--out", str(tmp_path / "run"), "--no-progress"]
    assert _cli(*out, "--config", str(bad)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(bad) in err and "TOML" in err
    assert _cli(*out, "--preset", "tiny", "--set", "train.epoch=3") == 2
    err = capsys.readouterr().err
    assert "unknown setting(s) ['epoch']" in err and "'epochs'" in err
    assert (
        _cli(
            "--data",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "tiny",
            "--no-progress",
            "--epochs",
            "1",
        )
        == 2
    )
    assert "manifest.json" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- (j) distributed ---------------------------------------------------------------------------

_DIST_SCRIPT = """
import json, os, sys
import torch
import torch.distributed as dist
import core.training.trainer as trainer
from core.training import build_run_config, train

modules = []


class Recording(trainer.AutoDecoder):  # the real AutoDecoder; only remembers the instance
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        modules.append(self)


trainer.AutoDecoder = Recording
spec = json.loads(sys.argv[1])
config = build_run_config("tiny", overrides=spec["overrides"])
for i, (data, run) in enumerate(spec["runs"]):
    result = train(config, data, run, progress=False)
    rank = dist.get_rank()
    out = os.environ.get("RANK_STATE_DIR")
    if out and rank != 0:
        torch.save(modules[-1].state_dict(), os.path.join(out, f"rank{rank}_{i}.pt"))
    print(f"rank {rank} world {dist.get_world_size()} run {i} epochs {result.epochs_done}", flush=True)
dist.barrier()
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_two_cpu_processes_match_single_process(data_dir, tmp_path):
    overrides = [
        "train.epochs=3",
        "train.samples_per_shape=128",
        "train.shapes_per_batch=4",
        "train.threads=1",
        "train.device=cpu",
        "train.checkpoint_every=50",
        "model.dropout=0",
        "train.seed=5",
    ]
    nocol = _strip_colours(data_dir, tmp_path / "nocol")  # no colour term: every parameter must still sync
    datasets = [data_dir, nocol]
    script = tmp_path / "dist_train.py"
    script.write_text(_DIST_SCRIPT)
    states = tmp_path / "states"
    states.mkdir()
    spec = {"overrides": overrides, "runs": [[str(d), str(tmp_path / f"ddp{i}")] for i, d in enumerate(datasets)]}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RANK_STATE_DIR": str(states), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            str(script),
            json.dumps(spec),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    for i in range(2):
        for rank in range(2):
            assert f"rank {rank} world 2 run {i} epochs 3" in proc.stdout

    config = build_run_config("tiny", overrides=overrides)
    for i, data in enumerate(datasets):
        single_dir = tmp_path / f"single{i}"
        train(config, data, single_dir, progress=False)
        single, multi = _latest(single_dir), _latest(tmp_path / f"ddp{i}")
        assert multi["stats"]["world_size"] == 2 and multi["epoch"] == 3
        assert multi["config"] == single["config"] and multi["shape_ids"] == single["shape_ids"]
        rank1 = torch.load(states / f"rank1_{i}.pt", weights_only=True)
        for key, value in single["model_state"].items():
            torch.testing.assert_close(multi["model_state"][key], value, atol=1e-5, rtol=0, msg=key)
            # rank 1 holds exactly rank 0's weights and codes (DDP averages identical gradients)
            assert torch.equal(rank1[key], multi["model_state"][key]), key
        # it really trained: weights and codes moved away from the seeded initialisation
        torch.manual_seed(5)
        fresh = AutoDecoder(config.model, num_shapes=4, num_classes=2).state_dict()
        for key in ("shape_codes.weight", "colour_codes.weight", "decoder.sdf_out.weight"):
            assert (multi["model_state"][key] - fresh[key]).abs().max() > 1e-4, key
        # the logged losses are the global ones, as in the single-process run
        for a, b in zip(_losses(_log_rows(tmp_path / f"ddp{i}")), _losses(_log_rows(single_dir)), strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-7)
