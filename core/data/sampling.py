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

Thin-aware variants (issue 11; off by default, which keeps DeepSDF's scheme and its arrays
bit for bit): ``near_allocation="thickness"`` draws the near-surface points with a density
raised where the part is thin, ``thin_band_variance > 0`` adds a third, tighter band around
thin-part points, and ``balance_sign`` (applied in :func:`core.data.samples.sample_shape`, which
knows the signs) keeps as many samples inside as outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.utils.errors import ConfigError

__all__ = [
    "NEAR_ALLOCATIONS",
    "THICKNESS_FLOOR",
    "THICKNESS_MIX",
    "THIN_BAND_SHARE",
    "SamplingConfig",
    "SurfaceSample",
    "face_areas_and_normals",
    "sample_surface",
    "sample_sdf_queries",
]


NEAR_ALLOCATIONS = ("area", "thickness")
"""Values of :attr:`SamplingConfig.near_allocation`."""
THICKNESS_FLOOR = 0.01
"""Thickness (unit-sphere units) below which ``thickness`` allocation stops raising the density:
a sliver thinner than 0.5 % of the diameter does not take all the samples."""
THICKNESS_MIX = 0.5
"""Share of the ``thickness``-allocated near points drawn by thickness; the rest stay area-uniform,
so thick parts (seats, table tops) keep their coverage."""
THIN_BAND_SHARE = 0.2
"""Share of the near-surface points that goes to the third, thin-part band when it is on."""
_REFERENCE_POINTS = 4000
"""Surface points whose thickness is measured; every other point takes its nearest one's."""


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
    backend: str = "auto"
    """SDF back end (:mod:`core.data.sdf_backends`): ``auto`` (the surface dilated by ``ε``, so open sheets
    become slabs; winding sign for closed meshes, a flood fill for open ones), ``winding`` or ``mesh_to_sdf``."""
    near_allocation: str = "area"
    """Where the near-surface points sit. ``area`` (DeepSDF): around area-uniform surface points,
    so a chair leg with 2 % of the area gets 2 % of the samples and the decoder barely learns it.
    ``thickness``: surface points drawn with density ∝ area × w(x), where
    ``w = (1 - THICKNESS_MIX) + THICKNESS_MIX · u / mean(u)``, ``u = 1 / max(t(x), THICKNESS_FLOOR)²``
    and ``t`` the local thickness (:func:`core.data.thickness.local_thickness`, capped at 10 % of the
    bounding-box diagonal; the mean is over the area). Half the points follow the area; the other
    half give every t × t patch of surface the same count, so a rod gets samples per unit length
    ∝ 1 / its diameter instead of ∝ its diameter."""
    thin_band_variance: float = 0.0
    """Variance of a third, tighter band of near-surface points around thin-part surface points
    (:func:`core.data.thickness.thin_part_mask`: legs, rods, handles); 0 turns it off. It takes
    :data:`THIN_BAND_SHARE` of the near-surface points (the other two bands share the rest), so
    the decoder sees the zero level set of parts thinner than the usual bands' spread (e.g. 5e-5:
    std 0.007). A shape without thin parts gets the band around its thinnest surface instead."""
    balance_sign: bool = False
    """Keep as many samples inside as outside (thin parts hold few inside points). The total
    stays ``n_samples``: more queries of the same scheme are drawn until the rarer side has
    ``n_samples // 2``, then each side is subsampled at random (``n_samples - n_samples // 2``
    outside); if the rarer side is still short after a few rounds, both sides keep its count."""

    def __post_init__(self) -> None:
        # ConfigError like every settings dataclass (read through core.utils.config_io.from_dict).
        if not 0.0 <= self.near_fraction <= 1.0:
            raise ConfigError(f"SamplingConfig.near_fraction must be in [0, 1], got {self.near_fraction}.")
        if not (
            self.variance >= 0
            and self.second_variance >= 0
            and math.isfinite(self.variance)
            and math.isfinite(self.second_variance)
        ):
            raise ConfigError(
                f"SamplingConfig variances must be finite and >= 0, got {self.variance} and {self.second_variance}."
            )
        if self.n_samples < 0 or self.n_surface < 0:
            raise ConfigError(f"SamplingConfig counts must be >= 0, got {self.n_samples}, {self.n_surface}.")
        if not (self.bounding_cube_dim > 0 and math.isfinite(self.bounding_cube_dim)):
            raise ConfigError(f"SamplingConfig.bounding_cube_dim must be finite and > 0, got {self.bounding_cube_dim}.")
        from core.data.sdf_backends import BACKEND_NAMES

        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"SamplingConfig.backend must be one of {', '.join(BACKEND_NAMES)}, got {self.backend!r}.")
        if self.near_allocation not in NEAR_ALLOCATIONS:
            raise ConfigError(
                f"SamplingConfig.near_allocation must be 'area' or 'thickness' "
                f"(--near-allocation), got {self.near_allocation!r}."
            )
        if not (self.thin_band_variance >= 0 and math.isfinite(self.thin_band_variance)):
            raise ConfigError(
                f"SamplingConfig.thin_band_variance must be finite and >= 0 (0: no thin band; "
                f"--thin-band-variance), got {self.thin_band_variance}."
            )
        if not isinstance(self.balance_sign, bool):
            raise ConfigError(f"SamplingConfig.balance_sign must be true or false, got {self.balance_sign!r}.")

    @property
    def thin_aware(self) -> bool:
        """Whether the queries differ from DeepSDF's scheme (``balance_sign`` acts on signs only)."""
        return self.near_allocation != "area" or self.thin_band_variance > 0

    def bands(self, n_total: int) -> tuple[int, int, int, int]:
        """``(n_first, n_second, n_thin, n_uniform)`` for ``n_total`` queries.

        Without the thin band this is :meth:`split` with ``n_thin = 0``. With it, the thin band
        takes ``int(THIN_BAND_SHARE * n_near)`` of the ``n_near = int(near_fraction * n_total)``
        near points and the two paired bands split the rest; uniform points fill up to ``n_total``.
        """
        if self.thin_band_variance <= 0:
            n_first, n_second, n_uniform = self.split(n_total)
            return n_first, n_second, 0, n_uniform
        n_near = int(self.near_fraction * n_total)
        n_thin = int(THIN_BAND_SHARE * n_near)
        n_pairs = (n_near - n_thin) // 2
        return n_pairs, n_pairs, n_thin, n_total - 2 * n_pairs - n_thin

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


def _draw_in_triangles(
    tris: np.ndarray, weights: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points in triangles ``tris`` (T, 3, 3), a triangle with probability ∝ ``weights`` (T,) >= 0.

    Returns (index (n,) int64, barycentric (n, 3), points (n, 3) float64). Inverse-CDF draws (the same
    draws and triangles whatever numpy's choice() does), then a uniform point inside the triangle by the
    square-root warp of two uniforms (DeepSDF's ``SamplePointFromTriangle``); three ``rng.random(n)``
    calls in that order.
    """
    cdf = np.cumsum(weights)
    index = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    # Rounding can put a draw exactly at cdf[-1]; it belongs to the last triangle with weight.
    index = np.minimum(index, np.flatnonzero(weights > 0)[-1]).astype(np.int64)
    r1 = np.sqrt(rng.random(n))
    r2 = rng.random(n)
    barycentric = np.stack([1.0 - r1, r1 * (1.0 - r2), r1 * r2], axis=1)
    return index, barycentric, np.einsum("nk,nkd->nd", barycentric, tris[index])


def _triangle_areas(tris: np.ndarray) -> np.ndarray:
    """(T,) areas of triangles ``tris`` (T, 3, 3)."""
    return 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)


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

    face_index, barycentric, points = _draw_in_triangles(vertices[faces], areas, n, rng)
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
    cache: dict | None = None,
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
    cache : dict, optional
        Kept between calls on one mesh (a sign-balancing round draws more queries): the thin-aware
        schemes measure the surface's thickness once, the dearest part of drawing them.

    Returns
    -------
    (n_total, 3) float32
        In this order: the ``variance`` group, the ``second_variance`` group (row ``i`` of
        both groups perturbs the same surface point, as DeepSDF pairs them), then the
        uniform group; counts from :meth:`SamplingConfig.split`. With the thin-aware settings
        the surface points follow ``near_allocation`` and the thin band comes before the
        uniform group (counts from :meth:`SamplingConfig.bands`).
    """
    config = config or SamplingConfig()
    if n_total < 0:
        raise ValueError(f"n_total must be >= 0, got {n_total}.")
    if config.thin_aware:
        return _thin_aware_queries(vertices, faces, n_total, rng, config, {} if cache is None else cache)
    n_first, n_second, n_uniform = config.split(n_total)
    surface = sample_surface(vertices, faces, n_first, rng).points.astype(np.float64)
    first = surface + rng.normal(0.0, np.sqrt(config.variance), size=(n_first, 3))
    second = surface + rng.normal(0.0, np.sqrt(config.second_variance), size=(n_second, 3))
    half = config.bounding_cube_dim / 2
    uniform = rng.uniform(-half, half, size=(n_uniform, 3))
    return np.concatenate([first, second, uniform], axis=0).astype(np.float32)


class _ThicknessField:
    """Local thickness and thin-part flags of a mesh's surface, looked up at any surface point.

    Measured once on :data:`_REFERENCE_POINTS` area-uniform points (drawn from ``rng``); a point
    takes the values of its nearest reference point, so every acceptance below is constant on the
    surface part of each reference point's Voronoi cell (what :func:`_weighted_surface_points` uses).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator, need_thin: bool) -> None:
        from scipy.spatial import cKDTree

        from core.data.thickness import local_thickness, thin_part_mask

        reference = sample_surface(vertices, faces, _REFERENCE_POINTS, rng)
        points = reference.points.astype(np.float64)
        normals = reference.normals.astype(np.float64)
        self.points = points
        self.thickness = local_thickness(vertices, faces, points, normals, n_steps=32)
        inverse = 1.0 / np.maximum(self.thickness, THICKNESS_FLOOR) ** 2
        self.inverse = inverse / inverse.mean()  # area-average 1
        self.thin = thin_part_mask(points, normals, vertices, faces) if need_thin else None
        self.tree = cKDTree(points)
        self.proposals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        """:func:`_proposal_triangles` of each acceptance (``"allocation"``, ``"thin"``), made once."""

    def nearest(self, points: np.ndarray) -> np.ndarray:
        return self.tree.query(points)[1]

    def allocation_values(self) -> np.ndarray:
        """(R,) acceptance in [0, 1] per reference point for density ∝ area × ((1 - mix) + mix · u / mean(u))."""
        w = (1.0 - THICKNESS_MIX) + THICKNESS_MIX * self.inverse
        return w / w.max()

    def thin_values(self) -> np.ndarray:
        """(R,) acceptance per reference point: 1 on thin parts; without any, ∝ 1 / thickness² (the thinnest)."""
        if self.thin is not None and self.thin.any():
            return self.thin.astype(np.float64)
        return self.inverse / self.inverse.max()


_MAX_PROPOSAL_TRIANGLES = 400_000
"""Cap on the sub-triangles of :func:`_proposal_triangles` (memory and set-up time stay bounded)."""


def _acceptance_bounds(
    field: _ThicknessField, values: np.ndarray, tris: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, radius), each (T,), of ``values[nearest reference]`` over triangles ``tris`` (T, 3, 3).

    A point x of a triangle with centroid c and circumradius-like r (largest vertex distance)
    has |x - c| <= r, so its nearest reference point lies within d0 + 2r of c, d0 being c's own
    nearest-reference distance: min/max over that ball bound the acceptance on the whole triangle.
    """
    centres = tris.mean(axis=1)
    radius = np.linalg.norm(tris - centres[:, None, :], axis=2).max(axis=1)
    d0 = field.tree.query(centres)[0]
    balls = field.tree.query_ball_point(centres, d0 + 2.0 * radius + 1e-12)
    lower = np.array([values[b].min() for b in balls])
    upper = np.array([values[b].max() for b in balls])
    return lower, upper, radius


def _proposal_triangles(
    vertices: np.ndarray, faces: np.ndarray, field: _ThicknessField, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(tris (T, 3, 3), upper (T,)): a partition of the surface where ``values`` may be > 0, with bounds.

    Triangles whose acceptance is 0 throughout are dropped; the others are split in four
    (midpoints) while their acceptance still varies and they are wider than the reference
    points' spacing, so the bound is tight: a candidate is kept with probability >= the share of
    a triangle's area in cells with its top value, whatever share of the surface is thin.
    """
    tris = vertices[faces]
    areas = _triangle_areas(tris)
    tris = tris[areas > 0]
    spacing = math.sqrt(float(areas.sum()) / len(field.points))
    done_tris: list[np.ndarray] = []
    done_upper: list[np.ndarray] = []
    while len(tris):
        lower, upper, radius = _acceptance_bounds(field, values, tris)
        live = upper > 0
        split = live & (upper > lower) & (radius > 0.5 * spacing)
        n_done = sum(len(t) for t in done_tris)
        if n_done + len(tris) + 3 * int(split.sum()) > _MAX_PROPOSAL_TRIANGLES:
            split[:] = False
        keep = live & ~split
        done_tris.append(tris[keep])
        done_upper.append(upper[keep])
        parents = tris[split]
        a, b, c = parents[:, 0], parents[:, 1], parents[:, 2]
        ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
        tris = np.concatenate([np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return np.concatenate(done_tris), np.concatenate(done_upper)


def _weighted_surface_points(
    vertices: np.ndarray,
    faces: np.ndarray,
    n: int,
    rng: np.random.Generator,
    field: _ThicknessField,
    values: np.ndarray,
    stats: dict[str, int] | None = None,
    proposal: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(n, 3) float64 surface points with density ∝ area × ``values[nearest reference point]``.

    Exact rejection sampling against a proposal that already follows the acceptance
    (:func:`_proposal_triangles`): a sub-triangle is picked with probability ∝ area × its upper
    bound, a point uniformly inside it, and kept with probability acceptance / bound. So the
    density is exact, no point is duplicated, the result is a function of ``rng``'s state only,
    and the cost no longer grows as the accepted share of the surface shrinks (a thin band on a
    sliver of the surface used to draw millions of area-uniform candidates per kept point).
    ``stats``, when given, receives ``candidates`` and ``rounds`` (the work done); ``proposal`` is
    :func:`_proposal_triangles`' result for these ``values`` when the caller keeps it.
    """
    if n == 0:
        return np.zeros((0, 3))
    if proposal is None:
        proposal = _proposal_triangles(vertices, faces, field, values)
    tris, upper = proposal
    if not len(tris):
        raise ValueError("the sampling acceptance is 0 on the whole surface; there is nothing to draw from.")
    weight = _triangle_areas(tris) * upper
    kept: list[np.ndarray] = []
    have = rounds = candidates = 0
    rate = 1.0
    while have < n:
        batch = min(int((n - have) / rate * 1.2) + 256, 4_000_000)
        index, _, points = _draw_in_triangles(tris, weight, batch, rng)
        keep = rng.random(batch) * upper[index] < values[field.nearest(points)]
        rate = max(float(keep.mean()), 1e-3)
        kept.append(points[keep])
        have += int(keep.sum())
        rounds += 1
        candidates += batch
    if stats is not None:
        stats.update(candidates=candidates, rounds=rounds)
    return np.concatenate(kept)[:n]


def _proposal_of(
    field: _ThicknessField, kind: str, vertices: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_proposal_triangles` of the ``kind`` acceptance, made once per field."""
    if kind not in field.proposals:
        values = field.allocation_values() if kind == "allocation" else field.thin_values()
        field.proposals[kind] = _proposal_triangles(vertices, faces, field, values)
    return field.proposals[kind]


def _thin_aware_queries(
    vertices: np.ndarray, faces: np.ndarray, n_total: int, rng: np.random.Generator, config: SamplingConfig, cache: dict
) -> np.ndarray:
    """Queries of :func:`sample_sdf_queries` with ``near_allocation`` / the thin band applied."""
    vertices, faces = _check_mesh(vertices, faces)
    n_first, n_second, n_thin, n_uniform = config.bands(n_total)
    field = cache.get("thickness")
    if field is None:
        field = cache["thickness"] = _ThicknessField(vertices, faces, rng, need_thin=config.thin_band_variance > 0)
    if config.near_allocation == "thickness":
        surface = _weighted_surface_points(
            vertices,
            faces,
            n_first,
            rng,
            field,
            field.allocation_values(),
            proposal=_proposal_of(field, "allocation", vertices, faces),
        )
    else:
        surface = sample_surface(vertices, faces, n_first, rng).points.astype(np.float64)
    first = surface + rng.normal(0.0, np.sqrt(config.variance), size=(n_first, 3))
    second = surface + rng.normal(0.0, np.sqrt(config.second_variance), size=(n_second, 3))
    thin_surface = _weighted_surface_points(
        vertices,
        faces,
        n_thin,
        rng,
        field,
        field.thin_values(),
        proposal=_proposal_of(field, "thin", vertices, faces) if n_thin else None,
    )
    thin = thin_surface + rng.normal(0.0, np.sqrt(config.thin_band_variance), size=(n_thin, 3))
    half = config.bounding_cube_dim / 2
    uniform = rng.uniform(-half, half, size=(n_uniform, 3))
    return np.concatenate([first, second, thin, uniform], axis=0).astype(np.float32)
