"""Test-time optimisation: config, loss terms, and fits of a tiny model trained by the project's trainer."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from core.errors import ConfigError, ObservationError
from core.tto import losses as L
from core.tto.config import TTOConfig, parse_losses


def test_defaults_are_deepsdf_reconstruct():
    c = TTOConfig()
    assert (c.iterations, c.lr, c.n_samples, c.code_std, c.code_reg, c.clamp) == (800, 5e-3, 8000, 0.01, 1e-4, 0.1)
    assert c.enabled() == []
    assert L.learning_rate(c, 399) == pytest.approx(5e-3)
    assert L.learning_rate(c, 400) == pytest.approx(5e-4)


def test_loss_presets():
    assert parse_losses("baseline") == ()
    assert parse_losses("surface") == ("surface_term", "normal_term")
    assert set(parse_losses("all")) == {"surface_term", "normal_term", "curriculum", "coarse_to_fine", "finetune_last_layers"}
    assert parse_losses("curriculum,coarse-to-fine") == ("curriculum", "coarse_to_fine")
    c = TTOConfig.from_losses("surface,finetune", iterations=5)
    assert c.surface_term and c.normal_term and c.finetune_last_layers and not c.curriculum and c.iterations == 5
    assert c.with_losses("baseline").enabled() == []
    with pytest.raises(ConfigError, match="unknown loss set 'sparkle'"):
        parse_losses("surface,sparkle")
    with pytest.raises(ConfigError, match="iterations"):
        TTOConfig(iterations=0)
    assert TTOConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_curriculum_loss_and_schedules():
    gt = torch.tensor([0.05, 0.05, -0.05, -0.05])
    pred = torch.tensor([0.0, 0.1, 0.0, -0.1])  # err towards / away from the surface
    plain = L.curriculum_l1(pred, gt, clamp=0.1, eps=0.0, lam=0.0)
    assert plain == pytest.approx(L.clamped_l1(pred, gt, 0.1))
    weighted = L.curriculum_l1(pred, gt, clamp=0.1, eps=0.0, lam=0.5)
    # Wrong-side errors (rows 0 and 2) weigh 1.5, the others 0.5: same mean here, different per sample.
    assert weighted == pytest.approx((1.5 * 0.05 + 0.5 * 0.05 + 1.5 * 0.05 + 0.5 * 0.05) / 4)
    assert L.curriculum_l1(pred, gt, clamp=0.1, eps=0.05, lam=0.0) == pytest.approx(0.0)
    c = TTOConfig(curriculum=True, iterations=100)
    assert L.curriculum_schedule(c, 0) == (0.025, 0.0)
    assert L.curriculum_schedule(c, 99) == (0.0, 0.5)
    f = TTOConfig(coarse_to_fine=True, iterations=100)
    assert L.clamp_at(f, 0) == pytest.approx(0.1) and L.clamp_at(f, 99) == pytest.approx(0.02)
    assert L.near_fraction_at(f, 0) == 0.0 and L.near_fraction_at(f, 99) == pytest.approx(0.75)
    assert L.clamp_at(TTOConfig(), 99) == 0.1


# --------------------------------------------------------------------------- tiny trained model
# The analytic toy set and the tiny trained checkpoint live in tests/conftest.py (shared).
from conftest import CLASSES, write_analytic_dataset  # noqa: E402,F401


@pytest.fixture(scope="session")
def toy(toy_trained):
    return toy_trained


def _obs(toy, sid="ball2", cls="ball"):
    from core.tto.observations import from_npz

    return from_npz(toy["data"] / "SdfSamples" / "toy" / cls / f"{sid}.npz")


def _state(model):
    return {k: v.detach().clone() for k, v in model.decoder.state_dict().items()}


def test_baseline_fit_reduces_loss_and_leaves_model_unchanged(toy):
    from core.tto.fit import fit

    model = toy["model"]
    before = _state(model)
    result = fit(model, _obs(toy), TTOConfig(iterations=60, n_samples=2000), class_name="ball", seed=0)
    first, last = result.history[0]["l1"], result.history[-1]["l1"]
    assert last < 0.7 * first
    assert result.shape_code.shape == (model.shape_codes.shape[-1],)
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.decoder.parameters())


@pytest.mark.parametrize("losses", ["surface", "curriculum", "coarse_to_fine", "finetune", "all"])
def test_each_switch_runs(toy, losses):
    from core.tto.fit import fit

    model = toy["model"]
    before = _state(model)
    config = TTOConfig.from_losses(losses, iterations=12, n_samples=1000, finetune_iterations=5, n_surface_samples=300)
    result = fit(model, _obs(toy, "slab2", "slab"), config, class_name="slab", seed=1)
    assert len(result.history) == 12 + (5 if config.finetune_last_layers else 0)
    assert all(np.isfinite(h["total"]) for h in result.history)
    if config.surface_term:
        assert "surface" in result.history[-1] and "normal" in result.history[-1]
    assert (result.decoder_override is not None) == config.finetune_last_layers
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_colour_code_is_fitted(toy):
    from core.tto.fit import fit

    model = toy["model"]
    if not model.has_colour:
        pytest.skip("the tiny model has no colour head")
    result = fit(model, _obs(toy), TTOConfig(iterations=30, n_samples=1000), class_name="ball", seed=0)
    assert result.colour_code is not None and "colour" in result.history[-1]


def test_cancellation_stops_within_one_report(toy):
    from core.tto.fit import iterate_fit

    cancel = threading.Event()
    reports = []
    for progress in iterate_fit(toy["model"], _obs(toy), TTOConfig(iterations=500, n_samples=500),
                                class_name="ball", cancel=cancel, every=5):
        reports.append(progress)
        if progress.iteration >= 10 and not progress.done:
            cancel.set()
    final = reports[-1]
    assert final.done and final.cancelled and final.result.cancelled
    assert len(final.result.history) == 10


def test_deterministic_under_seed(toy):
    from core.tto.fit import fit

    config = TTOConfig(iterations=15, n_samples=1000)
    a = fit(toy["model"], _obs(toy), config, class_name="ball", seed=5)
    b = fit(toy["model"], _obs(toy), config, class_name="ball", seed=5)
    c = fit(toy["model"], _obs(toy), config, class_name="ball", seed=6)
    assert torch.equal(a.shape_code, b.shape_code)
    assert not torch.equal(a.shape_code, c.shape_code)


def test_class_inference_picks_the_right_class(toy):
    from core.tto.fit import fit

    config = TTOConfig(iterations=5, n_samples=1000, class_iterations=40)
    for sid, cls in (("ball2", "ball"), ("slab2", "slab")):
        result = fit(toy["model"], _obs(toy, sid, cls), config, seed=0)
        assert result.class_name == cls, result.class_scores


def test_unknown_class_is_refused(toy):
    from core.tto.fit import fit

    with pytest.raises(ObservationError, match="unknown class 'teapot'.*ball"):
        fit(toy["model"], _obs(toy), TTOConfig(iterations=2), class_name="teapot")


def test_reconstruct_command_end_to_end(toy, tmp_path):
    import argparse

    from core.commands import reconstruct_command

    parser = argparse.ArgumentParser()
    reconstruct_command.add_arguments(parser)
    args = parser.parse_args(["--ckpt", str(toy["ckpt"]), "--input", str(toy["data"] / "SdfSamples/toy/ball/ball2.npz"),
                              "--class", "ball", "--losses", "all", "--iterations", "20", "--samples-per-step", "1000",
                              "--resolution", "32", "--out", str(tmp_path), "--quiet"])
    assert reconstruct_command.run(args) == 0
    codes = json.loads((tmp_path / "codes.json").read_text())
    assert codes["class_name"] == "ball" and len(codes["shape_code"]) == toy["model"].shape_codes.shape[-1]
    assert codes["config"]["losses"] == "all"
    history = json.loads((tmp_path / "losses.json").read_text())["history"]
    assert len(history) >= 20
    import trimesh

    mesh = trimesh.load(tmp_path / "mesh.ply", process=False)
    assert len(mesh.faces) > 0 and np.abs(mesh.vertices).max() <= 1.0


def test_evaluate_command_with_ablation(toy, tmp_path):
    import argparse

    from core.commands import evaluate_command

    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    args = parser.parse_args(["--ckpt", str(toy["ckpt"]), "--data", str(toy["data"]), "--split", "test",
                              "--ablation", "baseline,surface", "--iterations", "10", "--samples-per-step", "1000",
                              "--resolution", "24", "--eval-points", "2000", "--out", str(tmp_path), "--quiet"])
    assert evaluate_command.run(args) == 0
    table = (tmp_path / "ablation.md").read_text()
    assert "| baseline | 2 |" in table and "| surface | 2 |" in table
    rows = (tmp_path / "baseline" / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and "thin_fscore_1pct" in rows[0]


def test_evaluate_training_shapes_with_trained_codes(toy, tmp_path):
    import argparse

    from core.commands import evaluate_command

    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    args = parser.parse_args(["--ckpt", str(toy["ckpt"]), "--data", str(toy["data"]), "--split", "train",
                              "--use-trained-codes", "--resolution", "24", "--eval-points", "2000",
                              "--out", str(tmp_path), "--quiet"])
    assert evaluate_command.run(args) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["rows"]) == 4 and all("error" not in r for r in data["rows"])
