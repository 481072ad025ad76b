"""The prior anchor of the decoder fine-tuning (core/tto/anchor.py): where a partial observation has no
sample, the fine-tuned field stays the frozen decoder's; off by default, and a dense observation leaves it
nothing to hold. Run on the tiny model trained on the analytic toy set (tests/conftest.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from core.tto.anchor import prior_anchor
from core.tto.config import PARTIAL_SCAN_ANCHOR_WEIGHT, TTOConfig, for_observation
from core.utils.errors import ConfigError


def test_anchor_points_are_far_from_every_observed_sample_and_near_the_frozen_surface():
    observed = np.random.default_rng(0).uniform(-1, 1, (60000, 3)).astype(np.float32)
    observed = observed[observed[:, 0] > 0]  # the camera saw the half x > 0

    def sphere(points: torch.Tensor) -> torch.Tensor:  # the "frozen decoder": a sphere of radius 0.5
        return points.norm(dim=1) - 0.5

    anchor = prior_anchor(observed, sphere, gap=0.1, clamp=0.1, pool=5000, device=torch.device("cpu"))
    assert anchor is not None and 100 < len(anchor.points) <= 5000
    pts = anchor.points.numpy()
    assert cKDTree(observed).query(pts)[0].min() > 0.1
    assert (pts[:, 0] < 0.05).all()  # all on the unseen side
    assert torch.allclose(anchor.target, sphere(anchor.points)) and bool((anchor.target.abs() < 0.1).all())
    again = prior_anchor(observed, sphere, gap=0.1, clamp=0.1, pool=5000, device=torch.device("cpu"))
    assert torch.equal(anchor.points, again.points)  # a function of its seed


def test_a_dense_observation_leaves_the_anchor_nothing():
    g = np.linspace(-1, 1, 41, dtype=np.float32)
    dense = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)  # spacing 0.05

    def sphere(points: torch.Tensor) -> torch.Tensor:
        return points.norm(dim=1) - 0.5

    assert prior_anchor(dense, sphere, gap=0.05, clamp=0.1, pool=100, device=torch.device("cpu")) is None


def test_anchor_settings_are_checked_and_the_automatic_weight_follows_the_observation():
    assert TTOConfig().finetune_anchor_weight is None  # automatic: chosen by the observation
    assert for_observation(TTOConfig(), "scan").finetune_anchor_weight == PARTIAL_SCAN_ANCHOR_WEIGHT
    for kind in ("npz", "mesh", "point_cloud"):
        assert for_observation(TTOConfig(), kind).finetune_anchor_weight == 0.0  # whole: nothing hidden to hold
    assert for_observation(TTOConfig(finetune_anchor_weight=0.0), "scan").finetune_anchor_weight == 0.0  # as given
    assert for_observation(TTOConfig(finetune_anchor_weight=0.3), "mesh").finetune_anchor_weight == 0.3
    assert TTOConfig.from_dict(TTOConfig().to_dict()).finetune_anchor_weight is None  # a saved "auto" loads as one
    for bad in (dict(finetune_anchor_weight=-1.0), dict(finetune_anchor_gap=0.0), dict(finetune_anchor_points=0)):
        with pytest.raises(ConfigError):
            TTOConfig(**bad)


@pytest.fixture(scope="module")
def half_ball(toy_trained):
    """The toy ball's samples on the side x > 0 only: a partial observation."""
    from core.tto.observations import from_npz

    obs = from_npz(toy_trained["data"] / "SdfSamples" / "toy" / "ball" / "ball2.npz")
    seen = obs.points[:, 0] > 0
    surf = obs.surface_points[:, 0] > 0
    return replace(
        obs,
        points=obs.points[seen],
        sdf=obs.sdf[seen],
        colours=None if obs.colours is None else obs.colours[seen],
        surface_points=obs.surface_points[surf],
        surface_normals=None if obs.surface_normals is None else obs.surface_normals[surf],
        surface_colours=None if obs.surface_colours is None else obs.surface_colours[surf],
    )


def test_the_anchor_keeps_the_unseen_side_of_the_frozen_field(toy_trained, half_ball):
    from core.tto.fit import fit

    model = toy_trained["model"]
    base = TTOConfig(
        iterations=40,
        n_samples=1000,
        finetune_last_layers=True,
        finetune_iterations=60,
        finetune_lr=3e-3,
        finetune_colour=False,
    )
    free = fit(model, half_ball, base, class_name="ball", seed=2)
    held = fit(model, half_ball, replace(base, finetune_anchor_weight=10.0), class_name="ball", seed=2)
    assert torch.equal(free.shape_code, held.shape_code)  # the code fit is the same; only the fine-tuning differs
    assert "anchor" not in free.history[-1] and held.history[-1]["anchor"] >= 0
    cond = model.condition("ball")
    g = torch.linspace(-0.9, -0.2, 12)
    unseen = torch.stack(
        torch.meshgrid(g, torch.linspace(-0.9, 0.9, 12), torch.linspace(-0.9, 0.9, 12), indexing="ij"), -1
    )
    unseen = unseen.reshape(-1, 3)
    with torch.no_grad():
        frozen = model.sdf_fn(free.shape_code, cond)(unseen).clamp(-0.1, 0.1)

    @torch.no_grad()
    def drift(result) -> float:
        tuned = model.with_decoder(result.decoder_override).sdf_fn(result.shape_code, cond)(unseen)
        return float((tuned.clamp(-0.1, 0.1) - frozen).abs().mean())

    assert drift(held) < 0.5 * drift(free), (drift(held), drift(free))


def test_a_fit_anchors_a_fine_tuned_scan_by_itself(toy_trained, half_ball):
    """Every caller gets the partial-input default (``evaluate --observation scan`` included): the fit resolves
    the automatic weight from the observation's kind and records the weight it used."""
    from core.tto.fit import fit

    config = TTOConfig(
        iterations=5, n_samples=500, finetune_last_layers=True, finetune_iterations=5, finetune_colour=False
    )
    scan = fit(toy_trained["model"], replace(half_ball, kind="scan"), config, class_name="ball", seed=2)
    whole = fit(toy_trained["model"], half_ball, config, class_name="ball", seed=2)
    assert scan.config.finetune_anchor_weight == PARTIAL_SCAN_ANCHOR_WEIGHT and "anchor" in scan.history[-1]
    assert whole.config.finetune_anchor_weight == 0.0 and "anchor" not in whole.history[-1]


def test_reconstruct_fine_tunes_a_partial_scan_with_the_prior_anchor(toy_trained, tmp_path):
    """``reconstruct --scan-direction`` with fine-tuning: the partial-input default holds the hidden side."""
    import argparse

    import trimesh

    from core.commands import reconstruct_command
    from core.tto.config import PARTIAL_SCAN_ANCHOR_WEIGHT

    mesh_path = tmp_path / "ball.ply"
    trimesh.creation.icosphere(subdivisions=3, radius=0.6).export(mesh_path)
    parser = argparse.ArgumentParser()
    reconstruct_command.add_arguments(parser)
    common = ["--ckpt", str(toy_trained["ckpt"]), "--input", str(mesh_path), "--class", "ball", "--losses"]
    common_tail = ["--iterations", "10", "--samples-per-step", "500", "--resolution", "24", "--quiet"]
    scan = parser.parse_args(
        [*common, "finetune", "--scan-direction", "0,0,1", *common_tail, "--out", str(tmp_path / "scan")]
    )
    whole = parser.parse_args([*common, "finetune", *common_tail, "--out", str(tmp_path / "whole")])
    assert reconstruct_command.run(scan) == 0 and reconstruct_command.run(whole) == 0
    scan_config = json.loads((tmp_path / "scan" / "codes.json").read_text())["config"]
    whole_config = json.loads((tmp_path / "whole" / "codes.json").read_text())["config"]
    assert scan_config["finetune_anchor_weight"] == PARTIAL_SCAN_ANCHOR_WEIGHT
    assert whole_config["finetune_anchor_weight"] == 0.0  # a whole mesh: nothing hidden to hold
    history = json.loads((tmp_path / "scan" / "losses.json").read_text())["history"]
    assert any("anchor" in h for h in history if h["stage"] == "finetune")
    # --tto-set turns it off for a scan the camera saw most of (docs/results.md "Partial scans", oblique rows)
    free = parser.parse_args(
        [*common, "finetune", "--scan-direction", "0,0,1", "--tto-set", "finetune_anchor_weight=0", *common_tail]
        + ["--out", str(tmp_path / "free")]
    )
    assert reconstruct_command.run(free) == 0
    assert json.loads((tmp_path / "free" / "codes.json").read_text())["config"]["finetune_anchor_weight"] == 0.0
    history = json.loads((tmp_path / "free" / "losses.json").read_text())["history"]
    assert not any("anchor" in h for h in history)


def test_reconstruct_refuses_an_unknown_tto_setting(toy_trained, tmp_path, capsys):
    import argparse

    from core.commands import reconstruct_command

    parser = argparse.ArgumentParser()
    reconstruct_command.add_arguments(parser)
    args = parser.parse_args(
        ["--ckpt", str(toy_trained["ckpt"]), "--input", "nowhere.ply", "--tto-set", "anchor_wieght=1"]
        + ["--out", str(tmp_path / "out")]
    )
    assert reconstruct_command.run(args) == 2
    assert "anchor_wieght" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any folder was made
