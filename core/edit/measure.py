"""What an edit did to the surface, measured on meshes: used by the tests, the CLI and the benchmark."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from core.evaluation.metrics import sample_mesh_surface
from core.meshing.extract import MeshArrays

__all__ = ["distance_to_surface", "far_surface_shift"]


def distance_to_surface(mesh: MeshArrays, points: np.ndarray, n: int = 60_000, seed: int = 0) -> np.ndarray:
    """(K,) distance from ``points`` (K, 3) to ``mesh`` (nearest of ``n`` surface samples; inf if empty)."""
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if mesh.is_empty:
        return np.full(len(pts), np.inf)
    surface, _, _, _ = sample_mesh_surface(mesh.vertices, mesh.faces, n, rng=seed)
    return cKDTree(surface).query(pts)[0]


def far_surface_shift(
    before: MeshArrays, after: MeshArrays, centres: np.ndarray, radius: float, n: int = 30_000, seed: int = 0
) -> dict[str, float]:
    """How far the surface moved outside ``radius`` of every point of ``centres`` (K, 3).

    Symmetric L1 Chamfer restricted to that region: surface samples of each mesh farther than
    ``radius`` from all centres, matched against the whole other surface (so a part that slid
    across the boundary is not counted as lost). Returns ``chamfer`` (mean of the two directions'
    mean distances), ``p95`` and ``max`` (of both directions' distances), unit-sphere units.
    """
    if before.is_empty or after.is_empty:
        return {"chamfer": float("inf"), "p95": float("inf"), "max": float("inf")}
    a, _, _, _ = sample_mesh_surface(before.vertices, before.faces, n, rng=seed)
    b, _, _, _ = sample_mesh_surface(after.vertices, after.faces, n, rng=seed + 1)
    c = np.asarray(centres, np.float64).reshape(-1, 3)

    def far(p: np.ndarray) -> np.ndarray:
        return p[cKDTree(c).query(p)[0] > radius] if len(c) else p

    da = cKDTree(b).query(far(a))[0]
    db = cKDTree(a).query(far(b))[0]
    both = np.concatenate([da, db])
    if len(both) == 0:
        return {"chamfer": 0.0, "p95": 0.0, "max": 0.0}
    return {
        "chamfer": float(0.5 * (da.mean() + db.mean())),
        "p95": float(np.percentile(both, 95)),
        "max": float(both.max()),
    }
