"""Local thickness of a ground-truth surface, to tell thin parts (rods, legs, wires) apart.

The thickness at a surface point is the length of the inward ray along its -normal until it
leaves the solid. Per-ray mesh intersection (trimesh without embree, or ``igl.ray_mesh_intersect``
called once per ray) is slow from Python, so we march instead: points at a fixed step along
-normal are tested for inside/outside with libigl's fast winding number (vectorised over all
points and steps), and the first exit is refined by bisection. Thicknesses beyond ``max_distance``
are reported as ``max_distance``; thinner-than-a-step walls are still found, since the march
begins at half a step.
"""
from __future__ import annotations

import numpy as np

__all__ = ["local_thickness", "thin_mask", "THIN_FRACTION"]

THIN_FRACTION = 0.03
"""Thin means thinner than 3 % of the object size (its bounding-box diagonal)."""


def _inside(vertices: np.ndarray, faces: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import igl

    w = igl.fast_winding_number(vertices, faces, np.ascontiguousarray(queries, dtype=np.float64))
    return w > 0.5


def local_thickness(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    max_distance: float | None = None,
    n_steps: int = 48,
    n_bisect: int = 6,
    chunk: int = 200_000,
) -> np.ndarray:
    """Distance from each surface point along -normal to where the ray leaves the solid.

    Parameters
    ----------
    vertices, faces : the gt mesh, (V, 3) and (F, 3), closed and outward oriented.
    points, normals : (N, 3) surface points and their outward unit normals.
    max_distance : how far to march (default: 10 % of the bounding-box diagonal); longer
        thicknesses are clipped to it.
    n_steps : march steps up to ``max_distance``; ``n_bisect`` refinements of the exit.

    Returns
    -------
    (N,) float64 thickness, in the mesh's units.
    """
    v = np.ascontiguousarray(vertices, np.float64)
    f = np.ascontiguousarray(faces, np.int64)
    p = np.asarray(points, np.float64)
    d = -np.asarray(normals, np.float64)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    if max_distance is None:
        max_distance = 0.1 * float(np.linalg.norm(v.max(0) - v.min(0)))
    step = max_distance / n_steps
    t = (np.arange(n_steps) + 0.5) * step  # (S,)
    thickness = np.full(len(p), max_distance)
    per = max(1, chunk // n_steps)
    for s in range(0, len(p), per):
        ps, ds = p[s : s + per], d[s : s + per]
        q = ps[:, None, :] + t[None, :, None] * ds[:, None, :]  # (n, S, 3)
        inside = _inside(v, f, q.reshape(-1, 3)).reshape(len(ps), n_steps)
        outside = ~inside
        has_exit = outside.any(axis=1)
        first = np.argmax(outside, axis=1)
        # Exit lies in (t[first - 1], t[first]] (or (0, t[0]] for the first step); bisect it.
        lo = np.where(first > 0, t[np.maximum(first - 1, 0)], 0.0)
        hi = t[first]
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            m_in = _inside(v, f, ps + mid[:, None] * ds)
            lo = np.where(m_in, mid, lo)
            hi = np.where(m_in, hi, mid)
        thickness[s : s + per] = np.where(has_exit, 0.5 * (lo + hi), max_distance)
    return thickness


def thin_mask(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    fraction: float = THIN_FRACTION,
) -> np.ndarray:
    """(N,) bool: True where the local thickness is under ``fraction`` of the object size.

    Object size is the bounding-box diagonal of ``vertices`` (the same size the F-score
    thresholds in :mod:`core.metrics` use).
    """
    size = float(np.linalg.norm(np.max(vertices, 0) - np.min(vertices, 0)))
    limit = fraction * size
    # March a little past the limit only: nothing beyond it changes the answer.
    thickness = local_thickness(vertices, faces, points, normals, max_distance=2.0 * limit, n_steps=16)
    return thickness < limit
