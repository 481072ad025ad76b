"""Grid evaluation (dense vs coarse-to-fine), extract_mesh and export."""

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from core.meshing import MeshArrays, evaluate_coarse_to_fine, evaluate_dense, export_mesh, extract_mesh, to_trimesh


def sphere(p):
    return p.norm(dim=-1) - 0.5


def box(p):
    q = (p - 0.013).abs() - torch.tensor([0.5, 0.3, 0.4])
    return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)


def torus(p):
    q = torch.stack([torch.hypot(p[:, 0], p[:, 1]) - 0.5, p[:, 2]], -1)
    return q.norm(dim=-1) - 0.15


def rod(p):
    """Capped cylinder of radius 0.01 along x, off the grid lines: thinner than any coarse cell."""
    q = p - torch.tensor([0.0, 0.03, -0.025])
    d = torch.stack([torch.hypot(q[:, 1], q[:, 2]) - 0.01, q[:, 0].abs() - 0.7], -1)
    return d.clamp(min=0).norm(dim=-1) + d.max(-1).values.clamp(max=0)


def sphere_and_rod(p):
    return torch.minimum(sphere(p - torch.tensor([0.2, 0.0, 0.0])), rod(p))


@pytest.mark.parametrize("fn", [sphere, box, torus, rod, sphere_and_rod])
def test_coarse_to_fine_matches_dense_exactly_for_lipschitz_sdfs(fn):
    res = 65
    dense = evaluate_dense(fn, res, "cpu", max_batch=20000)
    c2f = evaluate_coarse_to_fine(fn, res, "cpu", max_batch=20000)
    assert c2f.stats["n_evaluations"] < dense.stats["n_evaluations"]
    assert torch.equal(dense.values < 0, c2f.values < 0)
    a = extract_mesh(fn, res, method="dense", device="cpu")
    b = extract_mesh(fn, res, method="coarse_to_fine", device="cpu")
    assert not a.is_empty and a.faces.shape == b.faces.shape
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)


def test_sign_change_rule_would_lose_the_rod():
    # The rod never changes sign on the coarse grid's corners, yet the band rule keeps it.
    c2f = evaluate_coarse_to_fine(rod, 65, "cpu", coarse_resolution=9)
    coarse_lattice = c2f.values[::8, ::8, ::8]
    assert not (coarse_lattice < 0).any()
    assert (c2f.values < 0).any()


def test_coarse_to_fine_on_mlp_close_to_dense():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Softplus(beta=10), torch.nn.Linear(32, 1))

    def fn(p):
        return sphere(p) + 0.05 * torch.tanh(mlp(p)[:, 0])

    a = extract_mesh(fn, 49, method="dense", device="cpu")
    b = extract_mesh(fn, 49, method="coarse_to_fine", device="cpu")
    h = 2 / 48
    d = cKDTree(a.vertices).query(b.vertices)[0]
    assert d.max() < 1e-3 * h and len(a.vertices) == len(b.vertices)
    assert b.stats["n_evaluations"] < 0.5 * a.stats["n_evaluations"]
    assert b.stats["normals"] == "sdf_gradient"


@pytest.mark.parametrize("backend", ["skimage", "torch"])
def test_sphere_mesh_outward_with_normals_and_colours(backend):
    mesh = extract_mesh(sphere, 40, colour_fn=lambda p: (p + 1) / 2, device="cpu", mc_backend=backend)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int64
    assert mesh.normals.dtype == np.float32 and mesh.colours.dtype == np.float32
    assert mesh.colours.shape == mesh.vertices.shape
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 0.5).max() < 0.01
    radial = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    assert (np.sum(mesh.normals * radial, axis=1) > 0.99).all()
    tm = to_trimesh(mesh)
    assert (np.sum(tm.face_normals * tm.triangles_center, axis=1) > 0).all()
    assert tm.volume == pytest.approx(4 / 3 * np.pi * 0.125, rel=0.02)
    for key in ("seconds_grid", "seconds_marching_cubes", "seconds_normals", "seconds_colours", "n_evaluations"):
        assert key in mesh.stats


def test_non_differentiable_sdf_falls_back_to_mesh_normals():
    def fn(p):
        return sphere(p).detach()

    mesh = extract_mesh(fn, 33, device="cpu")
    assert mesh.stats["normals"] == "mesh"
    assert (np.sum(mesh.normals * mesh.vertices, axis=1) > 0).all()


@pytest.mark.parametrize("method", ["dense", "coarse_to_fine"])
def test_no_surface_gives_empty_mesh(method):
    mesh = extract_mesh(lambda p: p.norm(dim=-1) + 0.1, 17, colour_fn=lambda p: p, method=method, device="cpu")
    assert mesh.is_empty and mesh.stats["empty"] and "positive" in mesh.stats["reason"]
    assert mesh.vertices.shape == (0, 3) and mesh.colours.shape == (0, 3)


def test_unknown_method_raises():
    with pytest.raises(ValueError):
        extract_mesh(sphere, 17, method="octree", device="cpu")


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".glb"])
def test_export_roundtrip_with_vertex_colours(tmp_path, suffix):
    mesh = extract_mesh(sphere, 17, colour_fn=lambda p: (p + 1) / 2, device="cpu")
    path = export_mesh(mesh, tmp_path / f"m{suffix}")
    assert path.exists() and not list(tmp_path.glob(".*tmp"))
    loaded = trimesh.load(path, force="mesh", process=False)
    assert len(loaded.vertices) == len(mesh.vertices) and len(loaded.faces) == len(mesh.faces)
    assert loaded.visual.kind == "vertex"
    np.testing.assert_allclose(loaded.visual.vertex_colors[:, :3] / 255.0, mesh.colours, atol=1 / 255)


def test_export_rejects_unknown_suffix(tmp_path):
    mesh = MeshArrays.empty()
    with pytest.raises(ValueError, match="suffix"):
        export_mesh(mesh, tmp_path / "m.stl")


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_sdf_slice_samples_the_plane_in_grid_order(axis):
    from core.meshing import sdf_slice

    centre = torch.tensor([0.2, -0.1, 0.05])

    def off_centre_sphere(p):
        return (p - centre).norm(dim=-1) - 0.5

    size, position = 41, 0.25
    sl = sdf_slice(off_centre_sphere, axis, position, size, device="cpu", max_batch=300)  # several batches
    assert sl.grid.shape == (size, size) and sl.grid.dtype == np.float32 and sl.axis == axis
    np.testing.assert_allclose(sl.coords, np.linspace(-1, 1, size))
    u, v = np.meshgrid(sl.coords, sl.coords, indexing="ij")  # grid[i, j] at (coords[i], coords[j])
    others = [i for i in range(3) if i != axis]
    c = centre.numpy()
    expected = np.sqrt((u - c[others[0]]) ** 2 + (v - c[others[1]]) ** 2 + (position - c[axis]) ** 2) - 0.5
    np.testing.assert_allclose(sl.grid, expected, atol=1e-6)
    data = sl.as_dict()
    assert set(data) == {"grid", "coords", "axis", "position"} and data["position"] == position


def test_sdf_slice_rejects_a_bad_axis_or_size():
    from core.meshing import sdf_slice

    with pytest.raises(ValueError, match="axis must be 0"):
        sdf_slice(sphere, 3, 0.0, device="cpu")
    with pytest.raises(ValueError, match="at least 2"):
        sdf_slice(sphere, 0, 0.0, size=1, device="cpu")


@pytest.mark.parametrize("fn", [sphere, rod, sphere_and_rod, torus])
def test_certified_signs_give_the_same_mesh_with_fewer_evaluations(fn):
    # The last level evaluates only the points whose sign the coarse values leave open, then the
    # missing corners of crossing cells: marching cubes must see exactly the reference's grid.
    from core.meshing.marching_cubes import marching_cubes_torch

    for resolution in (48, 65):
        full = evaluate_coarse_to_fine(fn, resolution, "cpu", coarse_resolution=9, certify_signs=False)
        fast = evaluate_coarse_to_fine(fn, resolution, "cpu", coarse_resolution=9)
        assert fast.stats["n_evaluations"] < full.stats["n_evaluations"]
        last = fast.stats["levels"][-1]
        assert last["evaluated"] < last["candidates"] and last["closure_rounds"] >= 0
        assert torch.equal(full.values < 0, fast.values < 0)
        v_full, f_full = marching_cubes_torch(full.values, 0.0)
        v_fast, f_fast = marching_cubes_torch(fast.values, 0.0)
        # Equal up to float rounding: a point evaluated in another batch can differ in its last bit.
        assert torch.equal(f_full, f_fast)
        torch.testing.assert_close(v_fast, v_full, atol=1e-4, rtol=0)


def test_certified_signs_on_a_trained_decoder():
    from pathlib import Path

    from core.meshing.marching_cubes import marching_cubes_torch
    from core.model.loading import load_trained_model

    model = load_trained_model(Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.pt", "cpu")
    for index in (0, 7):
        fn = model.sdf_fn(model.shape_codes[index], model.training_condition(index))
        full = evaluate_coarse_to_fine(fn, 64, "cpu", certify_signs=False)
        fast = evaluate_coarse_to_fine(fn, 64, "cpu")
        assert fast.stats["n_evaluations"] < 0.8 * full.stats["n_evaluations"]
        v_full, f_full = marching_cubes_torch(full.values, 0.0)
        v_fast, f_fast = marching_cubes_torch(fast.values, 0.0)
        assert torch.equal(f_full, f_fast)
        torch.testing.assert_close(v_fast, v_full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("resolution, stride", [(65, 1), (48, 1), (128, 2), (33, 4)])
def test_needed_points_are_the_points_of_the_refined_cells(resolution, stride):
    # The fine points a level evaluates come from the list of refined cells; they must be exactly the
    # points lying in some refined coarse cell (faces and corners included), also where the last
    # coarse cell is narrower than the others (resolution - 1 not a multiple of the coarse stride).
    from core.meshing.grid import _lattice, _needed_points

    coarse, fine = _lattice(resolution, 2 * stride, "cpu"), _lattice(resolution, stride, "cpu")
    n = coarse.shape[0] - 1
    refine = torch.rand((n, n, n), generator=torch.Generator().manual_seed(resolution)) < 0.05
    refine[-1, -1, -1] = True
    node = torch.searchsorted(fine, coarse)
    expected = torch.zeros((fine.shape[0],) * 3, dtype=torch.bool)
    for i, j, k in refine.nonzero().tolist():
        expected[node[i] : node[i + 1] + 1, node[j] : node[j + 1] + 1, node[k] : node[k + 1] + 1] = True
    assert torch.equal(_needed_points(refine, node, fine.shape[0]), expected)


@pytest.mark.parametrize("band", [0.0, -1.0, float("nan"), float("inf")])
def test_coarse_to_fine_refuses_a_band_factor_that_is_not_a_positive_number(band):
    with pytest.raises(ValueError, match="band_factor"):
        evaluate_coarse_to_fine(sphere, 33, "cpu", band_factor=band)
