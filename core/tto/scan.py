"""Single-view depth scan of a mesh: what a depth camera on one side would see.

The camera sits on the unit sphere at ``direction`` and looks at the origin with an
orthographic projection over the square [-1, 1]^2 of its image plane (the normalised shape
lies inside the unit sphere, so it fits the view whatever the direction). Depth is found by
a z-buffer rasteriser in numpy: every (triangle, covered pixel) pair is generated at once,
barycentric coordinates give each pair's depth, and the nearest pair per pixel wins. No
ray-tracing library is needed, and the cost is the number of covered pixels, not pixels x faces.

Back-projection gives surface points whose normals face the camera; rays in front of the
surface (and rays that miss it) are free space: :func:`free_space_samples` draws positive
SDF samples there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["DepthScan", "SCAN_DIRECTIONS", "camera_frame", "depth_scan", "free_space_samples"]

SCAN_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "front": (0.0, 0.0, 1.0),
    "side": (1.0, 0.0, 0.0),
    "top": (0.0, 1.0, 0.0),
    "oblique": (0.6, 0.4, 0.7),
}
"""The fixed camera directions of partial scans (the viewer's "Partial scan" and ``evaluate --observation
scan``), named; +y is up in the unit-sphere frame."""

_MAX_PAIRS = 4_000_000
"""(triangle, pixel) pairs processed at once: bounds the temporaries to a few hundred MB."""


@dataclass
class DepthScan:
    """One orthographic depth image and the surface points it saw (unit-sphere frame).

    Attributes
    ----------
    depth : (R, R) float64
        Distance from the image plane along the view ray; ``inf`` where the ray missed.
    points : (M, 3) float64
        Back-projected hit points (one per hit pixel, row-major pixel order).
    normals : (M, 3) float64
        Unit face normals at the hits, turned to face the camera.
    face_index : (M,) int64 and barycentric : (M, 3) float64
        Where on the mesh each hit lies (for colours).
    pixel : (M, 2) int64
        (row, column) of each hit.
    direction : (3,) float64
        Unit vector from the origin to the camera.
    camera : (3,) float64
        Camera position (``direction`` on the unit sphere).
    axes : (2, 3) float64
        Image plane axes (u right, v up), orthonormal and orthogonal to ``direction``.
    resolution : int
    """

    depth: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    face_index: np.ndarray
    barycentric: np.ndarray
    pixel: np.ndarray
    direction: np.ndarray
    camera: np.ndarray
    axes: np.ndarray
    resolution: int

    def pixel_centres(self) -> np.ndarray:
        """(R,) coordinates of pixel centres along each image axis, in [-1, 1]."""
        r = self.resolution
        return -1.0 + (np.arange(r) + 0.5) * (2.0 / r)

    def ray_origins(self) -> np.ndarray:
        """(R, R, 3) ray origins on the image plane (rays travel along ``-direction``)."""
        c = self.pixel_centres()
        vv, uu = np.meshgrid(c, c, indexing="ij")  # row = v, column = u
        return self.camera + uu[..., None] * self.axes[0] + vv[..., None] * self.axes[1]


def camera_frame(direction: np.ndarray, up: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit ``direction`` and the image axes ``(u, v)`` of a camera looking at the origin from it."""
    d = np.asarray(direction, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(d)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"scan direction must be a non-zero vector, got {tuple(d)}")
    d = d / norm
    if up is None:
        up = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([0.0, 0.0, 1.0])
    u = np.cross(np.asarray(up, np.float64), d)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    return d, np.stack([u, v])


def depth_scan(
    vertices: np.ndarray,
    faces: np.ndarray,
    direction: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 1.0),
    resolution: int = 128,
    up: tuple[float, float, float] | None = None,
    min_cosine: float = 0.02,
) -> DepthScan:
    """Render the depth of a unit-sphere-frame mesh from one direction and back-project it.

    Parameters
    ----------
    vertices : (V, 3) float, unit-sphere frame; faces : (F, 3) int.
    direction : camera position on the unit sphere (normalised here).
    resolution : pixels per side of the square image over [-1, 1]^2.
    min_cosine : hits seen at a grazing angle (|cos| between normal and view below this) are
        dropped: stepping along their normals would put samples on the wrong side.

    Returns
    -------
    DepthScan
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    d, axes = camera_frame(np.asarray(direction, np.float64), None if up is None else np.asarray(up, np.float64))
    camera = d.copy()
    r = int(resolution)
    if r < 2:
        raise ValueError(f"scan resolution must be at least 2, got {resolution}")
    step = 2.0 / r
    # Image coordinates (u, v in [-1, 1]) and depth (distance from the image plane).
    uv = v @ axes.T  # (V, 2)
    z = 1.0 - v @ d  # (V,)
    tri_uv = uv[f]  # (F, 3, 2)
    tri_z = z[f]
    lo = np.ceil((tri_uv.min(axis=1) + 1.0) / step - 0.5).astype(np.int64)
    hi = np.floor((tri_uv.max(axis=1) + 1.0) / step - 0.5).astype(np.int64)
    lo = np.clip(lo, 0, r - 1)
    hi = np.clip(hi, -1, r - 1)
    span = np.maximum(hi - lo + 1, 0)  # (F, 2) columns (u) and rows (v)
    count = span[:, 0] * span[:, 1]
    best_depth = np.full(r * r, np.inf)
    best_face = np.full(r * r, -1, dtype=np.int64)
    best_bary = np.zeros((r * r, 3))

    candidates = np.flatnonzero(count > 0)
    start = 0
    cum = np.cumsum(count[candidates])
    while start < len(candidates):
        base = cum[start - 1] if start > 0 else 0
        stop = int(np.searchsorted(cum, base + _MAX_PAIRS, side="right"))
        stop = max(stop, start + 1)
        chunk = candidates[start:stop]
        start = stop
        n_pairs = count[chunk]
        tri = np.repeat(chunk, n_pairs)
        local = np.arange(int(n_pairs.sum())) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
        cols = lo[tri, 0] + local % span[tri, 0]
        rows = lo[tri, 1] + local // span[tri, 0]
        pu = -1.0 + (cols + 0.5) * step
        pv = -1.0 + (rows + 0.5) * step
        a, b, c = tri_uv[tri, 0], tri_uv[tri, 1], tri_uv[tri, 2]
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        ok = np.abs(area) > 1e-14
        safe = np.where(ok, area, 1.0)
        w1 = ((pu - a[:, 0]) * (c[:, 1] - a[:, 1]) - (pv - a[:, 1]) * (c[:, 0] - a[:, 0])) / safe
        w2 = ((b[:, 0] - a[:, 0]) * (pv - a[:, 1]) - (b[:, 1] - a[:, 1]) * (pu - a[:, 0])) / safe
        w0 = 1.0 - w1 - w2
        eps = -1e-9
        inside = ok & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        if not inside.any():
            continue
        tri, rows, cols = tri[inside], rows[inside], cols[inside]
        bary = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
        depth = np.einsum("nk,nk->n", bary, tri_z[tri])
        pix = rows * r + cols
        # Nearest pair per pixel, then merge with the buffer.
        order = np.lexsort((depth, pix))
        pix, depth, tri, bary = pix[order], depth[order], tri[order], bary[order]
        first = np.ones(len(pix), dtype=bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, depth, tri, bary = pix[first], depth[first], tri[first], bary[first]
        closer = depth < best_depth[pix]
        pix = pix[closer]
        best_depth[pix] = depth[closer]
        best_face[pix] = tri[closer]
        best_bary[pix] = bary[closer]

    hit = np.flatnonzero(best_face >= 0)
    face = best_face[hit]
    bary = best_bary[hit]
    points = np.einsum("nk,nkd->nd", bary, v[f[face]])
    cross = np.cross(v[f[face, 1]] - v[f[face, 0]], v[f[face, 2]] - v[f[face, 0]])
    normals = cross / np.maximum(np.linalg.norm(cross, axis=1, keepdims=True), 1e-300)
    cosine = normals @ d
    # The nearest surface along a ray is seen from outside: its normal faces the camera
    # (a back face here means an open or inside-out mesh; the scan sees its outer side).
    normals = np.where(cosine[:, None] < 0, -normals, normals)
    keep = np.abs(cosine) >= min_cosine
    depth_map = best_depth.reshape(r, r)
    dropped = hit[~keep]
    depth_map.reshape(-1)[dropped] = np.inf
    hit, face, bary, points, normals = hit[keep], face[keep], bary[keep], points[keep], normals[keep]
    return DepthScan(
        depth=depth_map,
        points=points,
        normals=normals,
        face_index=face,
        barycentric=bary,
        pixel=np.stack([hit // r, hit % r], axis=1),
        direction=d,
        camera=camera,
        axes=axes,
        resolution=r,
    )


def free_space_samples(
    scan: DepthScan,
    per_ray: int = 2,
    rng: np.random.Generator | None = None,
    margin: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """Positive SDF samples in the space the camera saw through.

    On every ray, points are drawn uniformly between where the ray enters the unit sphere
    and ``margin`` before the hit (or the sphere's far side where the ray missed). Their SDF
    is not known exactly; the distance to the nearest observed surface point is an upper
    bound on it, and it is what the sample is labelled with (the loss clamps it anyway).

    Returns
    -------
    points (K, 3) float64, sdf (K,) float64 > 0.
    """
    rng = rng or np.random.default_rng(0)
    if per_ray <= 0 or len(scan.points) == 0:
        return np.zeros((0, 3)), np.zeros(0)
    origins = scan.ray_origins().reshape(-1, 3)
    depth = scan.depth.reshape(-1)
    offset = origins - scan.camera
    radius2 = np.sum(offset**2, axis=1)
    inside_sphere = radius2 < 1.0
    half_chord = np.sqrt(np.clip(1.0 - radius2, 0.0, None))
    # The image plane touches the sphere at the camera: ray at offset rho enters the sphere
    # at t = 1 - sqrt(1 - rho^2) and leaves at t = 1 + sqrt(1 - rho^2).
    t_enter = 1.0 - half_chord
    t_far = np.where(np.isfinite(depth), depth - margin, 1.0 + half_chord)
    valid = inside_sphere & (t_far > t_enter)
    idx = np.repeat(np.flatnonzero(valid), per_ray)
    if len(idx) == 0:
        return np.zeros((0, 3)), np.zeros(0)
    t = t_enter[idx] + rng.random(len(idx)) * (t_far[idx] - t_enter[idx])
    points = origins[idx] - t[:, None] * scan.direction
    sdf, _ = cKDTree(scan.points).query(points)
    return points, np.maximum(sdf, 1e-4)
