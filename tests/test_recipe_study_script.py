"""studies/recipe_study.py builds the commands its variants claim (dry run: commands only, nothing trained).

The conditioning variants (issue 12's real-object table) train on today's recipe, not the pinned
baseline's; ``--train-classes`` restricts training *and* both evaluations, so a class can be kept out
for the zero-shot study; a text variant fits held-out shapes under each shape's own description.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _commands(tmp_path: Path, capsys, *extra: str) -> list[list[str]]:
    from studies import recipe_study

    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"classes": ["chair", "sofa"], "shapes": []}))
    assert recipe_study.main(["--data", str(data), "--out", str(tmp_path / "study"), "--dry-run", *extra]) == 0
    return [shlex.split(line[2:]) for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]


def _sets(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, part in enumerate(cmd) if part == "--set"]


def _last(cmd: list[str], flag: str) -> str:
    return [cmd[i + 1] for i, part in enumerate(cmd) if part == flag][-1]


def test_text_variant_on_todays_recipe_with_classes_kept_out(tmp_path, capsys):
    pilot, train, known, heldout = _commands(tmp_path, capsys, "--variants", "cond_text", "--train-classes", "chair")
    for cmd in (pilot, train):
        sets = _sets(cmd)
        assert _last(cmd, "--conditioning") == "text"  # argparse keeps the last: the variant's
        assert sets.index("train.lr_schedule=cosine") > sets.index("train.lr_schedule=step")  # adopted recipe wins
        assert "model.fourier_frequencies=2" in sets and "model.text_source=description" in sets
        assert 'train.classes=["chair"]' in sets
    for cmd, split in ((known, "train"), (heldout, "test")):
        assert cmd[2] == "evaluate" and _last(cmd, "--split") == split
        assert cmd[cmd.index("--classes") + 1 :][:1] == ["chair"] and "sofa" not in cmd
    # known shapes keep their trained condition (evaluate refuses a prompt beside trained codes)
    assert "--use-trained-codes" in known and "--text-prompt" not in known
    assert "--use-trained-codes" not in heldout and _last(heldout, "--text-prompt") == "description"


def test_baseline_keeps_the_old_recipe_and_every_class(tmp_path, capsys):
    _, train, known, _ = _commands(tmp_path, capsys, "--variants", "baseline")
    sets = _sets(train)
    assert "train.lr_schedule=cosine" not in sets and "model.fourier_frequencies=4" in sets
    assert not any(s.startswith("train.classes=") for s in sets)
    assert "--classes" not in known and "--text-prompt" not in known


def test_unknown_train_class_is_refused_up_front(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        _commands(tmp_path, capsys, "--variants", "cond_none", "--train-classes", "chair", "stool")
    assert "--train-classes stool: not a class of" in capsys.readouterr().err


def test_colour_variants_on_todays_recipe(tmp_path, capsys):
    commands = _commands(tmp_path, capsys, "--variants", "colour_none,colour_viewdep")
    trains = [cmd for cmd in commands if cmd[2] == "train" and "pilot" not in _last(cmd, "--out")]
    assert len(trains) == 2
    for cmd, flag in zip(trains, ("--no-colour", "--view-dependent"), strict=True):
        sets = _sets(cmd)
        assert flag in cmd and sets.index("train.lr_schedule=cosine") > sets.index("train.lr_schedule=step")
        assert "model.fourier_frequencies=2" in sets
    assert "--view-dependent" not in trains[0] and "--no-colour" not in trains[1]


def test_colour_stopped_at_the_trunk_keeps_the_colour_head(tmp_path, capsys):
    _, train, _, _ = _commands(tmp_path, capsys, "--variants", "colour_stop_trunk")
    sets = _sets(train)
    assert "model.colour_detach_trunk=true" in sets and "model.fourier_frequencies=2" in sets
    assert "--no-colour" not in train and "--view-dependent" not in train


def test_thin_stop_trunk_preprocesses_thin_aware_and_stops_colour_gradients(tmp_path, capsys):
    commands = _commands(tmp_path, capsys, "--variants", "thin_stop_trunk", "--source-args", "--source synthetic")
    preprocess = next(cmd for cmd in commands if cmd[2] == "preprocess")
    assert _last(preprocess, "--near-allocation") == "thickness" and "--balance-sign" in preprocess
    train = [cmd for cmd in commands if cmd[2] == "train"][-1]
    assert "model.colour_detach_trunk=true" in _sets(train) and _last(train, "--data") == _last(preprocess, "--out")


def test_extra_sets_reach_every_variant_after_its_own(tmp_path, capsys):
    commands = _commands(
        tmp_path,
        capsys,
        "--variants",
        "cond_none,cond_onehot",
        "--set",
        "model.colour_detach_trunk=true",
        "--set",
        "model.colour_hidden=128",
    )
    trains = [cmd for cmd in commands if cmd[2] == "train"]
    assert len(trains) == 4  # pilot + run of each variant
    for cmd in trains:
        sets = _sets(cmd)
        assert sets[-2:] == ["model.colour_detach_trunk=true", "model.colour_hidden=128"]
        assert _last(cmd, "--conditioning") in ("none", "onehot")  # the variant's own switches stay


def test_extra_set_without_a_value_is_refused_up_front(tmp_path, capsys):
    from studies import recipe_study

    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"classes": ["chair"], "shapes": []}))
    with pytest.raises(SystemExit) as exit_info:
        recipe_study.main(["--data", str(data), "--out", str(tmp_path / "s"), "--dry-run", "--set", "bogus"])
    assert exit_info.value.code == 2
    assert "--set 'bogus': expected KEY=VALUE" in capsys.readouterr().err


def _trained_run(tmp_path: Path) -> Path:
    """A run folder's shape (the dry run reads no file of it but checks they are there)."""
    run = tmp_path / "base_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "latest.pt").write_bytes(b"")
    return run


def test_warm_start_variants_are_second_stages_on_the_run(tmp_path, capsys):
    """--warm-start: the run's stored config and weights, the curriculum's last stage, the fixed --epochs (no
    pilot); the variant's own switch on top; held-out fits at the given learning rate without the grid reference."""
    run = _trained_run(tmp_path)
    train, known, heldout = _commands(
        tmp_path,
        capsys,
        "--variants",
        "code_noise_05",
        "--warm-start",
        str(run),
        "--epochs",
        "7",
        "--tto-lr",
        "0.01",
        "--tto-iterations",
        "300",
        "--no-grid-reference",
    )
    sets = _sets(train)
    assert _last(train, "--config") == str(run / "config.json") and _last(train, "--epochs") == "7"
    assert f"train.init_from={run / 'checkpoints' / 'latest.pt'}" in sets and "train.curriculum_first_stage=3" in sets
    assert sets[-1] == "train.code_noise=0.05"
    assert not any(s.startswith(("model.fourier_frequencies", "train.lr_schedule", "train.lr_interval")) for s in sets)
    assert "--conditioning" not in train  # the stored config's condition, not the demo's
    assert _last(heldout, "--lr") == "0.01" and _last(heldout, "--iterations") == "300"
    assert "--no-grid-reference" in heldout and "--no-grid-reference" in known and "--lr" not in known


@pytest.mark.parametrize(
    "args, message",
    [
        (["--warm-start", "RUN_WITHOUT_CHECKPOINT"], "no checkpoints/latest.pt"),
        (["--warm-start", "RUN", "--variants", "thin_sampling"], "change the model"),
        (["--epochs", "0"], "--epochs 0"),
        (["--tto-lr", "-1"], "--tto-lr -1"),
    ],
)
def test_bad_warm_start_arguments_are_refused_up_front(tmp_path, capsys, args, message):
    from studies import recipe_study

    run = _trained_run(tmp_path)
    bare = tmp_path / "bare_run"
    bare.mkdir()
    (bare / "config.json").write_text("{}")
    args = [{"RUN": str(run), "RUN_WITHOUT_CHECKPOINT": str(bare)}.get(a, a) for a in args]
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"classes": ["chair"], "shapes": []}))
    with pytest.raises(SystemExit) as exit_info:
        recipe_study.main(["--data", str(data), "--out", str(tmp_path / "study"), "--dry-run", *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "study").exists()
