"""SDF back ends (core/data/sdf_backends.py) against analytic SDFs and against each other.

Tolerances, and why:

* Test meshes are tessellated finely enough that the polygonal surface is within
  ``TESSELLATION`` (5e-4) of the analytic one (sphere: icosphere(5), ~2.3e-4 at radius 0.8;
  torus: 256 x 128 sections, ~1.5e-4; box: exact). Signs are checked outside that band.
* ``winding`` is exact on the triangle mesh: distance error < 1e-3 against the analytic SDF.
* ``mesh_to_sdf`` measures distances to scan points, not to the mesh; mesh-to-sdf 0.0.15
  reprojects pixel corners rather than centres, which puts scan points up to ~2e-3 off the
  surface at 400 x 400 (measured on a sphere), so its bound is ``SCAN_TOLERANCE`` and its
  signs are checked outside a 5e-3 band.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh

from core.data import sdf_backends
from core.data.mesh_queries import closest_points
from core.data.sampling import sample_sdf_queries
from core.data.sdf_backends import BACKEND_NAMES, SdfResult, compute_sdf

TESSELLATION = 5e-4
EXACT_TOLERANCE = 1e-3
SCAN_TOLERANCE = 3e-3
SCAN_SIGN_BAND = 5e-3
CHAIR = Path(__file__).parent / "data" / "meshes" / "obj_mtl_tex_chair_cc0" / "chair2.obj"

SPHERE_RADIUS = 0.8
BOX_HALF = np.array([0.6, 0.4, 0.5])
TORUS_R, TORUS_r = 0.6, 0.25


def _sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=5, radius=SPHERE_RADIUS)


def _box() -> trimesh.Trimesh:
    return trimesh.creation.box(extents=2 * BOX_HALF)


def _torus() -> trimesh.Trimesh:
    return trimesh.creation.torus(TORUS_R, TORUS_r, major_sections=256, minor_sections=128)


def _sphere_sdf(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p, axis=1) - SPHERE_RADIUS


def _box_sdf(p: np.ndarray) -> np.ndarray:
    q = np.abs(p) - BOX_HALF
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


def _torus_sdf(p: np.ndarray) -> np.ndarray:
    ring = np.linalg.norm(p[:, :2], axis=1) - TORUS_R
    return np.hypot(ring, p[:, 2]) - TORUS_r


def _sphere_keep(p: np.ndarray) -> np.ndarray:
    # The centre is the sphere's medial axis: every surface point is closest there.
    return np.linalg.norm(p, axis=1) > 0.2


def _box_keep(p: np.ndarray) -> np.ndarray:
    # Distance is exact on a box's medial axis too; keep everything.
    return np.ones(len(p), dtype=bool)


def _torus_keep(p: np.ndarray) -> np.ndarray:
    # Medial axis: the tube's core circle (inside) and the symmetry axis (outside).
    ring = np.linalg.norm(p[:, :2], axis=1) - TORUS_R
    return (np.hypot(ring, p[:, 2]) > 0.05) & (np.linalg.norm(p[:, :2], axis=1) > 0.05)


SHAPES = {
    "sphere": (_sphere, _sphere_sdf, _sphere_keep),
    "box": (_box, _box_sdf, _box_keep),
    "torus": (_torus, _torus_sdf, _torus_keep),
}


def _queries(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> np.ndarray:
    """DeepSDF-distributed queries: mostly near the surface, some uniform."""
    return sample_sdf_queries(mesh.vertices, mesh.faces, n, np.random.default_rng(seed))


def _normalised_chair() -> tuple[np.ndarray, np.ndarray]:
    if not CHAIR.exists():
        pytest.skip(f"{CHAIR} is missing (tests/data/meshes is filled by the mesh-IO tests' owner)")
    mesh = trimesh.load(CHAIR, force="mesh", process=False)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    centre = (vertices.max(axis=0) + vertices.min(axis=0)) / 2
    vertices = vertices - centre
    # DeepSDF's unit-sphere frame (docs/architecture.md).
    vertices = vertices / (1.03 * np.linalg.norm(vertices, axis=1).max())
    return vertices, np.asarray(mesh.faces, dtype=np.int64)


def _check_result_layout(result: SdfResult, n: int) -> None:
    assert result.sdf.shape == (n,) and result.sdf.dtype == np.float32
    assert result.closest_face.shape == (n,) and result.closest_face.dtype == np.int64
    assert result.closest_barycentric.shape == (n, 3) and result.closest_barycentric.dtype == np.float32
    assert result.view_dirs.shape == (n, 3) and result.view_dirs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.view_dirs, axis=1), 1.0, atol=1e-5)
    assert np.all(result.closest_barycentric >= 0)
    np.testing.assert_allclose(result.closest_barycentric.sum(axis=1), 1.0, atol=1e-5)


# --- winding ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_winding_matches_analytic_sdf(shape: str) -> None:
    make, exact_sdf, keep = SHAPES[shape]
    mesh = make()
    points = _queries(mesh, 20_000)
    result = compute_sdf(mesh.vertices, mesh.faces, points)
    exact = exact_sdf(points.astype(np.float64))

    assert result.backend == "winding"
    _check_result_layout(result, len(points))
    clear = np.abs(exact) > TESSELLATION
    assert np.array_equal(np.sign(result.sdf[clear]), np.sign(exact[clear]))
    error = np.abs(result.sdf - exact)[keep(points)]
    assert error.max() < EXACT_TOLERANCE, f"{shape}: max error {error.max():.2e}"


def test_winding_closest_point_and_view_dirs_are_consistent() -> None:
    mesh = _torus()
    points = _queries(mesh, 5000, seed=3)
    result = compute_sdf(mesh.vertices, mesh.faces, points)
    triangles = mesh.vertices[mesh.faces[result.closest_face]]
    closest = np.einsum("nk,nkd->nd", result.closest_barycentric.astype(np.float64), triangles)
    distance = np.linalg.norm(closest - points, axis=1)
    np.testing.assert_allclose(distance, np.abs(result.sdf), atol=1e-5)
    np.testing.assert_allclose(result.view_dirs, -mesh.face_normals[result.closest_face], atol=1e-5)


def test_winding_does_not_depend_on_chunk_size() -> None:
    mesh = _sphere()
    points = _queries(mesh, 3000, seed=4)
    whole = compute_sdf(mesh.vertices, mesh.faces, points)
    chunked = compute_sdf(mesh.vertices, mesh.faces, points, chunk_size=97)
    np.testing.assert_array_equal(whole.sdf, chunked.sdf)
    np.testing.assert_array_equal(whole.closest_face, chunked.closest_face)


def test_winding_on_open_box_keeps_inside_negative() -> None:
    # A box missing its top: the winding number still sees most of the interior as inside.
    mesh = _box()
    faces = mesh.faces[mesh.face_normals[:, 2] < 0.9]
    rng = np.random.default_rng(5)
    deep_inside = rng.uniform(-1, 1, (2000, 3)) * (BOX_HALF * [0.8, 0.8, 0.3]) - [0, 0, 0.2]
    far_outside = rng.normal(size=(2000, 3))
    far_outside *= (1.5 / np.linalg.norm(far_outside, axis=1))[:, None]
    result = compute_sdf(mesh.vertices, faces, np.concatenate([deep_inside, far_outside]))
    assert np.all(result.sdf[:2000] < 0)
    assert np.all(result.sdf[2000:] > 0)


def test_degenerate_faces_still_give_unit_view_dirs() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 2, 2]], float)
    faces = np.array([[3, 3, 3]])
    points = np.array([[2.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    result = compute_sdf(vertices, faces, points)
    np.testing.assert_allclose(result.view_dirs, [[0, 0, -1], [0, 0, -1]], atol=1e-6)
    np.testing.assert_allclose(np.abs(result.sdf), [1.0, 0.0], atol=1e-6)


def test_closest_points_returns_exact_points() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    faces = np.array([[0, 1, 2]])
    points = np.array([[0.25, 0.25, 2.0], [-1.0, -1.0, 0.0]])
    closest = closest_points(vertices, faces, points)
    np.testing.assert_allclose(closest.point, [[0.25, 0.25, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(closest.barycentric, [[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(closest.distance, [2.0, np.sqrt(2.0)], atol=1e-12)


# --- selection and validation ----------------------------------------------------------


def test_unknown_backend_lists_the_names() -> None:
    mesh = _box()
    with pytest.raises(ValueError) as error:
        compute_sdf(mesh.vertices, mesh.faces, np.zeros((1, 3)), backend="pysdf")
    for name in BACKEND_NAMES:
        assert name in str(error.value)
    assert set(BACKEND_NAMES) == {"auto", "winding", "mesh_to_sdf"}


def test_malformed_points_are_rejected() -> None:
    mesh = _box()
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        compute_sdf(mesh.vertices, mesh.faces, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        compute_sdf(mesh.vertices, mesh.faces, np.full((1, 3), np.nan))


# --- mesh_to_sdf, sampled surface points (no OpenGL needed) -----------------------------


def test_mesh_to_sdf_sample_method_matches_analytic_away_from_surface() -> None:
    mesh = _sphere()
    points = _queries(mesh, 3000, seed=6)
    result = compute_sdf(
        mesh.vertices,
        mesh.faces,
        points,
        backend="mesh_to_sdf",
        surface_point_method="sample",
        sample_point_count=300_000,
    )
    assert result.backend == "mesh_to_sdf_sample"
    _check_result_layout(result, len(points))
    exact = _sphere_sdf(points.astype(np.float64))
    # ~300k points on area 8 are ~5e-3 apart: distances converge once |d| >> spacing.
    far = (np.abs(exact) > 0.05) & _sphere_keep(points)
    assert np.abs(result.sdf - exact)[far].max() < EXACT_TOLERANCE
    clear = np.abs(exact) > 0.01
    assert np.array_equal(np.sign(result.sdf[clear]), np.sign(exact[clear]))


def test_mesh_to_sdf_sample_method_is_a_function_of_its_seed() -> None:
    mesh = _sphere()
    points = _queries(mesh, 500, seed=7)

    def run(seed: int) -> np.ndarray:
        return compute_sdf(
            mesh.vertices,
            mesh.faces,
            points,
            backend="mesh_to_sdf",
            surface_point_method="sample",
            sample_point_count=20_000,
            seed=seed,
        ).sdf

    first = run(0)
    assert np.array_equal(first, run(0)) and not np.array_equal(first, run(1))


def test_mesh_to_sdf_falls_back_to_sampling_without_opengl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdf_backends, "_GL_PROBE", {"ok": False, "reason": "no display (test)"})
    mesh = _box()
    points = _queries(mesh, 500, seed=7)
    with pytest.warns(RuntimeWarning, match="no headless OpenGL"):
        result = compute_sdf(mesh.vertices, mesh.faces, points, backend="mesh_to_sdf", sample_point_count=50_000)
    assert result.backend == "mesh_to_sdf_sample"
    # Without scans there are no cameras: view along the negated closest-face normal.
    np.testing.assert_allclose(result.view_dirs, -mesh.face_normals[result.closest_face], atol=1e-5)


# --- mesh_to_sdf, virtual scans (DeepSDF's method; ~10-20 s per mesh) --------------------


@pytest.fixture(scope="module")
def scan_results() -> dict[str, tuple[np.ndarray, SdfResult]]:
    """One scan-based evaluation per mesh, shared by the slow tests below."""
    if not sdf_backends.headless_gl_available():
        pytest.skip(f"no headless OpenGL here: {sdf_backends._GL_PROBE.get('reason')}")
    results = {}
    for name, (make, _, _) in SHAPES.items():
        mesh = make()
        points = _queries(mesh, 2000, seed=8)
        results[name] = (points, compute_sdf(mesh.vertices, mesh.faces, points, backend="mesh_to_sdf"))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_mesh_to_sdf_scan_matches_analytic_sdf(shape: str, scan_results) -> None:
    _, exact_sdf, keep = SHAPES[shape]
    points, result = scan_results[shape]
    exact = exact_sdf(points.astype(np.float64))
    assert result.backend == "mesh_to_sdf_scan"
    _check_result_layout(result, len(points))
    clear = np.abs(exact) > SCAN_SIGN_BAND
    assert np.array_equal(np.sign(result.sdf[clear]), np.sign(exact[clear]))
    error = np.abs(result.sdf - exact)[keep(points)]
    assert error.max() < SCAN_TOLERANCE, f"{shape}: max error {error.max():.2e}"


@pytest.mark.slow
def test_mesh_to_sdf_scan_view_dirs_look_at_the_surface(scan_results) -> None:
    points, result = scan_results["sphere"]
    normals = _sphere().face_normals[result.closest_face]
    # A camera sees the front of a face: its ray runs against the outward normal.
    facing = np.einsum("nd,nd->n", result.view_dirs, normals)
    assert np.mean(facing < 0) > 0.95


@pytest.mark.slow
def test_backends_agree_on_non_watertight_chair() -> None:
    vertices, faces = _normalised_chair()
    assert not trimesh.Trimesh(vertices, faces, process=False).is_watertight
    points = sample_sdf_queries(vertices, faces, 4000, np.random.default_rng(9))
    winding = compute_sdf(vertices, faces, points, backend="winding")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fallback warning, if no OpenGL
        scan = compute_sdf(vertices, faces, points, backend="mesh_to_sdf")
    assert np.mean(np.sign(winding.sdf) == np.sign(scan.sdf)) >= 0.99
    gap = np.abs(np.abs(winding.sdf) - np.abs(scan.sdf))
    # Scans miss occluded pockets (under the seat), where their distances are too large.
    assert np.median(gap) < 2e-3
    assert np.quantile(gap, 0.9) < 5e-3
    np.testing.assert_array_equal(winding.closest_face, scan.closest_face)
