"""The surface offset of dilated fields (core.data.open_mesh_sdf) carried from the samples to the model, its
meshes, its training surface term and the observations test-time optimisation fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.data.samples import read_samples
from core.data.training_set import SdfDataSet
from core.meshing import extract_mesh
from core.tto.observations import from_npz, from_point_cloud
from core.utils.errors import DataSetError
from tests.conftest import write_analytic_dataset

EPS = 0.02


def dilate(root, epsilon=EPS, only=None):
    """Rewrite a written analytic data set's sample files as an ``auto`` field of offset ``epsilon`` would be."""
    from core.data.samples import ShapeSamples, write_samples

    manifest = json.loads((root / "manifest.json").read_text())
    for record in manifest["shapes"]:
        if only is not None and record["id"] not in only:
            continue
        s = read_samples(root / record["file"])
        rows = np.concatenate([s.pos, s.neg])
        rgb = np.concatenate([s.pos_rgb, s.neg_rgb])
        rows[:, 3] -= epsilon
        pos = rows[:, 3] >= 0
        stats = {**s.stats, "sdf_field": {"method": "dilated_fill", "reason": "test", "epsilon": epsilon}}
        write_samples(
            root / record["file"],
            ShapeSamples(
                pos=rows[pos],
                neg=rows[~pos],
                pos_rgb=rgb[pos],
                neg_rgb=rgb[~pos],
                surface_points=s.surface_points,
                surface_normals=s.surface_normals,
                surface_rgb=s.surface_rgb,
                normalization=s.normalization,
                stats=stats,
            ),
        )
    return root


def test_meshing_steps_each_vertex_back_by_the_surface_offset():
    def sphere(points: torch.Tensor) -> torch.Tensor:
        return points.norm(dim=1) - 0.5 - EPS

    dilated = extract_mesh(sphere, 64, device="cpu", surface_offset=0.0)
    true = extract_mesh(sphere, 64, device="cpu", surface_offset=EPS)
    assert np.linalg.norm(dilated.vertices, axis=1).mean() == pytest.approx(0.5 + EPS, abs=2e-3)
    assert np.linalg.norm(true.vertices, axis=1).mean() == pytest.approx(0.5, abs=2e-3)
    assert true.stats["surface_offset"] == EPS
    sphere.surface_offset = EPS  # what TrainedModel.sdf_fn attaches: meshing picks it up by itself
    assert np.allclose(extract_mesh(sphere, 64, device="cpu").vertices, true.vertices)


def test_a_data_set_carries_one_offset_and_refuses_mixed_ones(tmp_path):
    root = dilate(write_analytic_dataset(tmp_path / "one", n_samples=400, n_surface=100))
    assert SdfDataSet(root).surface_offset == EPS
    mixed = dilate(write_analytic_dataset(tmp_path / "two", n_samples=400, n_surface=100), only={"ball0"})
    with pytest.raises(DataSetError, match="offset from their surfaces by different amounts"):
        SdfDataSet(mixed, split="all")


def test_training_records_the_offset_and_aims_the_surface_term_at_it(tmp_path):
    from core.model import load_trained_model
    from core.training import build_run_config, train
    from core.training.trainer import _batch_tensors

    root = dilate(write_analytic_dataset(tmp_path / "data", n_samples=400, n_surface=100))
    config = build_run_config(
        "tiny",
        overrides=[
            "train.epochs=2",
            "train.samples_per_shape=64",
            "train.surface_weight=1.0",
            "train.checkpoint_every=1000",
        ],
    )
    data = SdfDataSet(root, with_surface=True)
    batch = _batch_tensors(data, [0, 1], config, 0, torch.device("cpu"))
    assert float(batch["surface_level"]) == pytest.approx(-EPS)
    result = train(config, root, tmp_path / "run", progress=False)
    model = load_trained_model(result.checkpoint, device="cpu")
    assert model.surface_offset == pytest.approx(EPS)
    # meshes step back 0.9 of it, so a sheet's two faces stay apart
    assert model.sdf_fn(model.shape_codes[0]).surface_offset == pytest.approx(0.9 * EPS)


def test_observations_are_moved_to_the_models_offset(tmp_path):
    root = dilate(write_analytic_dataset(tmp_path, n_samples=400, n_surface=100))
    path = root / "SdfSamples/toy/ball/ball0.npz"
    obs = from_npz(path)
    assert obs.surface_offset == pytest.approx(EPS)
    more = obs.for_surface_offset(2 * EPS)  # a model dilated further: the samples follow
    np.testing.assert_allclose(more.sdf, obs.sdf - EPS, atol=1e-6)
    assert more.surface_offset == pytest.approx(2 * EPS)
    # undoing a dilation would leave a sheet's slab without an inside: an undilated model fits it as is
    assert obs.for_surface_offset(0.0) is obs and obs.for_surface_offset(EPS) is obs
    points = np.random.default_rng(0).normal(size=(200, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    cloud = from_point_cloud(points, normals=points)
    assert cloud.surface_offset == 0.0  # a scan's distances are true ones
    np.testing.assert_allclose(cloud.for_surface_offset(EPS).sdf, cloud.sdf - EPS, atol=1e-6)


def test_an_undilated_model_fits_a_sheet_observed_through_the_dilated_field(tmp_path, toy_trained):
    """A sheet's samples all lie within eps of it: undoing the dilation would leave no inside (the
    fit used to crash drawing from an empty side). The model fits the slab as it is, and says so."""
    import trimesh

    from core.tto import TTOConfig, fit
    from core.tto.observations import from_mesh

    sheet = trimesh.Trimesh([[-0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, 0.5], [-0.5, 0, 0.5]], [[0, 1, 2], [0, 2, 3]])
    sheet.export(tmp_path / "sheet.ply")
    obs = from_mesh(tmp_path / "sheet.ply", n_samples=2000, n_surface=200)
    assert obs.surface_offset > 0 and (obs.sdf < 0).any() and (obs.sdf > -obs.surface_offset - 1e-6).all()
    model = toy_trained["model"]
    assert model.surface_offset == 0.0
    result = fit(model, obs, TTOConfig(iterations=5, n_samples=500), class_name=model.class_names[0])
    assert any("dilated" in note for note in result.notes)
