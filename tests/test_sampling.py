"""DeepSDF sampling: surface points and SDF query points (core/data/sampling.py)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from core.data.sampling import SamplingConfig, face_areas_and_normals, sample_sdf_queries, sample_surface
from core.utils.errors import ConfigError

# A unit-sphere-frame test shape with faces of very different sizes.
_BOX = trimesh.creation.box(extents=(1.2, 0.8, 1.0))


@pytest.fixture
def plane_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Two triangles in z = 0 (a flat surface): noise is then measurable along z alone."""
    vertices = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    return vertices, faces


def test_sample_surface_shapes_and_dtypes() -> None:
    sample = sample_surface(_BOX.vertices, _BOX.faces, 1000, np.random.default_rng(0))
    assert sample.points.shape == (1000, 3) and sample.points.dtype == np.float32
    assert sample.normals.shape == (1000, 3) and sample.normals.dtype == np.float32
    assert sample.face_index.shape == (1000,) and sample.face_index.dtype == np.int64
    assert sample.barycentric.shape == (1000, 3) and sample.barycentric.dtype == np.float32
    assert len(sample) == 1000


def test_sample_surface_points_lie_on_their_faces() -> None:
    sample = sample_surface(_BOX.vertices, _BOX.faces, 2000, np.random.default_rng(1))
    triangles = _BOX.vertices[_BOX.faces[sample.face_index]]
    rebuilt = np.einsum("nk,nkd->nd", sample.barycentric.astype(np.float64), triangles)
    np.testing.assert_allclose(sample.points, rebuilt, atol=1e-6)
    assert np.all(sample.barycentric >= 0)
    np.testing.assert_allclose(sample.barycentric.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(sample.normals, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(sample.normals, _BOX.face_normals[sample.face_index], atol=1e-6)


def test_sample_surface_is_area_weighted() -> None:
    # One triangle 9x the area of the other, far apart so each sample's face is obvious.
    vertices = np.array(
        [[0, 0, 0], [0.3, 0, 0], [0, 0.3, 0], [-0.9, -0.9, 0.1], [-0.8, -0.9, 0.1], [-0.9, -0.8, 0.1]], float
    )
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    areas, _ = face_areas_and_normals(vertices, faces)
    assert areas[0] / areas[1] == pytest.approx(9.0)
    n = 50_000
    sample = sample_surface(vertices, faces, n, np.random.default_rng(2))
    share_big = np.mean(sample.face_index == 0)
    # Binomial std at p = 0.9 is sqrt(0.09 / n) ~= 0.0013; 5 sigma.
    assert share_big == pytest.approx(0.9, abs=0.0067)


def test_sample_surface_is_uniform_within_a_triangle(plane_mesh) -> None:
    vertices, faces = plane_mesh
    sample = sample_surface(vertices, faces, 40_000, np.random.default_rng(3))
    # Uniform over the square: each quadrant gets a quarter, x and y have variance 1/12.
    quadrants = (sample.points[:, 0] > 0).astype(int) * 2 + (sample.points[:, 1] > 0)
    counts = np.bincount(quadrants, minlength=4) / len(quadrants)
    np.testing.assert_allclose(counts, 0.25, atol=0.012)
    np.testing.assert_allclose(sample.points[:, :2].var(axis=0), 1 / 12, rtol=0.03)


def test_sample_surface_skips_degenerate_faces() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 2, 2]], float)
    faces = np.array([[0, 1, 2], [3, 3, 3], [0, 1, 1]])
    sample = sample_surface(vertices, faces, 5000, np.random.default_rng(4))
    assert np.all(sample.face_index == 0)


def test_sample_surface_rejects_bad_meshes() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="zero"):
        sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), 10, rng)
    with pytest.raises(ValueError, match="no faces"):
        sample_surface(np.zeros((3, 3)), np.zeros((0, 3), int), 10, rng)
    with pytest.raises(ValueError, match=r"\(F, 3\)"):
        sample_surface(np.zeros((4, 3)), np.array([[0, 1, 2, 3]]), 10, rng)


def test_sampling_is_deterministic_for_a_seed() -> None:
    a = sample_sdf_queries(_BOX.vertices, _BOX.faces, 5000, np.random.default_rng(7))
    b = sample_sdf_queries(_BOX.vertices, _BOX.faces, 5000, np.random.default_rng(7))
    c = sample_sdf_queries(_BOX.vertices, _BOX.faces, 5000, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    s1 = sample_surface(_BOX.vertices, _BOX.faces, 300, np.random.default_rng(7))
    s2 = sample_surface(_BOX.vertices, _BOX.faces, 300, np.random.default_rng(7))
    np.testing.assert_array_equal(s1.points, s2.points)
    np.testing.assert_array_equal(s1.face_index, s2.face_index)


@pytest.mark.parametrize("n_total", [0, 1, 50, 999, 500_000])
def test_query_counts_and_split(n_total: int) -> None:
    config = SamplingConfig()
    n_first, n_second, n_uniform = config.split(n_total)
    near = int(47 * n_total / 50)
    assert n_first == n_second == near // 2  # DeepSDF: SampleFromSurface(num_samp_near_surf / 2)
    assert n_first + n_second + n_uniform == n_total
    if n_total == 500_000:
        assert (n_first, n_second, n_uniform) == (235_000, 235_000, 30_000)
    if n_total <= 999:
        queries = sample_sdf_queries(_BOX.vertices, _BOX.faces, n_total, np.random.default_rng(0))
        assert queries.shape == (n_total, 3) and queries.dtype == np.float32


def test_config_defaults_are_deepsdf() -> None:
    config = SamplingConfig()
    assert config.n_samples == 500_000
    assert config.n_surface == 30_000
    assert config.near_fraction == pytest.approx(47 / 50)
    assert config.variance == 0.005
    assert config.second_variance == 0.0005
    assert config.bounding_cube_dim == 2.0
    with pytest.raises(ConfigError, match="near_fraction"):
        SamplingConfig(near_fraction=1.5)
    with pytest.raises(ConfigError, match="variances"):
        SamplingConfig(variance=-1.0)


def test_near_surface_noise_has_deepsdf_std(plane_mesh) -> None:
    vertices, faces = plane_mesh
    n_total = 100_000
    config = SamplingConfig()
    n_first, n_second, n_uniform = config.split(n_total)
    queries = sample_sdf_queries(vertices, faces, n_total, np.random.default_rng(5), config)
    # The surface is z = 0, so z is exactly the perturbation's z component.
    first_z = queries[:n_first, 2].astype(np.float64)
    second_z = queries[n_first : n_first + n_second, 2].astype(np.float64)
    # std of a sample std is ~ sigma / sqrt(2 n) ~= 0.3 % here; allow 2 %.
    assert first_z.std() == pytest.approx(np.sqrt(0.005), rel=0.02)
    assert second_z.std() == pytest.approx(np.sqrt(0.0005), rel=0.02)
    assert abs(first_z.mean()) < 5 * np.sqrt(0.005 / n_first)
    # The two groups perturb the same surface points, pairwise (as DeepSDF does).
    in_plane_gap = queries[:n_first, :2] - queries[n_first : n_first + n_second, :2]
    assert np.std(in_plane_gap) == pytest.approx(np.sqrt(0.0055), rel=0.02)
    assert n_uniform == n_total - n_first - n_second


def test_uniform_part_fills_the_bounding_cube() -> None:
    n_total = 100_000
    config = SamplingConfig()
    n_first, n_second, n_uniform = config.split(n_total)
    queries = sample_sdf_queries(_BOX.vertices, _BOX.faces, n_total, np.random.default_rng(6))
    uniform = queries[n_first + n_second :]
    assert len(uniform) == n_uniform == 6000
    assert np.all(uniform >= -1.0) and np.all(uniform <= 1.0)
    np.testing.assert_allclose(uniform.mean(axis=0), 0.0, atol=0.04)
    np.testing.assert_allclose(uniform.var(axis=0), 1 / 3, rtol=0.05)


def test_custom_config_changes_split_and_variances(plane_mesh) -> None:
    vertices, faces = plane_mesh
    config = SamplingConfig(near_fraction=0.5, variance=0.01, second_variance=0.0001, bounding_cube_dim=1.0)
    n_first, n_second, n_uniform = config.split(10_000)
    assert (n_first, n_second, n_uniform) == (2500, 2500, 5000)
    queries = sample_sdf_queries(vertices, faces, 10_000, np.random.default_rng(9), config)
    assert queries[:n_first, 2].std() == pytest.approx(0.1, rel=0.06)
    assert queries[n_first : n_first + n_second, 2].std() == pytest.approx(0.01, rel=0.06)
    assert np.all(np.abs(queries[n_first + n_second :]) <= 0.5)
