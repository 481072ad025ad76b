"""Thin parts are slender parts: legs and rods are selected, boards and plates of the same thickness are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from core.data.mesh_io import load_mesh
from core.data.thickness import elongation, thin_mask, thin_part_mask

DATA = Path(__file__).parent / "data" / "meshes"


def _table(leg_radius: float = 0.03, top_thickness: float = 0.05):
    """A table: a board as thin as the legs are wide, on four rods. Returns mesh and per-face leg label."""
    top = trimesh.creation.box(extents=[1.2, top_thickness, 0.8])
    top.apply_translation([0, 0.75, 0])
    parts, labels = [top], [np.zeros(len(top.faces), bool)]
    for sx in (-1, 1):
        for sz in (-1, 1):
            leg = trimesh.creation.cylinder(
                radius=leg_radius, segment=[[sx * 0.5, 0, sz * 0.3], [sx * 0.5, 0.73, sz * 0.3]]
            )
            parts.append(leg)
            labels.append(np.ones(len(leg.faces), bool))
    return trimesh.util.concatenate(parts), np.concatenate(labels)


def _samples(mesh: trimesh.Trimesh, n: int = 6000):
    points, face = trimesh.sample.sample_surface(mesh, n, seed=1)
    return points, mesh.face_normals[face], face


def test_rods_are_thin_parts_and_a_board_of_the_same_thickness_is_not():
    mesh, is_leg = _table()
    points, normals, face = _samples(mesh)
    leg = is_leg[face]
    new = thin_part_mask(points, normals, mesh.vertices, mesh.faces)
    old = thin_mask(mesh.vertices, mesh.faces, points, normals, fraction=0.05)
    assert new[leg].mean() > 0.6  # most of every leg (their ends meet the board)
    assert new[~leg].mean() < 0.02  # the board is thin too, but not slender
    assert old[~leg].mean() > 0.5  # which the thickness-only mask could not tell
    assert (new & leg).sum() / new.sum() > 0.95


def test_points_only_mask_agrees_with_the_mesh_mask():
    mesh, is_leg = _table()
    points, normals, face = _samples(mesh)
    from_points = thin_part_mask(points, normals)
    leg = is_leg[face]
    assert from_points[leg].mean() > 0.4
    assert from_points[~leg].mean() < 0.02


def test_elongation_separates_line_plane_and_edge():
    rng = np.random.default_rng(0)
    line = np.c_[rng.uniform(-1, 1, 2000), rng.normal(0, 0.01, 2000), rng.normal(0, 0.01, 2000)]
    plane = np.c_[rng.uniform(-1, 1, 2000), rng.uniform(-1, 1, 2000), np.zeros(2000)]
    centre = np.zeros((1, 3))
    assert elongation(line, centre, np.array([0.5]))[0] < 0.01
    assert elongation(plane, centre, np.array([0.5]))[0] > 0.7
    # too few neighbours: not rod-like
    assert elongation(line[:3], centre, np.array([0.5]))[0] == 1.0


def test_real_chair_legs_are_thin_parts_and_the_duck_has_none():
    chair = load_mesh(DATA / "obj_mtl_tex_chair_cc0" / "chair2.obj")
    whole = trimesh.Trimesh(chair.vertices, chair.faces, process=False)
    points, normals, _ = _samples(whole, 8000)
    mask = thin_part_mask(points, normals, chair.vertices, chair.faces, n_reference=2000)
    height = points[:, 1] - points[:, 1].min()
    size = np.ptp(points[:, 1])
    below_seat = height < 0.35 * size  # only the legs reach down there
    assert mask[below_seat].mean() > 0.8
    assert mask[height > 0.5 * size].mean() < 0.1  # the back (a panel) is not a thin part
    duck = load_mesh(DATA / "obj_mtl_tex_duck" / "duck.obj")
    whole = trimesh.Trimesh(duck.vertices, duck.faces, process=False)
    points, normals, _ = _samples(whole, 4000)
    assert thin_part_mask(points, normals, duck.vertices, duck.faces, n_reference=1000).mean() < 0.01


@pytest.mark.parametrize("n", [0, 5])
def test_tiny_inputs(n: int):
    points = np.random.default_rng(0).normal(size=(n, 3))
    normals = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-9)
    assert thin_part_mask(points, normals).shape == (n,)


def test_ball_queries_in_chunks_give_one_querys_neighbours():
    # The neighbourhoods are queried a chunk of centres at a time (so the viewer's UI thread is not
    # locked out for the whole query); across chunk boundaries they must be one query's lists.
    from scipy.spatial import cKDTree

    from core.data.thickness import BALL_QUERY_CHUNK, _balls

    rng = np.random.default_rng(3)
    points = rng.normal(size=(2000, 3))
    centres = points[: 2 * BALL_QUERY_CHUNK + 7]
    radii = rng.uniform(0.05, 0.6, len(centres))
    tree = cKDTree(points)
    chunked = list(_balls(tree, centres, radii))
    assert [j for j, _ in chunked] == list(range(len(centres)))
    assert [n for _, n in chunked] == tree.query_ball_point(centres, radii).tolist()
