"""Torch marching cubes (fast path) against scikit-image (reference)."""

import igl
import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from core.meshing.marching_cubes import marching_cubes, marching_cubes_skimage, marching_cubes_torch, triangle_table


def _grid(n):
    g = np.linspace(-1, 1, n, dtype=np.float32)
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1)


def _sphere(n, r=0.6):
    return (np.linalg.norm(_grid(n), axis=-1) - r).astype(np.float32)


def _torus(n):
    p = _grid(n)
    q = np.stack([np.hypot(p[..., 0] + 0.013, p[..., 1]) - 0.5, p[..., 2] + 0.007], -1)
    return (np.linalg.norm(q, axis=-1) - 0.2).astype(np.float32)


def _box(n):
    q = np.abs(_grid(n) - 0.011) - np.array([0.5, 0.3, 0.4], np.float32)
    return (np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(-1), 0)).astype(np.float32)


def test_table_uses_only_sign_changing_edges():
    from core.meshing.marching_cubes import _EDGES

    table = triangle_table()
    assert table.shape[0] == 256 and table.shape[2] == 3
    for case in range(256):
        inside = [(case >> c) & 1 for c in range(8)]
        used = set(table[case][table[case, :, 0] >= 0].ravel().tolist())
        crossing = {e for e, (a, b, _) in enumerate(_EDGES) if inside[a] != inside[b]}
        assert used == crossing, case


@pytest.mark.parametrize("field", [_sphere, _torus, _box])
def test_torch_matches_skimage_on_unambiguous_fields(field):
    vol = field(40)
    vs, fs = marching_cubes_skimage(vol)
    vt, ft = (t.numpy() for t in marching_cubes_torch(torch.from_numpy(vol)))
    # Same vertex set (order differs) and, with no ambiguous cubes on these fields, same face count.
    assert len(vs) == len(vt) and len(fs) == len(ft)
    assert cKDTree(vs).query(vt)[0].max() < 1e-5
    assert cKDTree(vt).query(vs)[0].max() < 1e-5
    mesh_t = trimesh.Trimesh(vt, ft, process=True)
    mesh_s = trimesh.Trimesh(vs, fs, process=True)
    assert mesh_t.is_watertight and mesh_t.is_winding_consistent
    # Both oriented outward (normals towards increasing values): positive volume.
    assert mesh_t.volume > 0 and mesh_s.volume > 0
    # Same polygons, possibly split along the other diagonal: volumes agree to the voxel scale.
    assert mesh_t.volume == pytest.approx(mesh_s.volume, rel=2e-3)


def test_torch_on_random_field_is_watertight_and_close_to_skimage():
    # Random fields hit every ambiguous case: Lewiner resolves them with the asymptotic decider
    # (and adds cube-centre vertices), we separate inside corners. Compare surfaces by Chamfer.
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(14, 14, 14)).astype(np.float32)
    vol[[0, -1], :, :] = vol[:, [0, -1], :] = 1.0
    vol[:, :, [0, -1]] = 1.0
    vt, ft = (t.numpy() for t in marching_cubes_torch(torch.from_numpy(vol)))
    vs, fs = marching_cubes_skimage(vol)
    mesh_t = trimesh.Trimesh(vt, ft, process=True)
    assert mesh_t.is_watertight and mesh_t.is_winding_consistent
    # Every torch vertex is a skimage vertex (grid-edge crossings are the same).
    assert cKDTree(vs).query(vt)[0].max() < 1e-5
    # Point-to-surface Chamfer (L1, in voxels) between the two meshes: ambiguous cubes differ in
    # topology, never by more than a voxel. White noise is the worst case (measured 0.14 mean).
    pts_t = trimesh.sample.sample_surface(mesh_t, 2000, seed=0)[0]
    pts_s = trimesh.sample.sample_surface(trimesh.Trimesh(vs, fs), 2000, seed=0)[0]
    d_ts = np.sqrt(igl.point_mesh_squared_distance(pts_t, vs.astype(np.float64), fs)[0])
    d_st = np.sqrt(igl.point_mesh_squared_distance(pts_s, vt.astype(np.float64), ft)[0])
    assert d_ts.mean() + d_st.mean() < 0.25
    assert max(d_ts.max(), d_st.max()) < 1.0


def test_empty_volume_and_dispatch():
    vol = np.ones((5, 5, 5), np.float32)
    v, f = marching_cubes_torch(torch.from_numpy(vol))
    assert v.shape == (0, 3) and f.shape == (0, 3)
    v, f = marching_cubes_skimage(vol)
    assert v.shape == (0, 3) and f.shape == (0, 3)
    vol = _sphere(12)
    for backend in ("skimage", "torch", "auto"):
        v, f = marching_cubes(torch.from_numpy(vol), backend=backend)
        assert v.dtype == np.float32 and f.dtype == np.int64 and len(f) > 0
    with pytest.raises(ValueError):
        marching_cubes(vol, backend="nope")


def _crossing_edge_vertices(volume: torch.Tensor, level: float = 0.0) -> torch.Tensor:
    """Reference: one vertex per sign-changing grid edge, at the linear zero, by axis then row-major."""
    inside = volume < level
    out = []
    for axis in range(3):
        n = volume.shape[axis]
        crossing = inside.narrow(axis, 0, n - 1) != inside.narrow(axis, 1, n - 1)
        v0, v1 = volume.narrow(axis, 0, n - 1)[crossing], volume.narrow(axis, 1, n - 1)[crossing]
        pos = crossing.nonzero().float()
        pos[:, axis] += ((level - v0) / (v1 - v0)).clamp(0.0, 1.0)
        out.append(pos)
    return torch.cat(out)


@pytest.mark.parametrize("shape", [(17, 19, 23), (2, 2, 2), (9, 2, 5)])
def test_torch_vertices_are_the_crossing_edges_in_order(shape):
    # The torch path finds its vertices from the active cubes only (no pass over every edge of the
    # volume): it must still give every sign-changing edge exactly one vertex, in the order a plain
    # pass over the three edge directions gives, so that faces index the same vertices.
    volume = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    vertices, faces = marching_cubes_torch(volume, 0.1)
    assert torch.equal(vertices, _crossing_edge_vertices(volume, 0.1))
    assert len(faces) and faces.min() >= 0 and faces.max() < len(vertices)
    assert len(torch.unique(faces)) == len(vertices)  # every vertex is used by a face
