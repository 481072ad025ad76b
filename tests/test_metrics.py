"""Metrics and thin-part detection on small analytic shapes."""

import numpy as np
import pytest
import trimesh

from core.data.thickness import local_thickness, thin_mask
from core.evaluation.metrics import (
    chamfer_deepsdf,
    chamfer_l1,
    colour_error,
    emd,
    evaluate_reconstruction,
    fscore,
    mesh_components,
    normal_consistency,
    point_components,
    sample_mesh_surface,
)
from core.meshing import MeshArrays


def _sphere_points(n, r=0.5, seed=0):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return p * r, p


def test_chamfer_known_values():
    gt = np.zeros((4, 3))
    pred = gt + [0.1, 0, 0]
    assert chamfer_deepsdf(gt, pred) == pytest.approx(0.02)
    assert chamfer_l1(gt, pred) == pytest.approx(0.1)
    assert chamfer_deepsdf(gt, gt) == 0.0


def test_emd_is_mean_matched_distance():
    a = np.random.default_rng(0).random((50, 3))
    assert emd(a, a + [0, 0, 0.2], n=50) == pytest.approx(0.2)
    assert emd(a, a[::-1].copy(), n=50) == pytest.approx(0.0, abs=1e-12)


def test_fscore_precision_recall():
    gt = np.array([[0.0, 0, 0], [1, 0, 0]])
    pred = np.array([[0.0, 0, 0.005], [5, 5, 5], [6, 6, 6], [7, 7, 7]])
    out = fscore(gt, pred, threshold=0.01)
    assert out["precision"] == 0.25 and out["recall"] == 0.5
    assert out["fscore"] == pytest.approx(2 * 0.25 * 0.5 / 0.75)


def test_normal_consistency_and_colour_error():
    pts, nrm = _sphere_points(500)
    assert normal_consistency(pts, nrm, pts, -nrm) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    assert normal_consistency(pts, nrm, pts, rng.normal(size=nrm.shape)) < 0.7
    rgb = rng.random((500, 3))
    err = colour_error(pts, rgb, pts, np.clip(rgb + 0.1, 0, 1))
    assert 0 < err["colour_l1"] <= 0.1 + 1e-9 and err["colour_psnr"] >= 20.0
    assert colour_error(pts, rgb, pts, rgb)["colour_psnr"] == np.inf


def test_sample_mesh_surface_is_on_surface_and_area_weighted():
    box = trimesh.creation.box(extents=[2.0, 1.0, 0.1])
    pts, nrm, face, bary = sample_mesh_surface(box.vertices, box.faces, 20000, rng=0)
    assert pts.shape == (20000, 3) and np.allclose(np.linalg.norm(nrm, axis=1), 1)
    assert np.allclose(bary.sum(1), 1)
    # The two big faces hold 2 / (2 + 0.2 + 0.1) of the area.
    big = np.abs(pts[:, 2]) > 0.0499
    assert big.mean() == pytest.approx(2 / 2.3, abs=0.02)


def _sphere_mesh(r):
    m = trimesh.creation.icosphere(subdivisions=3, radius=r)
    return MeshArrays(
        m.vertices.astype(np.float32), m.faces.astype(np.int64), m.vertex_normals.astype(np.float32), None, {}
    )


def test_evaluate_reconstruction_keys_and_thin_subset():
    gt_mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    pts, fi = trimesh.sample.sample_surface(gt_mesh, 3000, seed=0)
    gt = {"surface_points": pts, "surface_normals": gt_mesh.face_normals[fi], "surface_rgb": np.full((3000, 3), 0.5)}
    pred = _sphere_mesh(0.5)
    pred.colours = np.full((len(pred.vertices), 3), 0.5, np.float32)
    mask = pts[:, 2] > 0.3
    out = evaluate_reconstruction(gt, pred, thin_mask=mask, n_points=3000)
    for key in (
        "chamfer",
        "chamfer_l1",
        "emd",
        "fscore_1pct",
        "fscore_2pct",
        "normal_consistency",
        "colour_l1",
        "thin_chamfer",
        "thin_fscore_1pct",
        "thin_normal_consistency",
        "thin_colour_l1",
    ):
        assert key in out, key
    assert out["chamfer"] * 1e3 < 1.0 and out["fscore_2pct"] > 0.95 and out["normal_consistency"] > 0.98
    worse = evaluate_reconstruction(gt, _sphere_mesh(0.45), n_points=3000)
    assert worse["chamfer"] > out["chamfer"] and worse["fscore_1pct"] < out["fscore_1pct"]
    empty = evaluate_reconstruction(gt, MeshArrays.empty())
    assert empty["chamfer"] == np.inf and empty["fscore_1pct"] == 0.0


def _box_and_rod():
    box = trimesh.creation.box(extents=[0.8, 0.8, 0.8])
    rod = trimesh.creation.cylinder(radius=0.01, height=0.8, sections=16)
    rod.apply_translation([0.0, 0.0, 0.8])
    return trimesh.util.concatenate([box, rod])


def test_thin_mask_flags_rod_not_box():
    mesh = _box_and_rod()
    pts, fi = trimesh.sample.sample_surface(mesh, 3000, seed=0)
    on_rod = pts[:, 2] > 0.41
    mask = thin_mask(mesh.vertices, mesh.faces, pts, mesh.face_normals[fi])
    assert on_rod.sum() > 10
    assert mask[on_rod].all() and not mask[~on_rod].any()
    t = local_thickness(mesh.vertices, mesh.faces, pts[on_rod], mesh.face_normals[fi][on_rod])
    assert np.median(t) == pytest.approx(0.02, rel=0.15)


def _box_plus(other: trimesh.Trimesh, offset) -> trimesh.Trimesh:
    other = other.copy()
    other.apply_translation(offset)
    return trimesh.util.concatenate([trimesh.creation.box(extents=[1.0, 1.0, 1.0]), other])


def test_mesh_components_counts_pieces_and_floaters_by_area_share():
    box = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    assert mesh_components(box.vertices, box.faces) == {
        "components": 1,
        "floaters": 0,
        "has_floaters": False,
        "largest_share": 1.0,
    }
    # a tiny far sphere: < 5 % of the area besides the main box -> one floater
    speck = _box_plus(trimesh.creation.icosphere(subdivisions=2, radius=0.05), [3.0, 0.0, 0.0])
    out = mesh_components(speck.vertices, speck.faces)
    assert (out["components"], out["floaters"], out["has_floaters"]) == (2, 1, True)
    assert 0.95 < out["largest_share"] < 1.0
    # two equal boxes: both hold 50 %, both are main pieces, no floater
    pair = _box_plus(trimesh.creation.box(extents=[1.0, 1.0, 1.0]), [3.0, 0.0, 0.0])
    out = mesh_components(pair.vertices, pair.faces)
    assert (out["components"], out["floaters"], out["has_floaters"]) == (2, 0, False)
    assert out["largest_share"] == pytest.approx(0.5)
    # the same mesh with every face's vertices written separately (unwelded) counts the same
    soup = speck.vertices[speck.faces].reshape(-1, 3)
    assert mesh_components(soup, np.arange(len(soup)).reshape(-1, 3))["components"] == 2
    assert mesh_components(np.zeros((0, 3)), np.zeros((0, 3), np.int64))["components"] == 0


def test_floater_kinds_tell_torn_pieces_blobs_and_cavities_apart():
    from core.evaluation.metrics import floater_kinds

    box = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    surface = np.asarray(trimesh.sample.sample_surface_even(box, 20_000, seed=0)[0])
    # a speck on the box's face (torn), one 2.5 away from it (free space), a bubble inside the box
    # (its faces turned inward, as marching cubes orients a pocket of positive field: a cavity)
    near = trimesh.creation.icosphere(subdivisions=1, radius=0.04)
    near.apply_translation([0.55, 0.0, 0.0])
    far = trimesh.creation.icosphere(subdivisions=1, radius=0.04)
    far.apply_translation([3.0, 0.0, 0.0])
    bubble = trimesh.creation.icosphere(subdivisions=1, radius=0.04)
    bubble.invert()
    mesh = trimesh.util.concatenate([box, near, far, bubble])
    assert floater_kinds(mesh.vertices, mesh.faces, surface, free_distance=0.13) == {"torn": 1, "free": 1, "cavity": 1}
    # a looser free-space distance makes the far speck a torn piece
    assert floater_kinds(mesh.vertices, mesh.faces, surface, free_distance=3.0)["torn"] == 2
    assert floater_kinds(box.vertices, box.faces, surface, 0.13) == {"torn": 0, "free": 0, "cavity": 0}
    empty = floater_kinds(np.zeros((0, 3)), np.zeros((0, 3), np.int64), surface, 0.13)
    assert sum(empty.values()) == 0
    # evaluation's fields: 2 voxels of a 32³ grid over [-1, 1]³ (0.13)
    from core.evaluation.loop import free_space_distance

    arrays = MeshArrays(
        np.asarray(mesh.vertices, np.float32),
        np.asarray(mesh.faces, np.int64),
        np.zeros((len(mesh.vertices), 3), np.float32),
    )
    gt = {"surface_points": surface, "surface_normals": np.zeros_like(surface)}
    metrics = evaluate_reconstruction(gt, arrays, n_points=2000, free_distance=free_space_distance(32))
    assert (metrics["torn_floaters"], metrics["free_floaters"], metrics["cavity_floaters"]) == (1, 1, 1)
    assert metrics["floaters"] == 3 and "torn_floaters" not in evaluate_reconstruction(gt, arrays, n_points=2000)


def test_main_component_faces_drops_the_floaters_of_the_same_rule():
    from core.evaluation.metrics import main_component_faces

    speck = _box_plus(trimesh.creation.icosphere(subdivisions=2, radius=0.05), [3.0, 0.0, 0.0])
    main = main_component_faces(speck.vertices, speck.faces)
    assert main.sum() == 12 and np.all(speck.vertices[speck.faces[main]][..., 0] < 1.0)  # the box, not the speck
    pair = _box_plus(trimesh.creation.box(extents=[1.0, 1.0, 1.0]), [3.0, 0.0, 0.0])
    assert main_component_faces(pair.vertices, pair.faces).all()  # two main pieces, nothing dropped
    assert len(main_component_faces(np.zeros((0, 3)), np.zeros((0, 3), np.int64))) == 0


def test_point_components_joins_touching_parts_and_splits_far_ones():
    # a box with a rod sticking into it: two separate mesh components, one piece of the object
    mesh = _box_and_rod()
    assert mesh_components(mesh.vertices, mesh.faces)["components"] == 2
    pts, _ = trimesh.sample.sample_surface(mesh, 20000, seed=0)
    assert point_components(pts) == 1
    far = _box_plus(trimesh.creation.box(extents=[1.0, 1.0, 1.0]), [3.0, 0.0, 0.0])
    pts, _ = trimesh.sample.sample_surface(far, 20000, seed=0)
    assert point_components(pts) == 2


def test_evaluate_reconstruction_reports_components_against_ground_truth():
    gt_mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    pts, fi = trimesh.sample.sample_surface(gt_mesh, 3000, seed=0)
    gt = {"surface_points": pts, "surface_normals": gt_mesh.face_normals[fi]}
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.03)
    speck.apply_translation([0.8, 0.0, 0.0])
    both = trimesh.util.concatenate([sphere, speck])
    pred = MeshArrays(
        both.vertices.astype(np.float32), both.faces.astype(np.int64), both.vertex_normals.astype(np.float32), None, {}
    )
    out = evaluate_reconstruction(gt, pred, n_points=3000)
    assert (out["components"], out["floaters"], out["has_floaters"], out["gt_components"]) == (2, 1, True, 1)
    assert out["largest_share"] > 0.95
    clean = evaluate_reconstruction(gt, _sphere_mesh(0.5), n_points=3000)
    assert (clean["components"], clean["has_floaters"]) == (1, False)
    empty = evaluate_reconstruction(gt, MeshArrays.empty())
    assert (empty["components"], empty["has_floaters"], empty["gt_components"]) == (0, False, 1)


def test_delta_e_2000_matches_the_published_values():
    """CIEDE2000: 0 for equal colours; sRGB red against green 86.6 and black against white 100
    (Sharma et al. 2005's formulation, D65 white), symmetric."""
    from core.evaluation.metrics import delta_e_2000

    red, green, black, white = [1.0, 0, 0], [0, 1.0, 0], [0, 0, 0], [1.0, 1.0, 1.0]
    values = delta_e_2000(np.array([red, red, black]), np.array([red, green, white]))
    np.testing.assert_allclose(values, [0.0, 86.61, 100.0], atol=0.05)
    np.testing.assert_allclose(delta_e_2000(np.array([green]), np.array([red])), values[1:2], atol=1e-9)


def test_colour_error_reports_delta_e_where_psnr_hides_a_wrong_hue():
    """A dark scene with one wrong-hued part: PSNR stays high, the mean ΔE00 says the part is wrong."""
    from core.evaluation.metrics import colour_error

    rng = np.random.default_rng(0)
    points = rng.normal(size=(400, 3))
    gt = np.full((400, 3), 0.1)
    gt[:40] = [0.8, 0.1, 0.1]  # a red part on dark furniture
    pred = gt.copy()
    pred[:40] = [0.45, 0.3, 0.15]  # returned brown
    out = colour_error(points, gt, points, pred)
    assert out["colour_psnr"] > 15
    wrong = colour_error(points[:40], gt[:40], points[:40], pred[:40])["colour_delta_e"]
    assert wrong > 20 and out["colour_delta_e"] == pytest.approx(wrong * 40 / 400, rel=1e-6)
