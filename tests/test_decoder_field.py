"""The fused, frozen field (core.model.decoder_field) and the meshing fast path built on it.

The field must give the decoder's own numbers in float32 for every decoder layout the project
loads (its presets, DeepSDF's norm layers / xyz_in_all / double tanh), stay close in bfloat16, and
the meshes made from it must be the plain path's meshes (Chamfer well under 0.1 voxel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from core.meshing import extract_mesh
from core.meshing.extract import grid_gradients
from core.meshing.grid import evaluate_coarse_to_fine
from core.model.decoder_field import PRECISION_ENV, DecoderField, compute_dtype, fused_linear_relu_available
from core.model.loading import load_trained_model
from core.model.trained_model import untrained_model

REAL = Path(__file__).resolve().parents[1] / "resources" / "real" / "model.pt"

LAYOUTS = {
    "default": dict(preset="tiny"),
    "colour-fourier": dict(preset="tiny", fourier_frequencies=2, colour=True),
    "deepsdf-norm-layers": dict(
        preset="tiny", weight_norm=False, norm_layers=(0, 1, 2), xyz_in_all=True, output_tanh_twice=True, colour=False
    ),
    "paper-like": dict(preset="tiny", latent_in=(2,), weight_norm=True, colour=True, colour_from_layer=1),
}


def _model(layout: str):
    kw = dict(LAYOUTS[layout])
    model = untrained_model(kw.pop("preset"), "cpu", num_shapes=3, **kw)
    model.module.eval()
    return model


def _points(n: int = 3000, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_float32_field_is_the_decoder(layout):
    model = _model(layout)
    code, cond = model.shape_codes[1], model.training_condition(1)
    colour = model.colour_codes[1] if model.has_colour else None
    field = model.mesh_field(code, colour, cond, precision="float32")
    pts = _points()
    with torch.no_grad():
        sdf, rgb = model.decode(pts, code, colour, cond)
    torch.testing.assert_close(field.sdf(pts), sdf, atol=2e-6, rtol=0)
    torch.testing.assert_close(field.sdf_exact(pts), sdf, atol=2e-6, rtol=0)
    if colour is not None:
        torch.testing.assert_close(field.colour(pts), rgb, atol=2e-6, rtol=0)
    # Gradients to the points, as meshing's autograd normals take them.
    p = pts[:500].clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model.sdf_fn(code, cond)(p).sum(), p)
    grad, surface_rgb = field.surface(pts[:500])
    torch.testing.assert_close(grad, expected, atol=1e-5, rtol=1e-4)
    assert (surface_rgb is None) == (colour is None)


@pytest.mark.skipif(not fused_linear_relu_available(torch.bfloat16), reason="no oneDNN bfloat16 linear + ReLU here")
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_fused_layers_give_the_unfused_numbers(layout):
    # oneDNN's linear + ReLU kernel is a speed-up only: every value (SDF, colour, the colour head's
    # features) must be the addmm-then-ReLU path's, bit for bit, in every decoder layout; autograd
    # (the normals' pass) keeps the plain layers.
    model = _model(layout)
    code, cond = model.shape_codes[2], model.training_condition(2)
    colour = model.colour_codes[2] if model.has_colour else None
    latent = model.latent(code, cond)
    fused = DecoderField(model.decoder, latent, colour, precision="bfloat16")
    plain = DecoderField(model.decoder, latent, colour, precision="bfloat16", fuse_relu=False)
    assert any(layer.w_main is not None for layer in fused._layers)
    assert all(layer.w_main is None for layer in plain._layers)
    pts = _points(3000, 2)
    assert torch.equal(fused.sdf(pts), plain.sdf(pts))
    if colour is not None:
        assert torch.equal(fused.colour(pts), plain.colour(pts))
    grad_fused, _ = fused.surface(pts[:300])
    grad_plain, _ = plain.surface(pts[:300])
    assert torch.equal(grad_fused, grad_plain)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_bfloat16_field_stays_close(layout):
    model = _model(layout)
    code, cond = model.shape_codes[0], model.training_condition(0)
    field = model.mesh_field(code, None, cond, precision="bfloat16")
    assert field.is_reduced_precision and field.dtype == torch.bfloat16
    pts = _points(2000, 1)
    exact = field.sdf_exact(pts)
    assert exact.dtype == field.sdf(pts).dtype == torch.float32
    assert float((field.sdf(pts) - exact).abs().max()) < 0.02
    with torch.no_grad():
        torch.testing.assert_close(exact, model.decode(pts, code, None, cond)[0], atol=2e-6, rtol=0)


def test_the_field_is_a_snapshot_of_the_weights():
    model = _model("default")
    code, cond = model.shape_codes[0], model.training_condition(0)
    field = model.mesh_field(code, None, cond, precision="float32")
    pts = _points(200, 2)
    before = field.sdf(pts).clone()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(0.05)
    torch.testing.assert_close(field.sdf(pts), before)  # a later change of the decoder does not leak in
    assert not torch.allclose(model.mesh_field(code, None, cond, "float32").sdf(pts), before)


def test_precision_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert compute_dtype(cpu, "float32") == torch.float32
    assert compute_dtype(cpu, "bfloat16") == torch.bfloat16
    monkeypatch.setenv(PRECISION_ENV, "float32")
    assert compute_dtype(cpu, "auto") == torch.float32  # the switch that turns the fast path off
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        compute_dtype(cpu, "half")
    monkeypatch.setenv(PRECISION_ENV, "fp8")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        compute_dtype(cpu, "auto")


def test_colour_of_a_field_without_colour_is_a_clear_error():
    model = _model("default")
    field = DecoderField(model.decoder, model.latent(model.shape_codes[0], model.training_condition(0)))
    with pytest.raises(ValueError, match="no colour"):
        field.colour(_points(4))


def test_grid_gradients_of_a_sphere_point_outward():
    radius = 0.6

    def sphere(p):
        return p.norm(dim=-1) - radius

    grid = evaluate_coarse_to_fine(sphere, 65, "cpu")
    mesh = extract_mesh(sphere, 65, device="cpu", normals="grid")
    assert mesh.stats["normals"] == "grid"
    radial = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    cos = (mesh.normals * radial).sum(1)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 3.0
    # The same numbers straight from the helper, in index units.
    idx = torch.as_tensor((mesh.vertices - grid.origin) / grid.voxel_size)
    g = grid_gradients(grid.values, idx, grid.voxel_size)
    assert torch.allclose(g.norm(dim=1), torch.ones(len(g)), atol=0.05)  # a true SDF: unit gradient


def _chamfer_voxels(a, b, resolution: int) -> float:
    d1, _ = cKDTree(b.vertices).query(a.vertices)
    d2, _ = cKDTree(a.vertices).query(b.vertices)
    return float((d1.mean() + d2.mean()) / 2 / (2 / (resolution - 1)))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_fast_mesh_of_the_real_model_is_the_plain_mesh(precision):
    model = load_trained_model(REAL, "cpu")
    index = model.index_of("KatorLegaz_full-bookcase")  # open shelves: thin slabs, a dilated field
    code, colour, cond = model.shape_codes[index], model.colour_codes[index], model.training_condition(index)
    resolution = 64
    plain = extract_mesh(model.sdf_fn(code, cond), resolution, model.colour_fn(code, colour, cond), device="cpu")
    fast = extract_mesh(model.mesh_field(code, colour, cond, precision), resolution, device="cpu")
    assert plain.stats["normals"] == "sdf_gradient" and fast.stats["normals"] == "grid"
    assert plain.stats["surface_offset"] == pytest.approx(fast.stats["surface_offset"])
    assert abs(len(fast.vertices) - len(plain.vertices)) <= 0.01 * len(plain.vertices)
    assert _chamfer_voxels(plain, fast, resolution) < 0.1
    assert fast.colours is not None and fast.colours.shape == (len(fast.vertices), 3)
    tree = cKDTree(plain.vertices)
    _, nearest = tree.query(fast.vertices)
    assert np.abs(fast.colours - plain.colours[nearest]).mean() < 0.02


def test_a_field_brings_its_own_colours():
    model = _model("colour-fourier")
    field = model.mesh_field(model.shape_codes[0], model.colour_codes[0], model.training_condition(0))
    with pytest.raises(ValueError, match="brings its own colours"):
        extract_mesh(field, 16, colour_fn=model.colour_fn(model.shape_codes[0], model.colour_codes[0]), device="cpu")


def test_decoder_runs_under_cpu_autocast():
    # Test-time optimisation runs the decoder under bfloat16 autocast: it must run (no in-place
    # product on mixed dtypes) and give the float32 values and code gradients closely.
    model = _model("colour-fourier")
    pts = _points(1500, 4)
    code = model.shape_codes[0].clone().requires_grad_(True)
    colour = model.colour_codes[0].clone()
    cond = model.training_condition(0)
    sdf32, rgb32 = model.decode(pts, code, colour, cond)
    (g32,) = torch.autograd.grad(sdf32.abs().mean(), code)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sdf16, rgb16 = model.decode(pts, code, colour, cond)
    (g16,) = torch.autograd.grad(sdf16.float().abs().mean(), code)
    assert float((sdf16.float() - sdf32).abs().max()) < 0.02
    assert float((rgb16.float() - rgb32).abs().max()) < 0.02
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layers_reading_the_latent_add_it_in_float32_under_autocast(layout):
    # A fit's code enters as a folded bias, added in float32: the layer's output is float32 under bfloat16
    # autocast. Rounded to bfloat16 inside the product it moved held-out fits (thin F@1 lower on both seeds
    # tried) for no faster fit (docs/experiments/2026-12-05-fit-arithmetic-and-code-steps.md).
    model = _model(layout)
    decoder = model.decoder
    pts = _points(500, 5)
    latent = model.latent(model.shape_codes[0].clone().requires_grad_(True), model.training_condition(0))
    for stop in (i + 1 for i in [0, *sorted(decoder.latent_in)] if i < len(decoder.layers)):
        x32 = decoder.trunk_prefix(pts, latent, stop).detach()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x16 = decoder.trunk_prefix(pts, latent, stop).detach()
        norm_after = decoder._norm_keys[stop - 1] is not None  # a LayerNorm's output is autocast's to choose
        assert norm_after or x16.dtype == torch.float32, (layout, stop)
        scale = float(x32.abs().max()) + 1e-6
        assert float((x16.float() - x32).abs().max()) < 0.03 * scale, (layout, stop)


def test_colour_rows_give_the_same_colours_as_the_full_pass():
    # Test-time optimisation runs the colour head on the near-surface samples only.
    model = _model("colour-fourier")
    pts = _points(600, 5)
    rows = torch.arange(0, 600, 7)
    latent = model.latent(model.shape_codes[0], model.training_condition(0))
    with torch.no_grad():
        sdf, rgb = model.decoder(pts, latent, model.colour_codes[0])
        sdf_r, rgb_r = model.decoder(pts, latent, model.colour_codes[0], colour_rows=rows)
        torch.testing.assert_close(sdf_r, sdf)
        torch.testing.assert_close(rgb_r, rgb[rows])
        # Two shapes in block layout, per-shape colour codes.
        latents = torch.stack([latent, model.latent(model.shape_codes[1], model.training_condition(1))])
        row = torch.arange(2).repeat_interleave(300)
        _, rgb2 = model.decoder(pts, latents, model.colour_codes[:2], latent_row=row)
        _, rgb2_r = model.decoder(pts, latents, model.colour_codes[:2], latent_row=row, colour_rows=rows)
        torch.testing.assert_close(rgb2_r, rgb2[rows])
