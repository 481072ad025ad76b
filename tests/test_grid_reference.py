"""The ground truth meshed on the evaluation's grid (core.evaluation.grid_reference) and the floaters counted
against it (issue 12: real furniture carries parts no grid keeps whole)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import trimesh

from core.evaluation.grid_reference import (
    SourceMesh,
    exact_sdf_mesh,
    grid_reference_floaters,
    grid_reference_measures,
    load_source_mesh,
)
from core.evaluation.metrics import mesh_components


def _box_and_far_cube(path):
    """A 1.0 × 0.5 × 1.0 box and, apart from it, a 0.14 cube (3 % of the area: a floater)."""
    box = trimesh.creation.box(extents=(1.0, 0.5, 1.0))
    cube = trimesh.creation.box(extents=(0.14, 0.14, 0.14))
    cube.apply_translation((0.0, 0.7, 0.0))
    trimesh.util.concatenate([box, cube]).export(path)
    return path


def test_the_exact_sdf_on_the_grid_keeps_a_separate_part_as_a_floater(tmp_path):
    mesh = trimesh.load(_box_and_far_cube(tmp_path / "two.obj"), force="mesh", process=False)
    source = SourceMesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64))
    assert grid_reference_floaters(source, 40) == 1
    alone = trimesh.creation.box(extents=(1.0, 0.5, 1.0))
    assert grid_reference_floaters(SourceMesh(alone.vertices, alone.faces), 40) == 0
    # the same field both ways: dense and narrow-band meshing agree on the pieces
    dense = exact_sdf_mesh(source, 40, method="dense")
    assert mesh_components(dense.vertices, dense.faces)["components"] == 2


def _plates_and_rod() -> trimesh.Trimesh:
    """Two 0.8 × 0.1 × 0.8 plates joined by a rod of radius 0.012 (a voxel of a 96³ grid is 0.021)."""
    top = trimesh.creation.box(extents=(0.8, 0.1, 0.8))
    top.apply_translation((0, 0.5, 0))
    bottom = top.copy()
    bottom.apply_translation((0, -1.0, 0))
    rod = trimesh.creation.cylinder(radius=0.012, height=1.0, sections=16)
    rod.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
    return trimesh.util.concatenate([top, bottom, rod])


def test_a_rod_thinner_than_a_voxel_breaks_even_in_the_exact_field():
    """Why the reference exists: at a coarse grid the exact SDF of a thin rod joining two plates
    loses the rod, and a finer grid keeps it, so a floater count must be read against the grid."""
    mesh = _plates_and_rod()
    source = SourceMesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64))
    coarse = exact_sdf_mesh(source, 24)
    fine = exact_sdf_mesh(source, 160)
    assert mesh_components(coarse.vertices, coarse.faces)["components"] >= 2
    assert mesh_components(fine.vertices, fine.faces)["components"] == 1


def test_the_grids_ceiling_scores_the_exact_field_like_a_reconstruction():
    """The exact field's thin F@1 on a grid too coarse for the rod is far below the fine grid's, while
    the plates (most of the surface) keep F@1 high on both: a model's thin F is read against it."""
    mesh = _plates_and_rod()
    source = SourceMesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64))
    points, face = trimesh.sample.sample_surface_even(mesh, 8000, seed=0)
    gt = {"surface_points": np.asarray(points), "surface_normals": np.asarray(mesh.face_normals[face])}
    on_rod = (np.abs(points[:, 0]) < 0.05) & (np.abs(points[:, 2]) < 0.05) & (np.abs(points[:, 1]) < 0.4)
    coarse = grid_reference_measures(source, gt, on_rod, 24, n_points=8000)
    fine = grid_reference_measures(source, gt, on_rod, 160, n_points=8000)
    assert fine["thin_fscore_1pct"] > 0.8 and fine["fscore_1pct"] > 0.9
    assert coarse["thin_fscore_1pct"] < fine["thin_fscore_1pct"] - 0.3
    assert coarse["floaters"] == grid_reference_floaters(source, 24)
    no_mask = grid_reference_measures(source, gt, None, 24, n_points=8000)
    assert math.isnan(no_mask["thin_fscore_1pct"]) and no_mask["fscore_1pct"] == pytest.approx(coarse["fscore_1pct"])


def test_load_source_mesh_uses_the_sample_files_frame(tmp_path, caplog):
    path = _box_and_far_cube(tmp_path / "two.obj")
    raw = trimesh.load(path, force="mesh", process=False)
    source = load_source_mesh(path, np.array([0.1, -0.2, 0.3]), 0.5)
    expected = (np.asarray(raw.vertices, np.float64) + [0.1, -0.2, 0.3]) * 0.5
    np.testing.assert_allclose(source.vertices, expected, atol=1e-6)
    assert load_source_mesh(None, np.zeros(3), 1.0) is None
    assert load_source_mesh(tmp_path / "gone.obj", np.zeros(3), 1.0) is None
    assert load_source_mesh(path, None, None) is None  # no recorded frame: nothing to compare in
    broken = tmp_path / "broken.obj"
    broken.write_text("this is not a mesh\n")
    assert load_source_mesh(broken, np.zeros(3), 1.0) is None
    assert "broken.obj" in caplog.text


def test_evaluation_counts_floaters_beyond_the_grid_reference(toy_trained, tmp_path):
    from core.evaluation.held_out_split import list_split
    from core.evaluation.loop import evaluate_split
    from core.evaluation.report import summarise
    from core.evaluation.settings import EvalSettings
    from core.tto.config import TTOConfig

    shape = next(s for s in list_split(toy_trained["data"], "train") if s.id == "slab0")
    with_part = replace(shape, source=_box_and_far_cube(tmp_path / "slab0.obj"))
    settings = EvalSettings(resolution=32, use_trained_codes=True, n_eval_points=2000)
    config = TTOConfig.from_losses("baseline")
    rows = evaluate_split(toy_trained["model"], [with_part, shape], config, settings)
    measured, no_source = rows
    assert measured["gt_grid_floaters"] == 1
    assert measured["extra_floaters"] == max(0, measured["floaters"] - 1)
    assert measured["has_extra_floaters"] == (measured["extra_floaters"] > 0)
    kinds = measured["torn_floaters"] + measured["free_floaters"] + measured["cavity_floaters"]
    assert kinds == measured["floaters"]  # every floater has one kind
    assert math.isnan(no_source["gt_grid_floaters"]) and no_source["has_extra_floaters"] is None
    # the grid's ceiling is measured where a source is (this source is not slab0's surface: a low score)
    assert 0.0 <= measured["gt_grid_fscore_1pct"] < 0.5
    assert math.isnan(no_source["gt_grid_fscore_1pct"]) and math.isnan(no_source["gt_grid_thin_fscore_1pct"])
    summary = summarise(rows)["all"]
    assert summary["floaters beyond gt grid %"] == pytest.approx(100.0 * measured["has_extra_floaters"])
    assert summary["gt grid F@1 %"] == pytest.approx(100.0 * measured["gt_grid_fscore_1pct"])
    (off,) = evaluate_split(toy_trained["model"], [with_part], config, replace(settings, grid_reference=False))
    assert math.isnan(off["gt_grid_floaters"]) and off["floaters"] == measured["floaters"]


def test_a_positive_iso_level_dilates_the_reconstruction(toy_trained, tmp_path):
    """``EvalSettings.iso_level``: the mesh of the level set sdf = 0.06 is the zero set grown on every
    side (by 0.06 for a true distance; the toy decoder's field is flatter, so by more)."""
    from core.evaluation.held_out_split import list_split
    from core.evaluation.loop import evaluate_split
    from core.evaluation.settings import EvalSettings
    from core.tto.config import TTOConfig

    shape = next(s for s in list_split(toy_trained["data"], "train") if s.id == "slab0")
    config = TTOConfig.from_losses("baseline")
    extents = []
    for level in (0.0, 0.06):
        settings = EvalSettings(
            resolution=40,
            use_trained_codes=True,
            n_eval_points=2000,
            save_meshes=True,
            iso_level=level,
            grid_reference=False,
        )
        (row,) = evaluate_split(toy_trained["model"], [shape], config, settings, out_dir=tmp_path / str(level))
        assert "error" not in row
        mesh = trimesh.load(tmp_path / str(level) / "meshes" / shape.class_name / "slab0.ply", process=False)
        extents.append(np.ptp(np.asarray(mesh.vertices), axis=0))
    grown = extents[1] - extents[0]
    assert np.all(grown > 0.1) and np.all(grown < 1.0), grown
