"""Test-time optimisation: config, loss terms, and fits of a tiny model trained by the project's trainer."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.tto import losses as L
from core.tto.config import TTOConfig, parse_losses
from core.utils.errors import ConfigError, ObservationError


def test_defaults_are_deepsdf_reconstruct():
    c = TTOConfig()
    assert (c.iterations, c.lr, c.n_samples, c.code_std, c.code_reg, c.clamp) == (800, 5e-3, 8000, 0.01, 1e-4, 0.1)
    assert (L.samples_at(c, 0), L.samples_at(c, 799)) == (8000, 8000)  # DeepSDF's batch at every step
    assert c.enabled() == []
    assert L.learning_rate(c, 399) == pytest.approx(5e-3)
    assert L.learning_rate(c, 400) == pytest.approx(5e-4)


def test_loss_presets():
    assert parse_losses("baseline") == ()
    assert parse_losses("surface") == ("surface_term", "normal_term")
    assert set(parse_losses("all")) == {
        "surface_term",
        "normal_term",
        "curriculum",
        "coarse_to_fine",
        "finetune_last_layers",
        "hard_draws",
    }
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


def test_early_samples_cover_the_steps_before_the_first_decay_only():
    c = TTOConfig(iterations=300, n_samples=8000, early_sample_share=0.25)
    assert [L.samples_at(c, i) for i in (0, 149, 150, 299)] == [2000, 2000, 8000, 8000]
    assert L.samples_at(c, 300) == 8000  # fine-tuning steps pass ``iterations``: always the full batch
    assert L.samples_at(replace(c, lr_decay_every=1000), 299) == 2000  # no decay within the fit
    assert L.samples_at(replace(c, lr_decay_every=1000), 300) == 8000
    assert L.samples_at(replace(c, n_samples=4), 0) == 2  # never fewer than one sample a side
    assert all(L.samples_at(TTOConfig(early_sample_share=1.0), i) == 8000 for i in (0, 799))  # DeepSDF's batch
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match="early_sample_share"):
            TTOConfig(early_sample_share=bad)


# --------------------------------------------------------------------------- tiny trained model
# The analytic toy set and the tiny trained checkpoint live in tests/conftest.py (shared).
from tests.conftest import CLASSES, write_analytic_dataset  # noqa: E402,F401


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
    config = TTOConfig.from_losses(
        losses,
        iterations=12,
        n_samples=1000,
        finetune_iterations=5,
        n_surface_samples=300,
        colour_finetune_iterations=4,
    )
    obs = _obs(toy, "slab2", "slab")
    result = fit(model, obs, config, class_name="slab", seed=1)
    coloured = config.finetune_last_layers and model.has_colour and obs.has_colour
    assert len(result.history) == 12 + (5 if config.finetune_last_layers else 0) + (4 if coloured else 0)
    assert all(np.isfinite(h["colour" if h["stage"] == "colour" else "total"]) for h in result.history)
    assert np.isfinite(result.final_losses["sdf"])
    if config.surface_term:
        assert "surface" in result.final_losses and "normal" in result.final_losses
    assert (result.decoder_override is not None) == config.finetune_last_layers
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------- what each switch does
# Each switch is compared with the baseline from the same start (the same seed draws the same
# initial code) on the toy set, through the public API only: fit's result and its loss history.


def _surface_errors(model, observation, code, class_name):
    """(mean |f| at the observed surface points, mean (1 - cos(grad f, observed normal)) there)."""
    fn = model.sdf_fn(code, model.condition(class_name))
    points = torch.as_tensor(observation.surface_points).clone().requires_grad_(True)
    sdf = fn(points)
    (grad,) = torch.autograd.grad(sdf.sum(), points)
    cos = torch.nn.functional.cosine_similarity(grad, torch.as_tensor(observation.surface_normals), dim=1)
    return float(sdf.detach().abs().mean()), float((1 - cos).mean())


def test_surface_term_pulls_the_sdf_to_zero_at_the_observed_surface(toy):
    from core.tto.fit import fit

    model, obs = toy["model"], _obs(toy, "slab2", "slab")
    base = TTOConfig(iterations=60, n_samples=1000, n_surface_samples=300)
    plain = fit(model, obs, base, class_name="slab", seed=1)
    pulled = fit(model, obs, replace(base, surface_term=True), class_name="slab", seed=1)
    assert "surface" in pulled.history[-1] and "surface" not in plain.history[-1]
    on_surface_plain, _ = _surface_errors(model, obs, plain.shape_code, "slab")
    on_surface_pulled, _ = _surface_errors(model, obs, pulled.shape_code, "slab")
    assert on_surface_pulled < 0.95 * on_surface_plain, (on_surface_pulled, on_surface_plain)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the normal term has no effect on the code fit: with the ReLU decoder grad_x f is piecewise constant "
        "in the code, so d(normal loss)/d(code) is 0 (about 1e-12) and fits with normal_weight 0 and 10 give the "
        "same code; it needs finite-difference normals or a smooth activation (it does act when fine-tuning)"
    ),
)
def test_normal_term_turns_the_sdf_gradient_towards_the_observed_normals(toy):
    from core.tto.fit import fit

    model, obs = toy["model"], _obs(toy, "slab2", "slab")
    base = TTOConfig(iterations=20, n_samples=1000, n_surface_samples=300, normal_term=True)
    # The same draws with the term weighted 0 and 10: any difference is the term's doing.
    off = fit(model, obs, replace(base, normal_weight=0.0), class_name="slab", seed=1)
    on = fit(model, obs, replace(base, normal_weight=10.0), class_name="slab", seed=1)
    assert (on.shape_code - off.shape_code).abs().max() > 1e-4, "the normal term did not move the code"
    normal_error_on = _surface_errors(model, obs, on.shape_code, "slab")[1]
    assert normal_error_on < _surface_errors(model, obs, off.shape_code, "slab")[1]


def test_normal_loss_asks_for_the_surface_direction_not_its_side():
    """Real meshes' face normals point either way; the SDF samples say which side is outside."""
    gen = torch.Generator().manual_seed(0)
    grad, normals = torch.randn(500, 3, generator=gen), torch.randn(500, 3, generator=gen)
    normals = normals / normals.norm(dim=1, keepdim=True)
    flips = torch.where(torch.rand(500, generator=gen) < 0.4, -1.0, 1.0)[:, None]
    assert torch.allclose(L.normal_loss(grad, normals * flips), L.normal_loss(grad, normals))
    assert float(L.normal_loss(normals, normals)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.normal_loss(-3 * normals, normals)) == pytest.approx(0.0, abs=1e-6)
    side = torch.linalg.cross(normals, torch.randn(500, 3, generator=gen), dim=1)
    assert float(L.normal_loss(side, normals)) == pytest.approx(1.0, abs=1e-5)


def test_finetuning_with_the_normal_term_ignores_which_way_the_normals_point(toy):
    from core.tto.fit import fit

    model, obs = toy["model"], _obs(toy, "slab2", "slab")
    config = TTOConfig(
        iterations=10,
        n_samples=1000,
        n_surface_samples=300,
        normal_term=True,
        normal_weight=1.0,
        finetune_last_layers=True,
        finetune_iterations=10,
        finetune_colour=False,
    )
    flips = np.where(np.random.default_rng(0).random(len(obs.surface_normals)) < 0.4, -1.0, 1.0)[:, None]
    flipped = replace(obs, surface_normals=(obs.surface_normals * flips).astype(np.float32))
    as_given = fit(model, obs, config, class_name="slab", seed=1)
    turned = fit(model, flipped, config, class_name="slab", seed=1)
    without = fit(model, obs, replace(config, normal_weight=0.0), class_name="slab", seed=1)
    differs = [k for k, v in as_given.decoder_override.items() if not torch.equal(v, without.decoder_override[k])]
    assert differs, "the normal term did not act on the fine-tuned layers"
    for key, value in as_given.decoder_override.items():
        torch.testing.assert_close(turned.decoder_override[key], value)


def _stage_of(config, step):
    """(eps, lambda) that TTOConfig's curriculum fields give for 0-based ``step``."""
    progress = step / config.iterations
    stage = max(i for i, start in enumerate(config.curriculum_stages) if progress >= start)
    return config.curriculum_eps[stage], config.curriculum_lambda[stage]


def test_curriculum_weights_the_loss_as_its_schedule_says(toy):
    """``sdf`` is the loss minimised, ``l1`` the plain clamped L1 of the same batch: their relation
    at every step shows the tolerance eps and the hard-sample weight lambda in force."""
    from core.tto.fit import fit

    model, obs = toy["model"], _obs(toy, "slab2", "slab")
    config = TTOConfig(iterations=50, n_samples=1000, curriculum=True)
    result = fit(model, obs, config, class_name="slab", seed=1)
    assert len(result.history) == 50
    seen = set()
    for row in result.history:
        eps, lam = _stage_of(config, row["iteration"] - 1)
        sdf, l1 = row["sdf"], row["l1"]
        seen.add((eps, lam))
        # max(e - eps, 0) lies in [e - eps, e]; the weights 1 +- lambda scale that by [1 - lambda, 1 + lambda]
        assert (1 - lam) * max(l1 - eps, 0.0) - 1e-6 <= sdf <= (1 + lam) * l1 + 1e-6, (row, eps, lam)
        if eps > 0:
            assert sdf < l1 - 0.1 * eps, (row, eps)  # errors within the tolerance are free
        if eps == 0 and lam == 0:
            assert sdf == pytest.approx(l1, rel=1e-5)
    assert seen == set(zip(config.curriculum_eps, config.curriculum_lambda, strict=True))  # every stage ran
    weighted = [r for r in result.history if _stage_of(config, r["iteration"] - 1)[0] == 0]
    assert any(abs(r["sdf"] - r["l1"]) > 1e-4 for r in weighted)  # the weighting changes the loss
    plain = fit(model, obs, replace(config, curriculum=False), class_name="slab", seed=1)
    assert all(r["sdf"] == pytest.approx(r["l1"], rel=1e-5) for r in plain.history)
    assert result.history[-1]["l1"] < 0.9 * result.history[0]["l1"]  # and it still fits


def test_coarse_to_fine_shrinks_the_clamp_over_the_run(toy):
    """``sdf`` is clamped at the scheduled distance, ``l1`` at ``clamp``: equal at the start, then lower
    (clamping both sides closer never grows a difference), and lowest once ``clamp_end`` is reached."""
    from core.tto.fit import fit

    model, obs = toy["model"], _obs(toy, "slab2", "slab")
    config = TTOConfig(iterations=40, n_samples=1000, coarse_to_fine=True)
    assert config.clamp_start == config.clamp
    history = fit(model, obs, config, class_name="slab", seed=1).history
    ratio = np.array([r["sdf"] / r["l1"] for r in history])
    assert ratio[0] == pytest.approx(1.0, rel=1e-5)
    assert (ratio <= 1 + 1e-6).all()
    settled = int(np.ceil(config.c2f_until * config.iterations))  # steps from here on clamp at clamp_end
    assert ratio[settled:].max() < 0.9 and ratio[settled:].max() < ratio[:3].min()


def test_coarse_to_fine_moves_the_samples_towards_the_surface(toy):
    """Measured with an observation made so that a batch's plain L1 counts its near-surface samples.

    The code is held still (lr 1e-12), so the prediction f0 is known: far samples (|f0| > 0.1) get
    sdf = f0 (error 0), near ones (|f0| < 0.01) get f0 +- 0.015 (error 0.015, |sdf| < near_band). A
    tenth of each side is near, so l1 / 0.015 is the share of near samples drawn at each step:
    a tenth without coarse-to-fine, ``s + (1 - s) / 10`` with it, ``s`` the scheduled near fraction.
    """
    from core.tto.fit import fit
    from core.tto.observations import Observation

    model, step = toy["model"], 0.015
    frozen = {"lr": 1e-12, "n_samples": 1000, "code_reg": 0.0}
    dummy = Observation(np.array([[0, 0, 0], [0.9, 0, 0]], np.float32), np.array([-0.1, 0.1], np.float32))
    start = fit(model, dummy, TTOConfig(iterations=1, **frozen), class_name="slab", seed=3).shape_code
    points = np.random.default_rng(0).uniform(-1, 1, (200_000, 3)).astype(np.float32)
    with torch.no_grad():
        f0 = model.sdf_fn(start, model.condition("slab"))(torch.as_tensor(points)).numpy()
    near, far = np.abs(f0) < 0.01, np.abs(f0) > 0.1
    rows, near_rows = [], []
    for side in (f0 >= 0, f0 < 0):
        picked_near, picked_far = np.flatnonzero(near & side)[:200], np.flatnonzero(far & side)[:1800]
        assert len(picked_near) == 200 and len(picked_far) == 1800, "the toy model's f0 has too few such points"
        rows += [picked_near, picked_far]
        near_rows.append(np.ones(200, bool))
        near_rows.append(np.zeros(1800, bool))
    index, is_near = np.concatenate(rows), np.concatenate(near_rows)
    sdf = f0[index] + np.where(is_near, np.where(f0[index] >= 0, step, -step), 0.0)
    obs = Observation(points[index], sdf.astype(np.float32), source="near/far probe")

    for coarse_to_fine in (False, True):
        config = TTOConfig(iterations=40, coarse_to_fine=coarse_to_fine, **frozen)
        result = fit(model, obs, config, class_name="slab", seed=3)
        assert torch.allclose(result.shape_code, start, atol=1e-6)  # held still: f0 is the prediction
        share = np.array([r["l1"] for r in result.history]) / step
        scheduled = np.array(
            [
                min(1.0, (i / config.iterations) / config.c2f_until) * config.near_fraction_end
                if coarse_to_fine
                else 0.0
                for i in range(config.iterations)
            ]
        )
        expected = scheduled + (1 - scheduled) * 0.1
        assert np.abs(share - expected).max() < 0.06, (coarse_to_fine, np.round(share, 3), np.round(expected, 3))
    assert share[-1] > 0.7 and share[0] < 0.15


@pytest.mark.parametrize("layers", [1, 2])
def test_finetune_trains_only_the_last_layers_after_the_code_fit(toy, layers):
    from core.tto.fit import fit

    model, obs = toy["model"], _obs(toy, "slab2", "slab")
    before = _state(model)
    base = TTOConfig(iterations=40, n_samples=1000)
    plain = fit(model, obs, base, class_name="slab", seed=1)
    config = replace(
        base, finetune_last_layers=True, finetune_layers=layers, finetune_iterations=30, finetune_colour=False
    )
    tuned = fit(model, obs, config, class_name="slab", seed=1)
    assert [r["stage"] for r in tuned.history] == ["code"] * 40 + ["finetune"] * 30
    assert torch.equal(tuned.shape_code, plain.shape_code)  # the code fit comes first, unchanged

    # only the last `layers` linear layers the SDF reaches changed (the colour head is not one)
    def module_of(key):  # "layers.3.bias" and "layers.3.parametrizations.weight.original0" -> "layers.3"
        return key.split(".parametrizations")[0] if ".parametrizations" in key else key.rsplit(".", 1)[0]

    changed = {module_of(k) for k, v in tuned.decoder_override.items() if not torch.equal(v, before[k])}
    trunk = sorted({k.split(".")[1] for k in before if k.startswith("layers.")}, key=int)
    assert changed == {"sdf_out", *(f"layers.{i}" for i in trunk[len(trunk) - layers + 1 :])}
    assert all(torch.equal(before[k], v) for k, v in _state(model).items())  # on a private copy

    def clamped_l1(m):
        with torch.no_grad():
            pred = m.sdf_fn(tuned.shape_code, m.condition("slab"))(torch.as_tensor(obs.points))
        return float(L.clamped_l1(pred, torch.as_tensor(obs.sdf), 0.1))

    assert clamped_l1(model.with_decoder(tuned.decoder_override)) < 0.95 * clamped_l1(model)


def test_colour_head_is_fitted_after_the_finetuning_and_leaves_the_geometry(toy):
    """The colour stage trains the colour head alone, on a private copy: the SDF stays exactly the fine-tuning's,
    the colours come closer to the observation's, the shared model is untouched."""
    from core.tto.fit import fit

    model, obs = toy["model"], _obs(toy)
    if not (model.has_colour and obs.has_colour):
        pytest.skip("the tiny model or its observation has no colour")
    before = _state(model)
    base = TTOConfig(iterations=30, n_samples=1000, finetune_last_layers=True, finetune_iterations=20)
    plain = fit(model, obs, replace(base, finetune_colour=False), class_name="ball", seed=0)
    coloured = fit(model, obs, replace(base, colour_finetune_iterations=60), class_name="ball", seed=0)
    assert [r["stage"] for r in coloured.history] == ["code"] * 30 + ["finetune"] * 20 + ["colour"] * 60
    changed = {k for k, v in coloured.decoder_override.items() if not torch.equal(v, plain.decoder_override[k])}
    assert changed and all(k.startswith("colour_head.") for k in changed)
    assert all(torch.equal(before[k], v) for k, v in _state(model).items())

    plain_l1, plain_sdf = _near_colour_l1(model, obs, plain)
    coloured_l1, coloured_sdf = _near_colour_l1(model, obs, coloured)
    assert torch.equal(plain_sdf, coloured_sdf)
    assert coloured_l1 < 0.9 * plain_l1


def _near_colour_l1(model, obs, result, class_name="ball"):
    """(colour L1 on every observed sample within 0.05 of the surface, the SDF there) of a fit's result."""
    near = np.abs(obs.sdf) < 0.05
    points, target = torch.as_tensor(obs.points[near]), torch.as_tensor(obs.colours[near], dtype=torch.float32)
    m = model.with_decoder(result.decoder_override)
    with torch.no_grad():
        rgb = m.decode(points, result.shape_code, result.colour_code, m.condition(class_name))[1]
        sdf = m.decode(points, result.shape_code, None, m.condition(class_name))[0]
    return float((rgb - target).abs().mean()), sdf


def test_colour_head_stage_captures_its_inputs_on_a_pool_of_the_near_samples(toy, monkeypatch):
    """``colour_finetune_pool`` caps the points whose head inputs are captured (0: every near-surface sample), and a
    pool still fits the colours closer to the observation's than no colour stage at all."""
    import core.model.colour_head as colour_head
    from core.tto.fit import fit

    fit_module = sys.modules["core.tto.fit"]
    model, obs = toy["model"], _obs(toy)
    if not (model.has_colour and obs.has_colour):
        pytest.skip("the tiny model or its observation has no colour")
    captured: list[int] = []

    class Recorded(colour_head.ColourHeadInputs):  # the real capture; it only counts the points
        def __init__(self, model, points, *args):
            captured.append(len(points))
            super().__init__(model, points, *args)

    monkeypatch.setattr(fit_module, "ColourHeadInputs", Recorded)
    base = TTOConfig(iterations=10, n_samples=1000, finetune_last_layers=True, finetune_iterations=5)
    n_near = int(np.sum(np.abs(obs.for_surface_offset(model.surface_offset).sdf) < base.colour_band))
    assert n_near > 100
    fit(model, obs, replace(base, colour_finetune_pool=0), class_name="ball", seed=0)
    pooled_config = replace(base, colour_finetune_pool=100, colour_finetune_iterations=60)
    pooled = fit(model, obs, pooled_config, class_name="ball", seed=0)
    assert captured == [n_near, 100]
    plain = fit(model, obs, replace(base, finetune_colour=False), class_name="ball", seed=0)
    # measured on every near sample, the pool's and the others
    assert _near_colour_l1(model, obs, pooled)[0] < 0.9 * _near_colour_l1(model, obs, plain)[0]


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
    for progress in iterate_fit(
        toy["model"], _obs(toy), TTOConfig(iterations=500, n_samples=500), class_name="ball", cancel=cancel, every=5
    ):
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


@pytest.mark.parametrize("strategy", ["batched", "sequential"])
def test_both_class_strategies_pick_the_right_class(toy, strategy):
    from core.tto.fit import fit

    config = TTOConfig(iterations=2, n_samples=1000, class_iterations=40, class_strategy=strategy)
    for sid, cls in (("ball2", "ball"), ("slab2", "slab")):
        result = fit(toy["model"], _obs(toy, sid, cls), config, seed=0)
        assert result.class_name == cls, result.class_scores
        assert set(result.class_scores) == set(toy["model"].class_names)


@pytest.mark.parametrize("strategy", ["batched", "sequential"])
def test_class_inference_runs_at_its_own_learning_rate_not_the_fits(toy, strategy):
    from core.tto.fit import fit

    base = TTOConfig(iterations=2, n_samples=1000, class_iterations=20, class_strategy=strategy)
    scores = [
        fit(toy["model"], _obs(toy), replace(base, **change), seed=0).class_scores
        for change in ({}, {"lr": 2e-2}, {"class_lr": 2e-2})
    ]
    assert scores[0] == scores[1]  # the main fit's rate (the viewer's 1e-2) leaves the class scores alone
    assert scores[0] != scores[2]  # their own rate moves them


def test_batched_class_inference_reports_progress_and_can_be_cancelled(toy):
    from core.tto.fit import iterate_fit

    config = TTOConfig(iterations=2, n_samples=1000, class_iterations=40)
    stages = [p.stage for p in iterate_fit(toy["model"], _obs(toy), config, every=5)]
    assert any(s.startswith("class:") for s in stages) and stages[-1] == "done"
    stop = threading.Event()
    stop.set()
    result = list(iterate_fit(toy["model"], _obs(toy), config, cancel=stop))[-1].result
    assert result.cancelled and result.class_name is None


def test_bfloat16_fit_follows_the_float32_fit(toy):
    # bfloat16 autocast (the default on CPUs with native bfloat16 units) must reach the same fit.
    from core.tto.fit import fit

    obs = _obs(toy)
    runs = {}
    for precision in ("float32", "bfloat16"):
        config = TTOConfig.from_losses(
            "finetune", iterations=60, n_samples=2000, finetune_iterations=20, precision=precision
        )
        runs[precision] = fit(toy["model"], obs, config, class_name="ball", seed=3)
    a, b = runs["float32"], runs["bfloat16"]
    assert torch.nn.functional.cosine_similarity(a.shape_code, b.shape_code, dim=0) > 0.98
    assert b.final_losses["l1"] == pytest.approx(a.final_losses["l1"], rel=0.15)
    assert b.decoder_override is not None


def test_early_samples_reach_the_fit_of_the_full_batch(toy):
    # The code fit draws a share of its samples before its first decay: other draws than DeepSDF's fixed batch,
    # and a fit of the same shape.
    from core.tto.fit import fit

    obs = _obs(toy)
    config = TTOConfig(iterations=80, n_samples=2000, lr=1e-2, precision="float32", early_sample_share=1.0)
    plain = fit(toy["model"], obs, config, class_name="ball", seed=3)
    early = fit(toy["model"], obs, replace(config, early_sample_share=0.25), class_name="ball", seed=3)
    assert not torch.equal(plain.shape_code, early.shape_code)
    assert torch.nn.functional.cosine_similarity(plain.shape_code, early.shape_code, dim=0) > 0.9
    assert early.final_losses["l1"] == pytest.approx(plain.final_losses["l1"], rel=0.2)


def test_hard_draws_follow_the_kept_errors_side_by_side():
    # Each side's hard share is drawn in proportion to its samples' last errors; none before they are measured;
    # a batch's errors go back to the rows it was drawn from, per side.
    from core.tto.fit import _Batches
    from core.tto.observations import Observation

    rng = np.random.default_rng(0)
    sdf = np.concatenate([np.full(500, 0.05), np.full(500, -0.05)]).astype(np.float32)
    obs = Observation(points=rng.uniform(-1, 1, (1000, 3)).astype(np.float32), sdf=sdf)
    batches = _Batches(obs, torch.device("cpu"), near_band=0.03)
    gen = torch.Generator().manual_seed(0)
    *_, rows = batches.draw_indexed(400, 0.0, gen, hard_share=1.0)
    assert batches.errors is None and all(len(set(r.tolist())) > 150 for r in rows)  # uniform until measured
    outside, inside = torch.zeros(500), torch.zeros(500)
    outside[7], inside[[3, 4]] = 1.0, 1.0  # every other sample fitted (its weight the floor)
    batches.set_errors([outside, inside])
    *_, rows = batches.draw_indexed(400, 0.0, gen, hard_share=0.5)
    hard_out, hard_in = rows[0][100:], rows[1][100:]  # the uniform part first, then the hard draws
    assert len(hard_out) == 100 and set(hard_out.tolist()) == {7} and set(hard_in.tolist()) <= {3, 4}
    batches.record_errors(rows, torch.cat([torch.full((200,), 0.02), torch.full((200,), 0.03)]))
    assert batches.errors is not None
    assert batches.errors[0][7] == pytest.approx(0.02) and batches.errors[1][3] == pytest.approx(0.03)
    assert float(batches.errors[0][rows[0][0]]) == pytest.approx(0.02)
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="hard_share must be in"):
            TTOConfig(hard_share=bad)
    assert L.hard_share(TTOConfig()) == 0.0 and L.hard_share(TTOConfig(hard_draws=True)) == 0.5
    with pytest.raises(ConfigError, match="hard_refresh_every must be >= 1"):
        TTOConfig(hard_refresh_every=0)


def test_hard_draws_fit_as_the_uniform_draws_do(toy, monkeypatch):
    # Half of each batch drawn by error: other draws, the same shape; the errors are measured at the code fit's
    # refresh steps and the fine-tuning's, through the frozen-prefix cache there (its errors those of the
    # whole trunk).
    import importlib

    fit_module = importlib.import_module("core.tto.fit")
    measured: list[bool] = []  # per measurement: through the prefix cache?
    real_measure = fit_module._measure_errors

    def recording(ctx, code, chunk=32768):
        real_measure(replace(ctx, prefix=None), code, chunk)  # the whole trunk
        whole = [e.clone() for e in ctx.batches.errors]
        real_measure(ctx, code, chunk)
        for got, want in zip(ctx.batches.errors, whole, strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
        measured.append(ctx.prefix is not None)

    monkeypatch.setattr(fit_module, "_measure_errors", recording)
    obs = _obs(toy)
    config = TTOConfig.from_losses(
        "finetune",
        iterations=80,
        n_samples=2000,
        lr=1e-2,
        precision="float32",
        finetune_iterations=20,
        fit_colour=False,
        hard_refresh_every=30,
    )
    plain = fit_module.fit(toy["model"], obs, config, class_name="ball", seed=3)
    hard = fit_module.fit(toy["model"], obs, replace(config, hard_draws=True), class_name="ball", seed=3)
    assert len(measured) == 3  # code steps 30 and 60, the fine-tuning's first step (20 steps, refresh every 30)
    assert measured == [False, False, True]
    assert not torch.equal(plain.shape_code, hard.shape_code)
    assert torch.nn.functional.cosine_similarity(plain.shape_code, hard.shape_code, dim=0) > 0.9
    # The last batch's loss is no measure here (hard draws pick the worst samples): every sample's is. Drawing
    # the worst samples more trades a little of the mean error for the rare ones (on this toy ball 1.6x the
    # uniform fit's mean, 0.25x the prior's mean shape's; on real furniture it gains thin parts).
    hard_l1, plain_l1 = _whole_l1(toy, obs, hard), _whole_l1(toy, obs, plain)
    start_l1 = _whole_l1(toy, obs, replace(plain, shape_code=torch.zeros_like(plain.shape_code), decoder_override=None))
    assert hard_l1 < 0.5 * start_l1 and hard_l1 < 2 * plain_l1
    # kept on a single-view scan when asked for, with a note of what they cost there
    scan = fit_module.fit(
        toy["model"], replace(obs, kind="scan"), TTOConfig(iterations=3, hard_draws=True), class_name="ball"
    )
    assert scan.config.hard_draws and any("hard draws on a single-view scan" in note for note in scan.notes)


def _whole_l1(toy, obs, result) -> float:
    """Clamped L1 of a fit (its code and fine-tuned decoder) over every sample of the observation."""
    model = toy["model"] if result.decoder_override is None else toy["model"].with_decoder(result.decoder_override)
    with torch.no_grad():
        pred, _ = model.decode(
            torch.as_tensor(obs.points), result.shape_code, None, model.condition(class_name=result.class_name)
        )
    return float(L.clamped_l1(pred, torch.as_tensor(obs.sdf), 0.1))


def test_finetuning_from_the_cached_prefix_is_the_plain_finetuning(toy, monkeypatch):
    # The frozen trunk prefix of every sample is computed once: the trained weights must come out
    # as when every step runs the whole trunk.
    import importlib

    fit_module = importlib.import_module("core.tto.fit")  # the module, not the function core.tto exports
    config = TTOConfig.from_losses(
        "finetune", iterations=10, n_samples=1000, finetune_iterations=15, precision="float32", fit_colour=False
    )  # a colour term bypasses the cache
    made = []
    real_cache = fit_module._PrefixCache

    class Recording(real_cache):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.start)

    monkeypatch.setattr(fit_module, "_PrefixCache", Recording)
    cached = fit_module.fit(toy["model"], _obs(toy), config, class_name="ball", seed=2)
    assert made and made[0] >= 1  # the cache was used, from a real prefix
    monkeypatch.setattr(fit_module, "PREFIX_CACHE_BYTES", 0)
    plain = fit_module.fit(toy["model"], _obs(toy), config, class_name="ball", seed=2)
    assert len(made) == 1  # no cache when it does not fit in memory
    assert cached.decoder_override.keys() == plain.decoder_override.keys()
    for key, value in plain.decoder_override.items():
        torch.testing.assert_close(cached.decoder_override[key], value, atol=1e-5, rtol=1e-4)


def test_speed_settings_are_checked():
    with pytest.raises(ConfigError, match="precision must be auto, float32 or bfloat16, got 'half'"):
        TTOConfig(precision="half")
    with pytest.raises(ConfigError, match="class_strategy must be batched or sequential"):
        TTOConfig(class_strategy="vote")
    with pytest.raises(ConfigError, match="class_samples must be >= 1"):
        TTOConfig(class_samples=0)


def test_unknown_class_is_refused(toy):
    from core.tto.fit import fit

    with pytest.raises(ObservationError, match="unknown class 'teapot'.*ball"):
        fit(toy["model"], _obs(toy), TTOConfig(iterations=2), class_name="teapot")


def test_reconstruct_command_end_to_end(toy, tmp_path):
    import argparse

    from core.commands import reconstruct_command

    parser = argparse.ArgumentParser()
    reconstruct_command.add_arguments(parser)
    args = parser.parse_args(
        [
            "--ckpt",
            str(toy["ckpt"]),
            "--input",
            str(toy["data"] / "SdfSamples/toy/ball/ball2.npz"),
            "--class",
            "ball",
            "--losses",
            "all",
            "--iterations",
            "20",
            "--samples-per-step",
            "1000",
            "--resolution",
            "32",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
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
    args = parser.parse_args(
        [
            "--ckpt",
            str(toy["ckpt"]),
            "--data",
            str(toy["data"]),
            "--split",
            "test",
            "--ablation",
            "baseline,surface",
            "--iterations",
            "10",
            "--samples-per-step",
            "1000",
            "--resolution",
            "24",
            "--eval-points",
            "2000",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
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
    args = parser.parse_args(
        [
            "--ckpt",
            str(toy["ckpt"]),
            "--data",
            str(toy["data"]),
            "--split",
            "train",
            "--use-trained-codes",
            "--resolution",
            "24",
            "--eval-points",
            "2000",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert evaluate_command.run(args) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["rows"]) == 4 and all("error" not in r for r in data["rows"])


def test_tto_settings_from_the_command_line(toy, tmp_path, capsys):
    """``evaluate --tto-set`` reaches the fits (recorded in results.json); a bad key is refused up front."""
    import argparse

    from core.commands import evaluate_command

    config = TTOConfig().with_overrides(["finetune_layers=3", "finetune_lr=5e-4"])
    assert (config.finetune_layers, config.finetune_lr, config.iterations) == (3, 5e-4, 800)
    with pytest.raises(ConfigError, match="unknown setting"):
        TTOConfig().with_overrides(["finetune_layer=3"])
    with pytest.raises(ConfigError, match="expected a TTO setting name"):
        TTOConfig().with_overrides(["tto.finetune_layers=3"])

    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    common = [
        "--ckpt",
        str(toy["ckpt"]),
        "--data",
        str(toy["data"]),
        "--split",
        "test",
        "--iterations",
        "5",
        "--samples-per-step",
        "500",
        "--resolution",
        "24",
        "--eval-points",
        "1000",
        "--quiet",
    ]
    args = parser.parse_args(
        [
            *common,
            "--ablation",
            "baseline,finetune",
            "--tto-set",
            "finetune_layers=2",
            "--tto-set",
            "finetune_iterations=3",
            "--out",
            str(tmp_path / "ok"),
        ]
    )
    assert evaluate_command.run(args) == 0
    saved = json.loads((tmp_path / "ok" / "finetune" / "results.json").read_text())["config"]
    assert (saved["finetune_last_layers"], saved["finetune_layers"], saved["finetune_iterations"]) == (True, 2, 3)
    args = parser.parse_args([*common, "--tto-set", "finetune_layers=two", "--out", str(tmp_path / "bad")])
    assert evaluate_command.run(args) == 2
    assert "finetune_layers: expected an integer" in capsys.readouterr().err and not (tmp_path / "bad").exists()
