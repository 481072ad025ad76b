"""``main.py train`` as a user runs it: resume from the stored config, the Ctrl-C hint, run folders
that hold a run, a data path that is a file, a diverging run, and 2 + 2 epochs = 4 at several threads.

Each test is the regression test of a defect of issue 15 (section A, items 3, 4, 8 and 11).
"""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path

import pytest
import torch

import main
from core.commands import train_command
from core.model.checkpoint import read_checkpoint
from core.training import build_run_config, train

# 4 training shapes, 2 per batch: two steps per epoch; threads=1 keeps the CPU load of the suite low.
FAST = [
    "--preset",
    "tiny",
    "--device",
    "cpu",
    "--no-progress",
    "--set",
    "train.samples_per_shape=128",
    "--set",
    "train.shapes_per_batch=2",
    "--set",
    "train.threads=1",
    "--set",
    "model.dropout=0.1",
]


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def data_dir(toy_data_dir):
    return toy_data_dir


def _latest(run: Path) -> dict:
    return read_checkpoint(run / "checkpoints" / "latest.pt")


def _same_weights(a: dict, b: dict) -> bool:
    return a["model_state"].keys() == b["model_state"].keys() and all(
        torch.equal(v, b["model_state"][k]) for k, v in a["model_state"].items()
    )


def _files(run: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and "tb" not in p.relative_to(run).parts
    }


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory):
    """A straight 4-epoch run through the command (the reference of every resume below)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert main.main(["train", "--data", str(data_dir), "--out", str(run), "--epochs", "4", *FAST]) == 0
    return run


# -- item 3: resume from RUN/config.json -------------------------------------------------------


def test_resume_reads_the_stored_config_and_may_extend_epochs(data_dir, straight, tmp_path, capsys, caplog):
    run = tmp_path / "run"
    assert main.main(["train", "--data", str(data_dir), "--out", str(run), "--epochs", "2", *FAST]) == 0
    # no --data, --preset or --set: all of it comes from RUN/config.json; --epochs extends the run
    with caplog.at_level("INFO", logger="core.training.run_folder"):  # resumable_checkpoint logs the changes
        assert main.main(["train", "--out", str(run), "--resume", "--epochs", "4", "--no-progress"]) == 0
    assert "trained 4 epochs" in capsys.readouterr().out
    assert "train.epochs: 2 -> 4" in caplog.text  # the extension is logged
    assert _same_weights(_latest(run), _latest(straight))  # 2 + 2 = 4, the tiny preset kept
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["epochs"] == 4 and saved["model"]["preset"] == "tiny"
    assert saved["train"]["samples_per_shape"] == 128 and saved["data"] == str(data_dir)


@pytest.mark.parametrize(
    "flags, shown",
    [
        (["--set", "train.lr_decoder=0.01"], "train.lr_decoder: 0.001 in the run, 0.01 now"),
        (["--preset", "default"], "model.code_size: 8 in the run, 64 now"),
        (["--seed", "7"], "train.seed: 0 in the run, 7 now"),
        (["--no-colour"], "model.colour: True in the run, False now"),
    ],
)
def test_resume_refuses_changed_settings_and_shows_them(data_dir, tmp_path, capsys, flags, shown):
    run = tmp_path / "run"
    assert main.main(["train", "--data", str(data_dir), "--out", str(run), "--epochs", "1", *FAST]) == 0
    before = _files(run)
    capsys.readouterr()
    assert main.main(["train", "--out", str(run), "--resume", "--epochs", "3", "--no-progress", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot resume with other settings" in err and shown in err
    assert "Traceback" not in err
    assert _files(run) == before  # config.json, log and checkpoint untouched


def test_resume_repeating_the_original_flags_is_accepted(data_dir, tmp_path):
    run = tmp_path / "run"
    first = ["train", "--data", str(data_dir), "--out", str(run), *FAST]
    assert main.main([*first, "--epochs", "1"]) == 0
    assert main.main([*first, "--epochs", "2", "--resume"]) == 0
    assert _latest(run)["epoch"] == 2


def test_resume_without_config_json_uses_the_checkpoint_config(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main.main(["train", "--data", str(data_dir), "--out", str(run), "--epochs", "1", *FAST]) == 0
    (run / "config.json").unlink()  # e.g. a run copied without it
    assert main.main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 2
    assert "stored config names no data set folder" in capsys.readouterr().err
    assert (
        main.main(["train", "--data", str(data_dir), "--out", str(run), "--resume", "--epochs", "2", "--no-progress"])
        == 0
    )
    assert _latest(run)["epoch"] == 2 and _latest(run)["config"]["model"]["preset"] == "tiny"


def test_resume_of_a_folder_without_a_run(tmp_path, capsys):
    assert main.main(["train", "--out", str(tmp_path / "none"), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing to resume" in err


def test_cancel_hint_is_a_command_that_works(data_dir, straight, tmp_path, capsys):
    """Ctrl-C in epoch 3 saves epoch 2; the printed command must finish the run, equal to a straight one."""
    run = tmp_path / "run"
    parser = main.build_parser()
    args = parser.parse_args(["train", "--data", str(data_dir), "--out", str(run), "--epochs", "4", *FAST])
    checks = {"n": 0}

    def ctrl_c_in_epoch_3() -> bool:  # polled before each of the 2 steps per epoch
        checks["n"] += 1
        if checks["n"] == 6:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, delivered at a known step
        return False

    # Python turns SIGINT into KeyboardInterrupt only when it starts with SIGINT not ignored; a job a
    # non-interactive shell starts in the background (`.ci/run &`) inherits SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert train_command.run(args, cancel=ctrl_c_in_epoch_3) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert checks["n"] == 6
    err = capsys.readouterr().err
    assert "cancelled after epoch 2; continue with: " in err
    hint = err.split("continue with: ", 1)[1].strip().splitlines()[0]
    argv = shlex.split(hint)
    assert argv[:3] == ["python", "main.py", "train"]
    assert main.main(argv[2:]) == 0
    assert "trained 4 epochs" in capsys.readouterr().out
    assert _same_weights(_latest(run), _latest(straight))


# -- item 4: a folder that holds a run ---------------------------------------------------------


def test_existing_run_is_not_overwritten_without_overwrite(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    cmd = ["train", "--data", str(data_dir), "--out", str(run), *FAST, "--set", "train.checkpoint_every=1"]
    assert main.main([*cmd, "--epochs", "2"]) == 0
    before = _files(run)
    capsys.readouterr()
    assert main.main([*cmd, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "already holds a training run" in err
    assert "--resume" in err and "--overwrite" in err
    assert _files(run) == before
    # --overwrite replaces it, without the earlier run's epoch files, and keeps what the user put there
    (run / "checkpoints" / "notes.txt").write_text("mine")
    (run / "README.md").write_text("mine")
    assert main.main([*cmd, "--epochs", "1", "--overwrite"]) == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_0001.pt", "latest.pt", "notes.txt"]
    assert (run / "README.md").read_text() == "mine"
    assert _latest(run)["epoch"] == 1
    assert main.main([*cmd, "--epochs", "1", "--overwrite", "--resume"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_folder_with_only_a_config_is_not_a_run(data_dir, tmp_path):
    """A run cancelled before its first epoch leaves config.json only: starting again is fine."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    assert main.main(["train", "--data", str(data_dir), "--out", str(run), "--epochs", "1", *FAST]) == 0


# -- item 8: clear errors instead of tracebacks ------------------------------------------------


def test_data_or_out_that_is_a_file(data_dir, tmp_path, capsys):
    manifest = data_dir / "manifest.json"
    assert main.main(["train", "--data", str(manifest), "--out", str(tmp_path / "run"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{manifest}: is a file, not a data set folder" in err
    assert not (tmp_path / "run").exists()
    out = tmp_path / "out.txt"
    out.write_text("x")
    assert main.main(["train", "--data", str(data_dir), "--out", str(out), *FAST]) == 2
    assert f"{out}: is a file, not a run folder" in capsys.readouterr().err
    assert main.main(["train", "--out", str(tmp_path / "run2"), *FAST]) == 2
    assert "--data is required" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["banana", "cuda:x"])
def test_impossible_device_is_refused_before_any_work(data_dir, tmp_path, capsys, device):
    assert main.main(["train", "--data", str(data_dir), "--out", str(tmp_path / "run"), *FAST, "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train.device" in err and device in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_divergence_is_a_clear_message(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main.main(
            [
                "train",
                "--data",
                str(data_dir),
                "--out",
                str(run),
                "--epochs",
                "3",
                *FAST,
                "--set",
                "train.lr_decoder=1e25",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged in epoch 1: the loss is not finite")
    assert "now train.lr_decoder=1e+25, train.lr_codes=0.002" in err and "e.g. --set train.lr_decoder=0.001," in err
    assert "No checkpoint was written" in err and "Traceback" not in err and "FloatingPointError" not in err
    assert not (run / "checkpoints").exists()


def test_divergence_keeps_the_last_good_epoch(data_dir, tmp_path, capsys):
    """The learning rate jumps by 1e22 after epoch 2: epoch 3 diverges, epoch 2 is saved and readable."""
    run = tmp_path / "run"
    assert (
        main.main(
            [
                "train",
                "--data",
                str(data_dir),
                "--out",
                str(run),
                "--epochs",
                "6",
                *FAST,
                "--set",
                "train.lr_interval=2",
                "--set",
                "train.lr_factor=1e22",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged in epoch 3")
    assert "train.lr_factor=1e+22 raises the rates every 2 epochs" in err
    assert f"The last good checkpoint, epoch 2, is kept in {run / 'checkpoints' / 'latest.pt'}" in err
    latest = _latest(run)  # read_checkpoint refuses NaN weights: this one is finite
    assert latest["epoch"] == 2
    assert [int(r.split(",")[0]) for r in (run / "log.csv").read_text().splitlines()[1:]] == [1, 2]


# -- item 11: 2 + 2 epochs give the weights of 4 -----------------------------------------------


@pytest.mark.parametrize("threads", [2, 4])
def test_resume_is_bit_exact_with_several_threads(data_dir, tmp_path, threads):
    """Several threads (more than this machine may have cores, as on a busy or small host)."""
    # the step schedule without the curriculum: its rates do not depend on train.epochs, so 2 epochs
    # extended to 4 plan the same epochs as a 4-epoch run (the default preset's cosine schedule does not)
    common = [
        "train.samples_per_shape=512",
        "train.shapes_per_batch=2",
        f"train.threads={threads}",
        "train.device=cpu",
        "model.dropout=0.1",
        "train.lr_schedule=step",
        "train.curriculum=false",
    ]

    def config(epochs: int):
        return build_run_config("default", overrides=[f"train.epochs={epochs}", *common])

    train(config(4), data_dir, tmp_path / "a", progress=False)
    train(config(4), data_dir, tmp_path / "b", progress=False)
    train(config(2), data_dir, tmp_path / "c", progress=False)
    train(config(4), data_dir, tmp_path / "c", resume=True, progress=False)
    a, b, c = (_latest(tmp_path / n) for n in "abc")
    assert _same_weights(a, b)  # two straight runs
    assert _same_weights(a, c)  # straight and resumed
    assert not torch.are_deterministic_algorithms_enabled()  # the trainer restored the global setting


def test_cancel_before_the_first_epoch_says_nothing_was_saved(data_dir, tmp_path, capsys):
    args = main.build_parser().parse_args(["train", "--data", str(data_dir), "--out", str(tmp_path / "run"), *FAST])
    assert train_command.run(args, cancel=lambda: True) == 130
    err = capsys.readouterr().err
    assert "nothing was saved" in err and "--resume" not in err


# -- issue 28: item 12 and the checkpoint hint ------------------------------------------------


def test_a_full_disk_while_saving_is_one_line_that_names_the_kept_checkpoint(data_dir, tmp_path, capsys, monkeypatch):
    import io

    real_save = torch.save
    calls = {"n": 0}

    def disk_full_on_the_third_save(obj, handle, *args, **kwargs):  # what a full disk does to torch.save
        calls["n"] += 1  # latest.pt and epoch_0001.pt of epoch 1, then latest.pt of epoch 2
        if calls["n"] == 3:
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            handle.write(buffer.getvalue()[:100])
            raise OSError(28, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_the_third_save)
    run = tmp_path / "run"
    code = main.main(
        [
            "train",
            "--data",
            str(data_dir),
            "--out",
            str(run),
            "--epochs",
            "3",
            *FAST,
            "--set",
            "train.checkpoint_every=1",
        ]
    )
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = next(line for line in err.splitlines() if line.startswith("error:"))
    assert "could not save epoch 2 (No space left on device)" in line and "(epoch 1), is kept" in line
    assert "--resume" in line
    assert _latest(run)["epoch"] == 1 and not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def test_a_truncated_checkpoint_suggests_only_checkpoints_that_exist(data_dir, tmp_path, capsys):
    from core.utils.errors import CheckpointError

    run = tmp_path / "run"
    assert (
        main.main(
            [
                "train",
                "--data",
                str(data_dir),
                "--out",
                str(run),
                "--epochs",
                "2",
                *FAST,
                "--set",
                "train.checkpoint_every=1",
            ]
        )
        == 0
    )
    latest = run / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(latest)
    assert "use another checkpoint beside it (epoch_0002.pt, epoch_0001.pt)" in str(caught.value)
    lone = tmp_path / "lone" / "model.pt"
    lone.parent.mkdir()
    lone.write_bytes(latest.read_bytes())
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(lone)
    assert "no other checkpoint is beside it" in str(caught.value) and "epoch_" not in str(caught.value)
