"""The files the project ships, read through the project's own loaders: the demo model that
``make run`` opens (resources/demo/) and the sample scans the README reconstructs (resources/scans/).

A damaged, re-exported or re-generated file that no longer matches what the README and the viewer
promise fails here, not in front of a user.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo"
SCANS = ROOT / "resources" / "scans"
DEMO_CLASSES = ["airplane", "chair", "lamp", "mug", "shelf", "table", "vase"]
"""resources/demo/README.md: the built-in data set, 7 classes x 16 training shapes."""
SCAN_CLASSES = {"chair_thin": "chair", "lamp_arm": "lamp", "table_thin": "table"}
"""Each sample scan and the demo class it is an unseen member of (scripts/make_scans.py)."""


@pytest.fixture(scope="module")
def demo():
    from core.model import load_trained_model

    return load_trained_model(DEMO / "demo.pt", device="cpu")


def test_demo_model_has_its_classes_codes_and_colour_head(demo):
    assert demo.class_names == DEMO_CLASSES
    assert len(demo.shape_ids) == len(set(demo.shape_ids)) == 7 * 16
    assert {c: demo.shape_classes.count(c) for c in DEMO_CLASSES} == dict.fromkeys(DEMO_CLASSES, 16)
    assert demo.conditioning == "embedding" and demo.has_colour
    assert demo.shape_codes.shape == (112, demo.code_size) and demo.code_size == 64
    assert demo.colour_codes.shape == (112, demo.colour_code_size) and demo.colour_code_size == 32
    assert torch.isfinite(demo.shape_codes).all() and torch.isfinite(demo.colour_codes).all()
    assert all(torch.isfinite(p).all() for p in demo.decoder.parameters())
    # the codes were learned: distinct per shape, and not the N(0, 0.01^2) initialisation
    assert torch.cdist(demo.shape_codes, demo.shape_codes).add(torch.eye(112)).min() > 1e-3
    assert demo.shape_codes.std() > 0.02
    conditions = torch.stack([demo.condition(c) for c in DEMO_CLASSES])
    assert conditions.shape[0] == 7 and torch.linalg.matrix_rank(conditions) == 7  # one embedding per class


def test_demo_files_agree_with_the_checkpoint(demo):
    """config.json is the run's config and training_log.csv its log, as resources/demo/README.md says."""
    from core.model import read_checkpoint

    config = json.loads((DEMO / "config.json").read_text())
    assert demo.full_config["model"] == config["model"] and demo.full_config["train"] == config["train"]
    # two stages: 1,600 epochs, then 400 warm-started from them at the curriculum's last stage
    stage1 = json.loads((DEMO / "config_stage1.json").read_text())
    assert stage1["model"] == config["model"] and stage1["train"]["epochs"] == 1600
    assert config["train"]["init_from"] and config["train"]["curriculum_first_stage"] == 3
    assert demo.stats["epochs"] == config["train"]["epochs"] == 400
    for log_name, epochs in (("training_log_stage1.csv", 1600), ("training_log.csv", 400)):
        with open(DEMO / log_name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert int(rows[-1]["epoch"]) == epochs and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    raw = read_checkpoint(DEMO / "demo.pt")
    assert "optimizer" not in raw and "rng" not in raw  # the inference-only export


def test_demo_model_decodes_a_training_chair_to_a_closed_coloured_surface(demo):
    import trimesh

    from core.meshing import extract_mesh

    resolution = 40
    i = demo.codes_of_class("chair")[0]
    code, colour_code, condition = demo.shape_codes[i], demo.colour_codes[i], demo.condition("chair")
    sdf_fn = demo.sdf_fn(code, condition)
    mesh = extract_mesh(sdf_fn, resolution, demo.colour_fn(code, colour_code, condition), device="cpu")
    assert not mesh.is_empty and len(mesh.faces) > 500
    radius = np.linalg.norm(mesh.vertices, axis=1).max()
    assert 0.6 < radius <= 1.0  # fills DeepSDF's unit sphere as the training shapes did
    surface = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    _, uses = np.unique(np.sort(surface.edges, axis=1), axis=0, return_counts=True)
    assert (uses != 2).mean() < 0.01  # closed-ish: almost every edge joins exactly two faces
    assert surface.volume > 0.01  # a solid, faces turned outwards
    with torch.no_grad():
        on_surface = sdf_fn(torch.as_tensor(mesh.vertices)).abs().max().item()
    assert on_surface < 0.5 * 2.0 / resolution  # the vertices lie on the zero level set (half a voxel)
    assert mesh.colours.shape == mesh.vertices.shape and mesh.colours.dtype == np.float32
    assert mesh.colours.min() >= 0.0 and mesh.colours.max() <= 1.0 and mesh.colours.std() > 0.01


def _camera_facing_share(normals: np.ndarray) -> float:
    """Share of unit normals on the side of their mean direction: 1 for a one-sided scan, ~0.5 for a whole shape."""
    mean = normals.mean(axis=0)
    return float((normals @ (mean / np.linalg.norm(mean)) > 0).mean())


@pytest.mark.parametrize("name", sorted(SCAN_CLASSES))
def test_sample_scan_files_load_and_agree(name, demo):
    """The mesh, its single-view partial scan (.npz) and the scan's point cloud (.ply), each through
    ``load_observation`` (what ``reconstruct --input`` and the viewer use), describe one shape in one frame."""
    from core.data.mesh_io import load_mesh
    from core.data.normalization import normalize_mesh
    from core.data.sdf_backends import compute_sdf
    from core.tto.observations import load_observation

    assert SCAN_CLASSES[name] in demo.class_names  # the README reconstructs them with the demo model
    mesh = load_mesh(SCANS / f"{name}.glb")
    assert len(mesh.faces) > 100 and mesh.colour_path != "default"  # a coloured mesh

    full = load_observation(SCANS / f"{name}.glb", n_samples=5000)
    assert full.kind == "mesh" and len(full) == 5000
    assert (full.sdf > 0).any() and (full.sdf < 0).any()
    assert np.linalg.norm(full.surface_points, axis=1).max() <= 1.0
    assert full.colours.min() >= 0.0 and full.colours.max() <= 1.0
    assert _camera_facing_share(full.surface_normals) < 0.75

    partial = load_observation(SCANS / f"{name}_partial.npz")
    assert partial.kind == "npz" and partial.has_normals and len(partial) > 10 * len(partial.surface_points)
    assert (partial.sdf > 0).any() and (partial.sdf < 0).any()
    # the scan is in the mesh's unit-sphere frame and its points lie on the mesh
    np.testing.assert_allclose(partial.normalization.offset, full.normalization.offset, atol=1e-9)
    assert partial.normalization.scale == pytest.approx(full.normalization.scale, rel=1e-9)
    unit_mesh, _ = normalize_mesh(mesh)
    on_mesh = compute_sdf(unit_mesh.vertices, unit_mesh.faces, partial.surface_points[::7]).sdf
    assert np.abs(on_mesh).max() < 1e-4
    assert _camera_facing_share(partial.surface_normals) > 0.95  # seen from one side only
    assert partial.surface_colours.min() >= 0.0 and partial.surface_colours.max() <= 1.0

    cloud = load_observation(SCANS / f"{name}_partial_points.ply")
    assert cloud.kind == "point_cloud" and len(cloud.surface_points) == len(partial.surface_points)
    # the same points, normals and colours (8 bits) as the scan, up to the cloud's own normalisation
    back = cloud.surface_points / cloud.normalization.scale - cloud.normalization.offset
    np.testing.assert_allclose(back, partial.surface_points, atol=1e-5)
    np.testing.assert_allclose(cloud.surface_normals, partial.surface_normals, atol=1e-6)
    np.testing.assert_allclose(cloud.surface_colours, partial.surface_colours, atol=0.5 / 255 + 1e-6)
    assert cloud.colours.min() >= 0.0 and cloud.colours.max() <= 1.0


def test_demo_model_fits_a_sample_scan(demo):
    """What the README's ``reconstruct --ckpt resources/demo/demo.pt --input ...chair_thin...`` runs, briefly."""
    from core.tto import TTOConfig, fit
    from core.tto.observations import load_observation

    scan = load_observation(SCANS / "chair_thin_partial.npz")
    result = fit(demo, scan, TTOConfig(iterations=40, n_samples=2000), class_name="chair", seed=0)
    first, last = result.history[0]["l1"], result.history[-1]["l1"]
    assert np.isfinite(last) and last < 0.7 * first
    assert result.shape_code.shape == (demo.code_size,) and result.class_name == "chair"
