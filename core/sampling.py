"""Surface samples and SDF query points, following DeepSDF's ``PreprocessMesh.cpp``.

Everything works on plain arrays in the unit-sphere frame: ``vertices`` (V, 3) and
``faces`` (F, 3). Randomness comes only from the ``np.random.Generator`` passed in, so a
shape sampled twice with equally seeded generators gives identical arrays.

DeepSDF's scheme, for ``n_total`` query points:

* ``n_near = int(47 * n_total / 50)`` points near the surface: ``n_near // 2`` area-weighted
  surface points, each perturbed twice with isotropic Gaussian noise, once with variance
  0.005 and once with variance 0.0005 (standard deviations ``sqrt(0.005)`` ~= 0.0707 and
  ``sqrt(0.0005)`` ~= 0.0224 per axis);
* the rest uniform in the bounding cube ``[-1, 1]^3``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError

__all__ = [
    "SamplingConfig",
    "SurfaceSample",
    "face_areas_and_normals",
    "sample_surface",
    "sample_sdf_queries",
]


@dataclass(frozen=True)
class SamplingConfig:
    """How many points to draw and how to spread them (DeepSDF's defaults)."""

    n_samples: int = 500_000
    """SDF query points per shape (DeepSDF: 500,000)."""
    n_surface: int = 30_000
    """Surface points stored per shape for evaluation (DeepSDF's SurfaceSamples: 30,000)."""
    near_fraction: float = 47 / 50
    """Share of the query points perturbed around the surface; the rest are uniform."""
    variance: float = 0.005
    """Variance (not std) of the first near-surface perturbation, per axis."""
    second_variance: float = 0.0005
    """Variance of the second, tighter perturbation (DeepSDF: ``variance / 10``)."""
    bounding_cube_dim: float = 2.0
    """Edge of the cube, centred at the origin, holding the uniform samples."""
    backend: str = "winding"
    """SDF back end (:mod:`core.sdf_backends`): ``winding`` or ``mesh_to_sdf``."""

    def __post_init__(self) -> None:
        # ConfigError like every settings dataclass (read through core.config_io.from_dict).
        if not 0.0 <= self.near_fraction <= 1.0:
            raise ConfigError(f"SamplingConfig.near_fraction must be in [0, 1], got {self.near_fraction}.")
        if not (self.variance >= 0 and self.second_variance >= 0
                and math.isfinite(self.variance) and math.isfinite(self.second_variance)):
            raise ConfigError(
                f"SamplingConfig variances must be finite and >= 0, got {self.variance} and {self.second_variance}."
            )
        if self.n_samples < 0 or self.n_surface < 0:
            raise ConfigError(f"SamplingConfig counts must be >= 0, got {self.n_samples}, {self.n_surface}.")
        if not (self.bounding_cube_dim > 0 and math.isfinite(self.bounding_cube_dim)):
            raise ConfigError(f"SamplingConfig.bounding_cube_dim must be finite and > 0, got {self.bounding_cube_dim}.")
        if self.backend not in ("winding", "mesh_to_sdf"):
            raise ValueError(f"SamplingConfig.backend must be 'winding' or 'mesh_to_sdf', got {self.backend!r}.")

    def split(self, n_total: int) -> tuple[int, int, int]:
        """Counts of the three groups for ``n_total`` queries.

        Returns
        -------
        tuple of int
            ``(n_first, n_second, n_uniform)``: points perturbed with ``variance``, with
            ``second_variance`` (both ``int(near_fraction * n_total) // 2`` as in
            ``PreprocessMesh.cpp``), and uniform points (the remainder, so the three add up
            to ``n_total`` exactly, where DeepSDF could drop one point).
        """
        n_pairs = int(self.near_fraction * n_total) // 2
        return n_pairs, n_pairs, n_total - 2 * n_pairs


@dataclass
class SurfaceSample:
    """Points drawn on a triangle mesh, with where they came from.

    Attributes
    ----------
    points : (n, 3) float32
        Positions on the surface, same frame as the vertices.
    normals : (n, 3) float32
        Unit normals of the faces the points lie on.
    face_index : (n,) int64
        Index of that face.
    barycentric : (n, 3) float32
        Barycentric coordinates of the points in their faces (rows sum to 1).
    """

    points: np.ndarray
    normals: np.ndarray
    face_index: np.ndarray
    barycentric: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


def _check_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}.")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3) (triangles), got {faces.shape}.")
    if len(faces) == 0:
        raise ValueError("the mesh has no faces; there is no surface to sample.")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"faces index vertices outside [0, {len(vertices)}).")
    return vertices, faces


def face_areas_and_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area and unit normal of every triangle.

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int

    Returns
    -------
    areas : (F,) float64
    normals : (F, 3) float64
        Unit normals by the right-hand rule; zero rows for degenerate (zero-area) faces.
    """
    vertices, faces = _check_mesh(vertices, faces)
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    normals = np.zeros_like(cross)
    nonzero = double_area > 0
    normals[nonzero] = cross[nonzero] / double_area[nonzero, None]
    return 0.5 * double_area, normals


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> SurfaceSample:
    """Draw ``n`` points uniformly over the surface area of a triangle mesh.

    A face is chosen with probability proportional to its area, then a point uniformly
    inside it (square-root warp of two uniforms, as in DeepSDF's ``SamplePointFromTriangle``).

    Parameters
    ----------
    vertices : (V, 3) float
        Vertex positions (unit-sphere frame).
    faces : (F, 3) int
        Triangle vertex indices.
    n : int
        Number of points.
    rng : np.random.Generator
        Source of randomness; the result is a function of its state only.

    Returns
    -------
    SurfaceSample

    Raises
    ------
    ValueError
        Malformed arrays, no faces, or zero total area.
    """
    vertices, faces = _check_mesh(vertices, faces)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    areas, normals = face_areas_and_normals(vertices, faces)
    total = areas.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the mesh has zero (or non-finite) surface area; there is no surface to sample.")

    # Inverse-CDF sampling: same draws, same faces, independent of numpy's choice() internals.
    cdf = np.cumsum(areas)
    face_index = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    # Rounding can put a draw exactly at cdf[-1]; it belongs to the last face with area.
    face_index = np.minimum(face_index, np.flatnonzero(areas > 0)[-1]).astype(np.int64)

    r1 = np.sqrt(rng.random(n))
    r2 = rng.random(n)
    barycentric = np.stack([1.0 - r1, r1 * (1.0 - r2), r1 * r2], axis=1)
    tri = vertices[faces[face_index]]
    points = np.einsum("nk,nkd->nd", barycentric, tri)
    return SurfaceSample(
        points=points.astype(np.float32),
        normals=normals[face_index].astype(np.float32),
        face_index=face_index,
        barycentric=barycentric.astype(np.float32),
    )


def sample_sdf_queries(
    vertices: np.ndarray,
    faces: np.ndarray,
    n_total: int,
    rng: np.random.Generator,
    config: SamplingConfig | None = None,
) -> np.ndarray:
    """DeepSDF's SDF query points: perturbed surface points plus uniform points.

    Parameters
    ----------
    vertices : (V, 3) float
        Vertex positions, unit-sphere frame.
    faces : (F, 3) int
        Triangle vertex indices.
    n_total : int
        Number of query points returned.
    rng : np.random.Generator
        Source of randomness.
    config : SamplingConfig, optional
        Split and variances; DeepSDF's defaults when omitted (``n_samples`` is not used here).

    Returns
    -------
    (n_total, 3) float32
        In this order: the ``variance`` group, the ``second_variance`` group (row ``i`` of
        both groups perturbs the same surface point, as DeepSDF pairs them), then the
        uniform group; counts from :meth:`SamplingConfig.split`.
    """
    config = config or SamplingConfig()
    if n_total < 0:
        raise ValueError(f"n_total must be >= 0, got {n_total}.")
    n_first, n_second, n_uniform = config.split(n_total)
    surface = sample_surface(vertices, faces, n_first, rng).points.astype(np.float64)
    first = surface + rng.normal(0.0, np.sqrt(config.variance), size=(n_first, 3))
    second = surface + rng.normal(0.0, np.sqrt(config.second_variance), size=(n_second, 3))
    half = config.bounding_cube_dim / 2
    uniform = rng.uniform(-half, half, size=(n_uniform, 3))
    return np.concatenate([first, second, uniform], axis=0).astype(np.float32)
