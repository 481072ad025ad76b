"""Tests of core/data/normalization.py (DeepSDF unit-sphere normalisation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.data.mesh_io import load_mesh
from core.data.normalization import MARGIN, Normalization, compute_normalization, normalize_mesh

DUCK = Path(__file__).parent / "data" / "meshes" / "obj_mtl_tex_duck" / "duck.obj"


def _points(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * [3.0, 0.5, 1.0] + [10.0, -4.0, 2.0]


def test_farthest_vertex_at_one_over_margin_and_bbox_centred() -> None:
    vertices = _points()
    norm = compute_normalization(vertices)
    out = norm.apply(vertices)
    assert np.linalg.norm(out, axis=1).max() == pytest.approx(1.0 / MARGIN, rel=1e-12)
    np.testing.assert_allclose(out.min(axis=0) + out.max(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(norm.offset, -0.5 * (vertices.min(axis=0) + vertices.max(axis=0)))


def test_invert_undoes_apply() -> None:
    vertices = _points()
    norm = compute_normalization(vertices)
    np.testing.assert_allclose(norm.invert(norm.apply(vertices)), vertices, rtol=0, atol=1e-12)
    queries = np.random.default_rng(1).uniform(-1, 1, (50, 3))
    np.testing.assert_allclose(norm.apply(norm.invert(queries)), queries, atol=1e-12)


def test_float32_stays_float32() -> None:
    norm = compute_normalization(_points())
    assert norm.apply(_points().astype(np.float32)).dtype == np.float32
    assert norm.invert(np.zeros((2, 3), np.float32)).dtype == np.float32


def test_dict_round_trip_through_json() -> None:
    norm = compute_normalization(_points())
    back = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.offset, norm.offset)
    assert back.scale == norm.scale


def test_degenerate_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        compute_normalization(np.ones((4, 3)))
    with pytest.raises(ValueError):
        compute_normalization(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        Normalization(offset=np.zeros(3), scale=0.0)


def test_normalize_mesh_keeps_faces_and_colours() -> None:
    mesh = load_mesh(DUCK)
    normalised, norm = normalize_mesh(mesh)
    assert np.linalg.norm(normalised.vertices, axis=1).max() == pytest.approx(1.0 / MARGIN)
    np.testing.assert_array_equal(normalised.faces, mesh.faces)
    np.testing.assert_allclose(norm.invert(normalised.vertices), mesh.vertices, atol=1e-9)
    faces = np.arange(0, len(mesh.faces), 7)
    bary = np.full((len(faces), 3), 1.0 / 3.0)
    np.testing.assert_array_equal(normalised.colours_at(faces, bary), mesh.colours_at(faces, bary))
    assert normalised.colour_path == mesh.colour_path
    assert normalised.area == pytest.approx(mesh.area * norm.scale**2)
