"""train.init_extends: a warm start onto a data set that adds shapes and classes to the checkpoint's."""

from __future__ import annotations

import pytest
import torch

from core.model.checkpoint import read_checkpoint
from core.training import build_run_config, train
from core.utils.errors import CheckpointError, ConfigError
from tests.conftest import write_analytic_dataset

BASE = ["train.samples_per_shape=512", "train.checkpoint_every=1000"]
FROZEN = ["train.epochs=1", "train.lr_decoder=0", "train.lr_codes=0", "train.code_reg=0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_analytic_dataset(tmp_path_factory.mktemp("extends_data"), n_samples=1000, n_surface=500)


@pytest.fixture(scope="module")
def balls_only(data, tmp_path_factory):
    """A checkpoint trained on the balls alone: the whole data set (balls and slabs) extends it."""
    config = build_run_config("tiny", overrides=["train.epochs=2", 'train.classes=["ball"]', *BASE])
    return train(config, data, tmp_path_factory.mktemp("balls"), progress=False).checkpoint


def _run(data, out, *overrides: str):
    return train(build_run_config("tiny", overrides=[*BASE, *overrides]), data, out, progress=False).checkpoint


def test_known_shapes_and_classes_keep_their_rows_new_ones_start_fresh(
    data, balls_only, tmp_path, restore_torch_threads
):
    warm = read_checkpoint(
        _run(data, tmp_path / "warm", *FROZEN, f"train.init_from={balls_only}", "train.init_extends=true")
    )
    fresh = read_checkpoint(_run(data, tmp_path / "fresh", *FROZEN))  # the same seed, never trained: the init
    before = read_checkpoint(balls_only)
    assert warm["class_names"] == ["ball", "slab"] and before["class_names"] == ["ball"]
    codes = "shape_codes.weight"
    row_before = {i: n for n, i in enumerate(before["shape_ids"])}
    for n, shape_id in enumerate(warm["shape_ids"]):
        if shape_id in row_before:
            assert torch.equal(warm["model_state"][codes][n], before["model_state"][codes][row_before[shape_id]])
        else:
            assert shape_id.startswith("slab")
            assert torch.equal(warm["model_state"][codes][n], fresh["model_state"][codes][n])
    embedding = "conditioner.embedding.weight"
    assert torch.equal(warm["model_state"][embedding][0], before["model_state"][embedding][0])  # ball
    assert torch.equal(warm["model_state"][embedding][1], fresh["model_state"][embedding][1])  # slab: new
    assert not torch.equal(fresh["model_state"][embedding][0], before["model_state"][embedding][0])
    for key, value in before["model_state"].items():
        if key.startswith("decoder."):
            assert torch.equal(warm["model_state"][key], value), key


def test_other_shapes_without_init_extends_are_refused_with_the_switch_named(data, balls_only, tmp_path):
    with pytest.raises(CheckpointError, match="init_extends"):
        _run(data, tmp_path / "warm", *FROZEN, f"train.init_from={balls_only}")


def test_a_data_set_lacking_a_checkpoint_shape_does_not_extend_it(data, tmp_path, restore_torch_threads):
    everything = _run(data, tmp_path / "all", "train.epochs=1")
    with pytest.raises(CheckpointError, match=r"missing here: slab/slab0"):
        _run(
            data,
            tmp_path / "warm",
            *FROZEN,
            'train.classes=["ball"]',
            f"train.init_from={everything}",
            "train.init_extends=true",
        )


def test_onehot_conditioning_cannot_extend(data, tmp_path, restore_torch_threads):
    onehot = ["model.conditioning=onehot"]
    source = _run(data, tmp_path / "src", "train.epochs=1", 'train.classes=["ball"]', *onehot)
    with pytest.raises(ConfigError, match="onehot"):
        _run(data, tmp_path / "warm", *FROZEN, *onehot, f"train.init_from={source}", "train.init_extends=true")


def test_init_extends_needs_init_from():
    with pytest.raises(ConfigError, match="init_extends: true needs init_from"):
        build_run_config("tiny", overrides=["train.init_extends=true"])
