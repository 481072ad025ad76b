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

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

__all__ = [
    "local_thickness",
    "thin_mask",
    "thin_part_mask",
    "elongation",
    "approximate_thickness",
    "THIN_FRACTION",
    "THIN_PART_MAX_FRACTION",
    "ELONGATION_MAX",
]

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
    thresholds in :mod:`core.evaluation.metrics` use).
    """
    size = float(np.linalg.norm(np.max(vertices, 0) - np.min(vertices, 0)))
    limit = fraction * size
    # March a little past the limit only: nothing beyond it changes the answer.
    thickness = local_thickness(vertices, faces, points, normals, max_distance=2.0 * limit, n_steps=16)
    return thickness < limit


# -- thin parts: slender pieces (legs, arms, rods, handles), not thin plates ------------------------

THIN_PART_MAX_FRACTION = 0.08
"""A thin part is at most this thick, as a fraction of the object size (bounding-box diagonal)."""
ELONGATION_MAX = 0.15
"""Rod-like: the second/first eigenvalue ratio of the surface around a point stays under this."""
NEIGHBOURHOOD_SCALE = 3.0
"""The surface around a point is taken within this many local thicknesses of it."""


BALL_QUERY_CHUNK = 128
"""Centres per ``cKDTree.query_ball_point`` call in :func:`_balls`."""


def _balls(tree: cKDTree, centres: np.ndarray, radii: np.ndarray) -> Iterator[tuple[int, list[int]]]:
    """(index of the centre, indices of the tree's points within its radius), centre by centre.

    Why in chunks: one ``query_ball_point`` over thousands of centres builds every neighbour list
    while holding the GIL — 0.4-0.7 s on the viewer's partial-scan metrics, during which its UI
    thread could not run a single event. :data:`BALL_QUERY_CHUNK` centres at a time keep each hold
    to a few ms and give the same lists.
    """
    centres = np.asarray(centres, np.float64)
    radii = np.asarray(radii, np.float64)
    for start in range(0, len(centres), BALL_QUERY_CHUNK):
        stop = start + BALL_QUERY_CHUNK
        for j, neighbours in enumerate(tree.query_ball_point(centres[start:stop], radii[start:stop]), start):
            yield j, neighbours


def elongation(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, min_neighbours: int = 8) -> np.ndarray:
    """(M,) λ₂/λ₁ of the covariance of ``points`` within ``radii`` of each of the ``centres``.

    Why: a rod of diameter D seen within a ball of radius 3D spreads along its axis only
    (λ₂/λ₁ ≈ 0.04); a plate of the same thickness spreads in two directions (≈ 1) and a plate's
    edge or corner in between (≈ 0.3). So the ratio tells a chair leg from a seat board, which
    thickness alone cannot: both are a few percent of the chair's size. Centres with fewer than
    ``min_neighbours`` points around them get 1 (not rod-like).
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(np.asarray(points, np.float64))
    ratio = np.ones(len(centres))
    for j, neighbours in _balls(tree, centres, radii):
        if len(neighbours) < min_neighbours:
            continue
        q = points[neighbours] - points[neighbours].mean(axis=0)
        eigenvalues = np.linalg.eigvalsh(q.T @ q)  # ascending
        ratio[j] = eigenvalues[1] / max(eigenvalues[2], 1e-30)
    return ratio


def approximate_thickness(
    points: np.ndarray, normals: np.ndarray, centres: np.ndarray, centre_normals: np.ndarray, max_distance: float
) -> np.ndarray:
    """(M,) thickness at ``centres`` from surface points alone (when the mesh is gone).

    The depth, along -normal, of the nearest sample behind the centre whose normal faces the
    other way (the far side of the wall or rod) and that lies near the inward ray (laterally
    within its depth: sparse samples of a thin rod seldom lie exactly opposite each other);
    ``max_distance`` where there is none within ``max_distance``.
    """
    from scipy.spatial import cKDTree

    p = np.asarray(points, np.float64)
    n = np.asarray(normals, np.float64)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    c = np.asarray(centres, np.float64)
    cn = np.asarray(centre_normals, np.float64)
    cn = cn / np.maximum(np.linalg.norm(cn, axis=1, keepdims=True), 1e-12)
    thickness = np.full(len(c), float(max_distance))
    for j, neighbours in _balls(cKDTree(p), c, np.full(len(c), float(max_distance))):
        q = p[neighbours] - c[j]
        depth = -(q @ cn[j])
        lateral = np.linalg.norm(q + depth[:, None] * cn[j], axis=1)
        across = (n[neighbours] @ cn[j] < -0.5) & (depth > 0) & (lateral < depth + 1e-3 * max_distance)
        if across.any():
            thickness[j] = min(float(depth[across].min()), max_distance)
    return thickness


def thin_part_mask(
    points: np.ndarray,
    normals: np.ndarray,
    vertices: np.ndarray | None = None,
    faces: np.ndarray | None = None,
    max_fraction: float = THIN_PART_MAX_FRACTION,
    elongation_max: float = ELONGATION_MAX,
    n_reference: int = 4000,
    seed: int = 0,
) -> np.ndarray:
    """(N,) bool: True for surface points on slender parts — legs, arms, rods, handles, wires.

    A point is on a thin part when the part is thinner than ``max_fraction`` of the object size
    *and* rod-like at the scale of its own thickness (:func:`elongation` under ``elongation_max``
    within :data:`NEIGHBOURHOOD_SCALE` thicknesses). Thickness alone ("thinner than 3 % of the
    diagonal") also took seats, table tops, panels and lamp shades, which covered most of a real
    piece of furniture's surface, so a "thin-part" score hardly differed from the plain one.

    Thickness comes from the mesh when ``vertices``/``faces`` are given (:func:`local_thickness`),
    else from the points (:func:`approximate_thickness`). Both are computed on ``n_reference``
    points drawn with ``seed`` and passed on to every point from its nearest reference point,
    which keeps the cost fixed whatever the number of points.
    """
    from scipy.spatial import cKDTree

    p = np.asarray(points, np.float64)
    n = np.asarray(normals, np.float64)
    if len(p) == 0:
        return np.zeros(0, bool)
    box = np.vstack([p, vertices]) if vertices is not None else p
    size = float(np.linalg.norm(box.max(axis=0) - box.min(axis=0)))
    limit = max_fraction * size
    rng = np.random.default_rng(seed)
    ref = rng.choice(len(p), size=min(n_reference, len(p)), replace=False)
    if vertices is not None and faces is not None:
        thickness = local_thickness(vertices, faces, p[ref], n[ref], max_distance=2.0 * limit, n_steps=24)
    else:
        thickness = approximate_thickness(p, n, p[ref], n[ref], max_distance=2.0 * limit)
    radii = np.clip(NEIGHBOURHOOD_SCALE * thickness, 0.02 * size, 0.25 * size)
    thin_ref = (thickness < limit) & (elongation(p, p[ref], radii) < elongation_max)
    _, nearest = cKDTree(p[ref]).query(p)
    return thin_ref[nearest]
