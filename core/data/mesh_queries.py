"""Exact geometric queries on a triangle mesh: closest points (libigl's AABB tree), winding numbers, face
normals and the argument checks they share.

Why a module of its own: both signed-distance fields build on these queries — the winding-number field of
:mod:`core.data.sdf_backends` and the dilated open-mesh field of :mod:`core.data.open_mesh_sdf` — and neither
should import the other to reach them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ClosestPoints",
    "aabb_tree",
    "as_mesh_arrays",
    "as_points",
    "closest_points",
    "face_normals",
    "into_surface_dirs",
    "unit_or",
    "winding_numbers",
    "EXACT_WINDING_MAX_FACES",
    "EXACT_WINDING_MAX_PAIRS",
    "DEFAULT_CHUNK_SIZE",
]

# Query points per libigl call: bounds the (chunk, 3) float64 temporaries; large enough
# that the fast-winding-number tree, rebuilt per call, costs little (~1 ms per 1k faces).
EXACT_WINDING_MAX_FACES = 1000
"""Meshes up to this many faces get libigl's exact winding number (faster there, and exact)."""
EXACT_WINDING_MAX_PAIRS = 300_000_000
"""Exact winding numbers also when queries x faces stays under this (about 3 s on one core)."""
DEFAULT_CHUNK_SIZE = 131_072


@dataclass
class ClosestPoints:
    """Exact closest points on a triangle mesh (libigl AABB tree).

    Attributes
    ----------
    distance : (N,) float64
        Unsigned Euclidean distance.
    face : (N,) int64
        Face holding the closest point.
    point : (N, 3) float64
        The closest point.
    barycentric : (N, 3) float64
        Its barycentric coordinates in ``face``.
    """

    distance: np.ndarray
    face: np.ndarray
    point: np.ndarray
    barycentric: np.ndarray


def as_mesh_arrays(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}.")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"faces must have shape (F, 3) with F > 0, got {faces.shape}.")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"faces index vertices outside [0, {len(vertices)}).")
    return vertices, faces


def as_points(points: np.ndarray) -> np.ndarray:
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError("points contain NaN or infinite values.")
    return points


def _barycentric(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Barycentric coordinates of points lying on their triangles.

    Parameters
    ----------
    points : (N, 3) float64
    triangles : (N, 3, 3) float64
        Corner positions.

    Returns
    -------
    (N, 3) float64
        Clipped to [0, 1] and renormalised (the points come from a closest-point query, so
        only rounding pushes them outside); a degenerate triangle gets a one-hot weight on
        its corner nearest to the point, which is what a colour look-up needs.
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00 = np.einsum("nd,nd->n", v0, v0)
    d01 = np.einsum("nd,nd->n", v0, v1)
    d11 = np.einsum("nd,nd->n", v1, v1)
    d20 = np.einsum("nd,nd->n", v2, v0)
    d21 = np.einsum("nd,nd->n", v2, v1)
    denom = d00 * d11 - d01 * d01
    scale = np.maximum(d00, d11)
    good = denom > 1e-14 * scale * scale
    safe = np.where(good, denom, 1.0)
    v = (d11 * d20 - d01 * d21) / safe
    w = (d00 * d21 - d01 * d20) / safe
    bary = np.stack([1.0 - v - w, v, w], axis=1)
    if not np.all(good):
        bad = ~good
        corner = np.argmin(np.linalg.norm(triangles[bad] - points[bad, None, :], axis=2), axis=1)
        bary[bad] = np.eye(3)[corner]
    bary = np.clip(bary, 0.0, 1.0)
    return bary / bary.sum(axis=1, keepdims=True)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) float64 unit normals; zero rows for degenerate faces."""
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(cross, axis=1, keepdims=True)
    return np.divide(cross, length, out=np.zeros_like(cross), where=length > 0)


def unit_or(directions: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Normalise rows; rows of (near) zero length take the matching ``fallback`` row."""
    length = np.linalg.norm(directions, axis=1, keepdims=True)
    ok = length[:, 0] > 1e-12
    out = fallback.copy()
    out[ok] = directions[ok] / length[ok]
    return out


def into_surface_dirs(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, closest: ClosestPoints
) -> np.ndarray:
    """(N, 3) float64 negated normals of the closest faces.

    A degenerate face has no normal; its queries look along the ray to the closest point
    instead, or down -z when they sit on it.
    """
    dirs = -face_normals(vertices, faces)[closest.face]
    missing = ~np.any(dirs != 0, axis=1)
    if np.any(missing):
        down = np.tile([0.0, 0.0, -1.0], (int(missing.sum()), 1))
        dirs[missing] = unit_or(closest.point[missing] - points[missing], down)
    return dirs


def aabb_tree(vertices: np.ndarray, faces: np.ndarray) -> Any:
    """libigl's AABB tree of a mesh, for :func:`closest_points` calls that query one mesh many times."""
    import igl

    vertices, faces = as_mesh_arrays(vertices, faces)
    tree = igl.AABB()
    tree.init(vertices, faces)
    return tree


def closest_points(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    tree: Any = None,
) -> ClosestPoints:
    """Exact closest points on a triangle mesh, in chunks of ``chunk_size`` queries.

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int
    points : (N, 3) float
    chunk_size : int
        Queries per libigl call.
    tree : optional
        :func:`aabb_tree` of this very mesh, reused; built here when None.

    Returns
    -------
    ClosestPoints
    """
    vertices, faces = as_mesh_arrays(vertices, faces)
    points = as_points(points)
    if tree is None:
        tree = aabb_tree(vertices, faces)
    n = len(points)
    sq_dist = np.empty(n)
    face = np.empty(n, dtype=np.int64)
    point = np.empty((n, 3))
    for start in range(0, n, max(1, chunk_size)):
        stop = min(n, start + max(1, chunk_size))
        d, i, c = tree.squared_distance(vertices, faces, points[start:stop])
        sq_dist[start:stop], face[start:stop], point[start:stop] = d, i, c
    bary = _barycentric(point, vertices[faces[face]])
    return ClosestPoints(distance=np.sqrt(np.maximum(sq_dist, 0.0)), face=face, point=point, barycentric=bary)


def winding_numbers(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> np.ndarray:
    """(N,) generalised winding numbers of ``points`` (libigl; exact up to
    :data:`EXACT_WINDING_MAX_FACES` faces, fast Barnes-Hut beyond)."""
    import igl

    vertices, faces = as_mesh_arrays(vertices, faces)
    points = as_points(points)
    winding = np.empty(len(points))
    step = max(1, chunk_size)
    # Exact solid angles cost O(queries x faces) with no tree; the fast (Barnes-Hut) version pays
    # for its tree and near-field work, which loses on small meshes: 2x slower at 600 faces.
    # Barnes-Hut also loses on meshes of a few thousand faces with large triangles near the queries
    # (a fridge's panels: 6x slower than exact at 2,400 faces), so exact wins while it is cheap outright.
    exact = len(faces) <= EXACT_WINDING_MAX_FACES or len(faces) * len(points) <= EXACT_WINDING_MAX_PAIRS
    winding_fn = igl.winding_number if exact else igl.fast_winding_number
    for start in range(0, len(points), step):
        winding[start : start + step] = winding_fn(vertices, faces, points[start : start + step])
    return winding
