"""Typed configs to and from dicts, files and --set overrides (core.utils.config_io, core.training.config)."""

from __future__ import annotations

import json

import pytest

from core.model.config import PRESETS, ModelConfig, preset_config
from core.training import RunConfig, TrainConfig, build_run_config
from core.utils.config_io import apply_overrides, from_dict, load_config_file, parse_override, to_dict
from core.utils.errors import ConfigError


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def _to_toml(data: dict) -> str:
    """A minimal TOML writer for a run config dict (None has no TOML spelling: left out)."""
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items() if value is not None]
        lines.append("")
    return "\n".join(lines)


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_run_config_dict_round_trip(preset):
    config = RunConfig(
        model=preset_config(preset, conditioning="text", view_dependent=True),
        train=TrainConfig(epochs=7, classes=["chair", "lamp"], max_samples_per_shape=5000, lr_codes=3e-3),
    )
    data = to_dict(config)
    assert isinstance(data["model"]["hidden_dims"], list) and isinstance(data["model"]["latent_in"], list)
    assert json.loads(json.dumps(data)) == data  # plain JSON types only
    back = from_dict(RunConfig, data)
    assert back == config
    assert isinstance(back.model.hidden_dims, tuple) and isinstance(back.train.classes, list)
    assert from_dict(RunConfig, json.loads(json.dumps(data))) == config
    assert to_dict(back) == data


def test_defaults_round_trip_and_partial_dicts():
    assert from_dict(RunConfig, to_dict(RunConfig())) == RunConfig()
    assert from_dict(RunConfig, {}) == RunConfig()
    partial = from_dict(RunConfig, {"train": {"epochs": 3}})
    assert partial.train.epochs == 3 and partial.train.seed == 0 and partial.model == ModelConfig()
    assert from_dict(ModelConfig, {"hidden_dims": [64, 64, 64], "latent_in": [1]}).hidden_dims == (64, 64, 64)


def test_build_run_config_file_round_trip(tmp_path):
    config = build_run_config("paper", overrides=["train.epochs=12", 'train.classes=["mug"]', "model.dropout=0.1"])
    toml = tmp_path / "run.toml"
    toml.write_text(_to_toml(to_dict(config)))
    assert build_run_config("paper", toml) == config
    assert build_run_config("tiny", toml) == config  # the file names its preset: paper's values, not tiny's
    as_json = tmp_path / "run.json"
    as_json.write_text(json.dumps(to_dict(config)))
    assert build_run_config("paper", as_json) == config


# -- unknown keys and type errors ---------------------------------------------------------------


def test_unknown_keys_list_the_known_ones():
    with pytest.raises(ConfigError) as info:
        from_dict(RunConfig, {"train": {"epoch": 3, "sead": 1}})
    message = str(info.value)
    assert "unknown setting(s) ['epoch', 'sead']" in message and "config.train" in message
    for known in ("'epochs'", "'seed'", "'shapes_per_batch'", "'samples_per_shape'"):
        assert known in message
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['optimizer'\]; known: \['model', 'train'\]"):
        from_dict(RunConfig, {"optimizer": {}})
    with pytest.raises(ConfigError, match=r"config.model: unknown setting\(s\) \['layers'\].*'hidden_dims'"):
        from_dict(RunConfig, {"model": {"layers": 8}})


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("train", "epochs", "ten", "train.epochs: expected an integer, got 'ten'"),
        ("train", "epochs", 2.5, "train.epochs: expected an integer, got 2.5"),
        ("train", "epochs", True, "train.epochs: expected an integer, got True"),
        ("train", "epochs", float("nan"), "train.epochs: expected an integer, got nan"),
        ("train", "epochs", float("inf"), "train.epochs: expected an integer, got inf"),
        ("train", "lr_decoder", "fast", "train.lr_decoder: expected a number, got 'fast'"),
        ("train", "lr_decoder", False, "train.lr_decoder: expected a number"),
        ("train", "device", 0, "train.device: expected text, got 0"),
        ("train", "classes", "chair", "train.classes: expected a list, got 'chair'"),
        ("train", "classes", ["chair", 3], r"train.classes\[1\]: expected text, got 3"),
        ("train", "max_samples_per_shape", "lots", "train.max_samples_per_shape: expected an integer"),
        ("model", "hidden_dims", 64, "model.hidden_dims: expected a list, got 64"),
        ("model", "hidden_dims", [64, "wide"], r"model.hidden_dims\[1\]: expected an integer, got 'wide'"),
        ("model", "colour", "maybe", "model.colour: expected true or false, got 'maybe'"),
        ("model", "colour", 2, "model.colour: expected true or false, got 2"),
        (
            "model",
            "conditioning",
            "clip",
            r"model.conditioning: 'clip' is not one of \['none', 'onehot', 'embedding', 'text'\]",
        ),
        ("model", "text_source", "caption", "model.text_source: 'caption' is not one of"),
        ("model", "weight_norm", None, "model.weight_norm: expected true or false, got None"),
    ],
)
def test_type_errors(section, key, value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(RunConfig, {section: {key: value}})


def test_section_must_be_a_table():
    with pytest.raises(ConfigError, match="config.model: expected a table of settings, got 3"):
        from_dict(RunConfig, {"model": 3})
    with pytest.raises(ConfigError, match="expected a table of settings"):
        from_dict(RunConfig, [("model", {})])


def test_lenient_conversions():
    cfg = from_dict(
        RunConfig,
        {
            "train": {"epochs": "12", "lr_decoder": "5e-4", "max_samples_per_shape": 4.0, "classes": None},
            "model": {"colour": "no", "weight_norm": 0, "view_dependent": "yes", "dropout": 0},
        },
    )
    assert cfg.train.epochs == 12 and cfg.train.lr_decoder == 5e-4 and cfg.train.max_samples_per_shape == 4
    assert cfg.train.classes is None
    assert cfg.model.colour is False and cfg.model.weight_norm is False and cfg.model.view_dependent is True
    assert isinstance(cfg.model.dropout, float)
    big = 2**62 + 1  # integers stay exact (no trip through float)
    assert from_dict(TrainConfig, {"seed": big}).seed == big


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.dropout=1.0"], "model.dropout"),
        (["model.latent_in=[9]"], "model.latent_in"),
        (["model.hidden_dims=[]"], "model.hidden_dims"),
        (["train.epochs=0"], "train.epochs"),
        (["train.shapes_per_batch=0"], "train.shapes_per_batch"),
        (["train.samples_per_shape=-1"], "train.samples_per_shape"),
        (["train.lr_decoder=NaN"], "train.lr_decoder"),
        (["train.lr_codes=-1e-3"], "train.lr_codes"),
        (["train.clamp=0"], "train.clamp"),
        (["train.checkpoint_every=0"], "train.checkpoint_every"),
        (["train.lr_interval=0"], "train.lr_interval"),
        (["train.max_samples_per_shape=1"], "train.max_samples_per_shape"),
    ],
)
def test_impossible_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_run_config("tiny", overrides=overrides)


# -- files ---------------------------------------------------------------------------------------


def test_load_toml_json_yaml(tmp_path):
    (tmp_path / "a.toml").write_text('[model]\npreset = "tiny"\nhidden_dims = [16, 16]\n\n[train]\nepochs = 3\n')
    assert load_config_file(tmp_path / "a.toml") == {
        "model": {"preset": "tiny", "hidden_dims": [16, 16]},
        "train": {"epochs": 3},
    }
    (tmp_path / "a.json").write_text('{"train": {"epochs": 4, "classes": null}}')
    assert load_config_file(tmp_path / "a.json") == {"train": {"epochs": 4, "classes": None}}
    (tmp_path / "empty.toml").write_text("")
    assert load_config_file(tmp_path / "empty.toml") == {}
    pytest.importorskip("yaml")
    (tmp_path / "a.yaml").write_text("train:\n  epochs: 5\nmodel:\n  colour: false\n")
    assert load_config_file(tmp_path / "a.yaml") == {"train": {"epochs": 5}, "model": {"colour": False}}
    (tmp_path / "empty.yml").write_text("")
    assert load_config_file(tmp_path / "empty.yml") == {}


@pytest.mark.parametrize(
    "name, text, fmt",
    [
        ("bad.toml", "[train]\nepochs = = 3\n", "TOML"),
        ("bad2.toml", "[train\nepochs = 3\n", "TOML"),
        ("bad.json", '{"train": {"epochs": 3,}}', "JSON"),
        ("bad.yaml", "train: [1, 2\n", "YAML"),
    ],
)
def test_bad_file_names_the_file(tmp_path, name, text, fmt):
    if fmt == "YAML":
        pytest.importorskip("yaml")
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"not a valid {fmt} file") as info:
        load_config_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError) as info:
        build_run_config("tiny", path)
    assert str(path) in str(info.value)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file") as info:
        load_config_file(tmp_path / "missing.toml")
    assert "missing.toml" in str(info.value)
    (tmp_path / "run.ini").write_text("[train]\n")
    with pytest.raises(ConfigError, match=r"unknown config format '.ini'"):
        load_config_file(tmp_path / "run.ini")
    (tmp_path / "list.json").write_text('["model"]')
    with pytest.raises(ConfigError, match="holds a list, not a table"):
        load_config_file(tmp_path / "list.json")
    (tmp_path / "sections.toml").write_text("[optimiser]\nlr = 1\n")
    with pytest.raises(ConfigError, match=r"sections.toml: unknown section\(s\) \['optimiser'\]"):
        build_run_config("tiny", tmp_path / "sections.toml")
    (tmp_path / "null.json").write_text('{"model": null}')
    with pytest.raises(ConfigError, match=r"\[model\] must be a table"):
        build_run_config("tiny", tmp_path / "null.json")
    (tmp_path / "typo.toml").write_text("[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['epoch'\]; known: .*'epochs'"):
        build_run_config("tiny", tmp_path / "typo.toml")
    (tmp_path / "preset.toml").write_text('[model]\npreset = "giant"\n')
    with pytest.raises(ConfigError, match="unknown preset 'giant'"):
        build_run_config("tiny", tmp_path / "preset.toml")


def test_build_run_config_precedence(tmp_path):
    """Preset < file < --set overrides < explicit model switches."""
    (tmp_path / "run.toml").write_text("[model]\ndropout = 0.1\ncode_size = 12\n\n[train]\nepochs = 9\nseed = 4\n")
    cfg = build_run_config(
        "tiny", tmp_path / "run.toml", ["train.epochs=2", "model.code_size=10"], conditioning="onehot", colour=None
    )
    assert cfg.model.preset == "tiny" and cfg.model.hidden_dims == PRESETS["tiny"]["hidden_dims"]
    assert cfg.model.dropout == 0.1 and cfg.train.seed == 4  # the file over the preset
    assert cfg.train.epochs == 2 and cfg.model.code_size == 10  # --set over the file
    assert cfg.model.conditioning == "onehot" and cfg.model.colour is True  # a switch; None leaves it alone
    with pytest.raises(ConfigError, match="unknown preset 'medium'"):
        build_run_config("medium")


# -- overrides ---------------------------------------------------------------------------------


def test_parse_override():
    assert parse_override("train.epochs=10") == (["train", "epochs"], 10)
    assert parse_override("model.hidden_dims=[256, 256]") == (["model", "hidden_dims"], [256, 256])
    assert parse_override("train.device=cuda:1") == (["train", "device"], "cuda:1")  # not JSON: kept as text
    assert parse_override("train.classes=null") == (["train", "classes"], None)
    assert parse_override("model.colour=false") == (["model", "colour"], False)
    assert parse_override("model.text_model=a=b") == (["model", "text_model"], "a=b")  # split at the first '='
    assert parse_override(" train.lr_decoder = 5e-4") == (["train", "lr_decoder"], 5e-4)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("train.epochs")


def test_apply_overrides():
    base = to_dict(RunConfig())
    frozen = json.dumps(base)
    out = apply_overrides(
        base,
        [
            "train.epochs=3",
            "model.hidden_dims=[32,32]",
            'train.classes=["mug"]',
            "train.device=cpu",
            "extra.deep.key=1",
        ],
    )
    assert json.dumps(base) == frozen  # the input is not modified
    assert out["train"]["epochs"] == 3 and out["model"]["hidden_dims"] == [32, 32]
    assert out["train"]["classes"] == ["mug"] and out["train"]["device"] == "cpu"
    assert out["extra"] == {"deep": {"key": 1}}  # created; from_dict then rejects it by name
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['extra'\]"):
        from_dict(RunConfig, out)
    assert apply_overrides(base, ["train.epochs=1", "train.epochs=2"])["train"]["epochs"] == 2  # last wins
    with pytest.raises(ConfigError, match="empty key"):
        apply_overrides(base, ["=3"])
    with pytest.raises(ConfigError, match="epochs is not a table"):
        apply_overrides(base, ["train.epochs.max=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(base, ["epochs"])
    cfg = from_dict(RunConfig, apply_overrides(base, ["model.colour=0", "train.seed=007"]))
    assert cfg.model.colour is False and cfg.train.seed == 7
    with pytest.raises(ConfigError, match="train.epochs: expected an integer, got nan"):
        build_run_config("tiny", overrides=["train.epochs=NaN"])


# -- one config path: every settings dataclass, CLI defaults from the dataclasses (issue 15, C.3) --


def test_field_default_and_arg_default():
    from core.tto.config import TTOConfig
    from core.utils.config_io import arg_default, field_default

    assert field_default(TTOConfig, "iterations") == TTOConfig().iterations
    assert field_default(TTOConfig, "extra") == {}  # default_factory is called
    assert arg_default(TTOConfig, "lr", "code learning rate") == {
        "default": TTOConfig().lr,
        "help": f"code learning rate (default: {TTOConfig().lr})",
    }
    assert arg_default(TTOConfig, "curriculum_eps")["help"] == "default: 0.025,0.01,0.0025,0.0,0.0"
    assert arg_default(TrainConfig, "epochs", "passes", unset=True) == {
        "default": None,
        "help": "passes (default: 500)",
    }
    with pytest.raises(ConfigError, match=r"TTOConfig has no setting 'iteration'.*'iterations'"):
        field_default(TTOConfig, "iteration")


def test_train_command_defaults_come_from_the_dataclasses():
    import argparse

    from core.commands import train_command

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    helps = {a.dest: a.help for a in parser._actions}
    assert f"(default: {TrainConfig().epochs})" in helps["epochs"]
    assert f"(default: {TrainConfig().seed})" in helps["seed"]
    assert f"(default: {TrainConfig().device})" in helps["device"]
    assert f"(default: {ModelConfig().preset})" in helps["preset"]
    assert f"(default: {ModelConfig().conditioning})" in helps["conditioning"]
    args = parser.parse_args(["--out", "run"])  # nothing given: the stored or dataclass value applies
    assert (args.epochs, args.seed, args.device, args.preset, args.conditioning) == (None,) * 5


def test_tto_config_goes_through_config_io():
    from core.tto.config import TTOConfig

    config = TTOConfig.from_losses("all", iterations=7, curriculum_eps=(0.1, 0.0, 0.0, 0.0, 0.0))
    data = config.to_dict()
    assert data == to_dict(config) and json.loads(json.dumps(data)) == data
    assert TTOConfig.from_dict(json.loads(json.dumps(data))) == config
    assert from_dict(TTOConfig, data) == config
    with pytest.raises(ConfigError, match=r"TTOConfig.iterations: expected an integer, got 'many'"):
        TTOConfig.from_dict({"iterations": "many"})
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['iteration'\]"):
        TTOConfig.from_dict({"iteration": 5})
    with pytest.raises(ConfigError, match="lr must be a finite number, got nan"):
        TTOConfig.from_dict({"lr": float("nan")})
    with pytest.raises(ConfigError, match="clamp must be a finite number, got inf"):
        TTOConfig(clamp=float("inf"))
    for bad, message in [
        ({"class_iterations": 0}, "class_iterations must be >= 1, got 0"),
        ({"surface_weight": -1.0}, "surface_weight must be >= 0"),
        ({"lr_decay_every": 0}, "lr_decay_every must be >= 1"),
        ({"c2f_until": 0.0}, r"c2f_until must be in \(0, 1\]"),
    ]:
        with pytest.raises(ConfigError, match=message):
            TTOConfig.from_dict(bad)


def test_sampling_config_goes_through_config_io():
    from core.data.sampling import SamplingConfig

    config = from_dict(SamplingConfig, {"n_samples": 1000, "variance": 0.01})
    assert config == SamplingConfig(n_samples=1000, variance=0.01)
    assert from_dict(SamplingConfig, to_dict(config)) == config
    for bad, message in [
        ({"near_fraction": 2}, "near_fraction"),
        ({"variance": float("nan")}, "variances"),
        ({"n_samples": "lots"}, "n_samples: expected an integer"),
        ({"samples": 3}, "unknown"),
    ]:
        with pytest.raises(ConfigError, match=message):
            from_dict(SamplingConfig, bad)


def test_build_run_config_from_a_stored_config_and_resume_changes():
    from core.training.config import resume_changes

    stored = {**to_dict(build_run_config("tiny", overrides=["train.epochs=3", "train.lr_codes=0.004"])), "data": "d"}
    same = build_run_config(None, base=stored)
    assert to_dict(same) == {k: v for k, v in stored.items() if k != "data"}
    assert resume_changes(stored, same, "RUN") == []
    longer = build_run_config(None, overrides=["train.epochs=9", "train.threads=2"], base=stored)
    assert resume_changes(stored, longer, "RUN") == ["train.epochs: 3 -> 9", "train.threads: 0 -> 2"]
    assert build_run_config("default", base=stored).model == preset_config("default")  # an explicit preset wins
    with pytest.raises(
        ConfigError,
        match=r"RUN: cannot resume with other settings \(model.dropout: 0.0 in the run, "
        r"0.5 now; train.lr_codes: 0.004 in the run, 0.002 now\)",
    ):
        resume_changes(
            stored, build_run_config(None, overrides=["model.dropout=0.5", "train.lr_codes=0.002"], base=stored), "RUN"
        )
    older = {
        "model": {k: v for k, v in stored["model"].items() if k != "colour_detach_trunk"},
        "train": stored["train"],
    }
    assert resume_changes(older, same, "RUN") == []  # a key an older program did not write takes its default


def test_a_runs_own_config_json_is_a_config_file(tmp_path):
    """``train --config RUN/config.json`` (a second stage on a run, studies/recipe_study.py --warm-start): the
    run's record of its data folder is not a setting; a "data" table is still refused."""
    from core.utils.config_io import to_dict

    config = build_run_config("tiny", overrides=["train.epochs=7", "model.code_size=9"])
    run_config = tmp_path / "config.json"
    run_config.write_text(json.dumps({**to_dict(config), "data": str(tmp_path / "data")}))
    again = build_run_config(None, run_config)
    assert again.model.code_size == 9 and again.train.epochs == 7
    run_config.write_text(json.dumps({**to_dict(config), "data": {"folder": "x"}}))
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['data'\]"):
        build_run_config(None, run_config)
