"""Observation builders on real meshes and clouds made with trimesh (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from core.tto.observations import (
    Observation,
    estimate_normals,
    from_mesh,
    from_npz,
    from_point_cloud,
    from_point_cloud_file,
    from_scan,
    load_observation,
)
from core.tto.scan import depth_scan, free_space_samples
from core.utils.errors import ObservationError


@pytest.fixture(scope="module")
def box_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("meshes") / "box.obj"
    trimesh.creation.box(extents=(1.0, 0.6, 0.8)).export(path)
    return path


@pytest.fixture(scope="module")
def rod_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("meshes") / "rod.ply"
    trimesh.creation.cylinder(radius=0.02, height=1.0, sections=16).export(path)
    return path


def _sphere_cloud(n=800, seed=0):
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return 0.5 * normals, normals


def test_from_mesh_box_has_both_sides_and_surface(box_path):
    obs = from_mesh(box_path, n_samples=4000, n_surface=2000)
    assert obs.kind == "mesh" and len(obs) == 4000
    assert obs.positive.any() and (~obs.positive).any()
    assert obs.surface_points.shape == (2000, 3) and obs.surface_normals.shape == (2000, 3)
    assert np.linalg.norm(obs.surface_points, axis=1).max() <= 1.0
    assert obs.normalization is not None
    # Inside the box (normalised) the sdf is negative.
    centre = np.abs(obs.points).max(axis=1) < 0.05
    assert np.all(obs.sdf[centre] < 0)


def test_from_mesh_thin_rod(rod_path):
    obs = from_mesh(rod_path, n_samples=4000, n_surface=1000)
    assert (obs.sdf < 0).sum() > 10
    # The rod is about 0.04 / 1.0 of its length thick: inside samples are very close to the surface
    # (the field is the surface dilated by its offset: inside values are the depth plus that offset).
    assert obs.surface_offset > 0
    assert obs.sdf.min() > -0.05 - obs.surface_offset


def test_from_npz_round_trip(tmp_path, box_path):
    from core.data.preprocess import PreprocessConfig, preprocess_shape
    from core.data.sources.jobs import MeshJob

    out = tmp_path / "box.npz"
    preprocess_shape(MeshJob("box", "box", box_path), PreprocessConfig(n_samples=2000, n_surface=500), out)
    obs = from_npz(out)
    assert obs.kind == "npz" and len(obs) == 2000
    assert obs.colours is not None and obs.colours.shape == (2000, 3)
    assert load_observation(out).kind == "npz"


def test_point_cloud_stepping_sign_convention():
    points, normals = _sphere_cloud()
    obs = from_point_cloud(points, normals, etas=(0.01, 0.02), normalization=None)
    # Positive samples lie outside the sphere at radius 0.5 + eta, negative inside at 0.5 - eta.
    radius = np.linalg.norm(obs.points, axis=1)
    assert np.allclose(radius - 0.5, obs.sdf, atol=1e-5)
    assert np.allclose(np.unique(obs.sdf), [-0.02, -0.01, 0.01, 0.02])
    assert obs.surface_points.shape == points.shape


def test_point_cloud_is_normalised_into_unit_sphere():
    points, normals = _sphere_cloud()
    obs = from_point_cloud(points * 30.0 + 7.0, normals)
    assert np.linalg.norm(obs.surface_points, axis=1).max() <= 1.0 / 1.03 + 1e-5
    assert obs.normalization is not None and obs.normalization.scale < 1.0


def test_cloud_without_normals_warns_and_orients_outward():
    points, normals = _sphere_cloud(600)
    with pytest.warns(UserWarning, match="no normals"):
        obs = from_point_cloud(points, None, normalization=None)
    cos = np.sum(obs.surface_normals * normals, axis=1)
    assert np.mean(cos > 0.9) > 0.97


def test_estimated_normals_on_box_surface_point_outward():
    box = trimesh.creation.box(extents=(1.0, 0.4, 0.6))
    points, face = trimesh.sample.sample_surface_even(box, 1500, seed=0)
    est = estimate_normals(points, k=12)
    cos = np.sum(est * box.face_normals[face], axis=1)
    assert np.mean(cos > 0.8) > 0.9


def test_point_cloud_files(tmp_path):
    points, normals = _sphere_cloud(300)
    xyz = tmp_path / "cloud.xyz"
    np.savetxt(xyz, np.concatenate([points, normals], axis=1))
    npy = tmp_path / "cloud.npy"
    np.save(npy, np.concatenate([points, normals], axis=1))
    ply = tmp_path / "cloud.ply"
    header = (
        f"ply\nformat ascii 1.0\nelement vertex {len(points)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\nend_header\n"
    )
    rows = np.concatenate([points, normals], 1)
    ply.write_text(header + "\n".join(" ".join(f"{v:.6f}" for v in row) for row in rows) + "\n")
    for path in (xyz, npy, ply):
        obs = load_observation(path)
        assert obs.kind == "point_cloud", path
        assert not obs.extra["estimated_normals"], path
        assert np.allclose(np.linalg.norm(obs.surface_normals, axis=1), 1.0, atol=1e-4)


def test_scan_sees_only_the_side_facing_the_camera():
    box = trimesh.creation.box(extents=(0.8, 0.6, 0.5))
    scan = depth_scan(box.vertices, box.faces, direction=(0.0, 0.0, 1.0), resolution=48)
    assert len(scan.points) > 100
    assert np.allclose(scan.points[:, 2], 0.25)  # only the +z face is seen
    assert np.all(scan.normals @ scan.direction > 0.99)
    free, sdf = free_space_samples(scan, per_ray=2, rng=np.random.default_rng(0))
    assert np.all(sdf > 0)
    inside_box = np.all(np.abs(free) < np.array([0.4, 0.3, 0.25]) - 1e-3, axis=1)
    assert not inside_box.any()


def test_from_scan_partial_observation(box_path):
    obs = from_scan(box_path, direction=(1.0, 1.0, 1.0), resolution=40)
    d = np.asarray(obs.extra["direction"])
    assert obs.kind == "scan" and obs.extra["n_free_space"] > 0
    assert np.all(obs.surface_normals @ d > 0)
    # Three faces of the box are visible from (1, 1, 1), the other three are not.
    seen = {tuple(np.round(n, 3)) for n in obs.surface_normals}
    assert seen == {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}
    assert obs.positive.sum() > (~obs.positive).sum()  # free space adds positives


def test_thin_rod_scan(rod_path):
    obs = from_scan(rod_path, direction=(1.0, 0.0, 0.0), resolution=96)
    assert len(obs.surface_points) > 20
    assert np.all(obs.surface_normals @ np.array([1.0, 0.0, 0.0]) > 0)


@pytest.mark.parametrize(
    "points, normals, match",
    [
        (np.zeros((0, 3)), None, "no points"),
        (np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0], [1.0, 0.0, 0.0]]), None, "NaN"),
        (np.eye(3), np.zeros((3, 3)), "zero length"),
        (np.eye(3), np.ones((2, 3)), "normals of shape"),
    ],
)
def test_bad_point_clouds(points, normals, match):
    with pytest.raises(ObservationError, match=match):
        from_point_cloud(points, normals, normalization=None)


def test_all_samples_on_one_side_is_refused(tmp_path):
    path = tmp_path / "outside.npz"
    pos = np.concatenate([np.random.default_rng(0).random((50, 3)), np.full((50, 1), 0.1)], axis=1).astype(np.float32)
    np.savez(path, pos=pos, neg=np.zeros((0, 4), np.float32))
    with pytest.raises(ObservationError, match="outside.npz.*both sides"):
        from_npz(path)


def test_bad_files(tmp_path):
    with pytest.raises(ObservationError, match="no such file"):
        load_observation(tmp_path / "missing.obj")
    odd = tmp_path / "shape.abc"
    odd.write_text("x")
    with pytest.raises(ObservationError, match="unknown input type"):
        load_observation(odd)
    broken = tmp_path / "broken.obj"
    broken.write_text("v 0 0 0\n")
    with pytest.raises(ObservationError, match="broken.obj"):
        from_mesh(broken, n_samples=500)
    table = tmp_path / "bad.xyz"
    table.write_text("1 2\n3 4\n")
    with pytest.raises(ObservationError, match="columns"):
        from_point_cloud_file(table)


def test_observation_validate_nan_sdf():
    obs = Observation(points=np.zeros((2, 3), np.float32), sdf=np.array([0.1, np.nan], np.float32), source="arr")
    with pytest.raises(ObservationError, match="arr.*NaN"):
        obs.validate()
