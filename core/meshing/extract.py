"""SDF callable -> triangle mesh with normals and vertex colours, in the unit-sphere frame."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch

from core.meshing.grid import (
    DEFAULT_BAND_FACTOR,
    GridResult,
    SdfFn,
    default_max_batch,
    evaluate_coarse_to_fine,
    evaluate_dense,
    resolve_device,
)
from core.meshing.marching_cubes import marching_cubes_skimage, marching_cubes_torch

__all__ = ["MeshArrays", "ColourFn", "SurfaceField", "extract_mesh", "mesh_from_grid", "vertex_normals_from_faces"]

ColourFn = Callable[[torch.Tensor], torch.Tensor]
"""Tensor (N, 3) float32 -> Tensor (N, 3) RGB in [0, 1]."""


@runtime_checkable
class SurfaceField(Protocol):
    """A field that meshes faster than a pair of closures (:class:`core.model.decoder_field.DecoderField`).

    ``sdf`` evaluates the grid; ``surface`` gives the normals' gradients and the colours at the
    vertices from one pass (a closure pair runs the network twice there: once with autograd for the
    normals, once more for the colours).
    """

    surface_offset: float

    @property
    def has_colour(self) -> bool:
        """Whether :meth:`colour` and the colours of :meth:`surface` are available."""

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N,) signed distances."""

    def surface(self, points: torch.Tensor, with_colour: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, 3) -> (SDF gradients (N, 3), RGB (N, 3) or None)."""

    def colour(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> RGB (N, 3) (only called when the field has colour)."""


@dataclass
class MeshArrays:
    """A triangle mesh as plain arrays, unit-sphere frame."""

    vertices: np.ndarray
    """(V, 3) float32."""
    faces: np.ndarray
    """(F, 3) int64, counter-clockwise seen from outside (normals point outward)."""
    normals: np.ndarray
    """(V, 3) float32, unit: the SDF gradient at the vertices (mesh normals as a fall-back)."""
    colours: np.ndarray | None = None
    """(V, 3) float32 RGB in [0, 1], or None."""
    stats: dict = field(default_factory=dict)
    """Timings per stage (``seconds_*``), evaluation counts, ``empty`` and its ``reason``."""

    @property
    def is_empty(self) -> bool:
        return self.faces.shape[0] == 0

    @classmethod
    def empty(cls, with_colours: bool = False, **stats) -> "MeshArrays":
        z = np.zeros((0, 3), np.float32)
        return cls(z, np.zeros((0, 3), np.int64), z.copy(), z.copy() if with_colours else None, stats)


def vertex_normals_from_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a mesh.

    Coincident vertices (marching cubes emits them where the field is exactly zero at a grid
    point, with zero-area triangles around them) share one normal; zero only when isolated.
    """
    v = vertices.astype(np.float64)
    _, weld = np.unique(v, axis=0, return_inverse=True)
    weld = weld.reshape(-1)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n = np.zeros((int(weld.max()) + 1 if len(weld) else 0, 3))
    for k in range(3):
        np.add.at(n, weld[faces[:, k]], fn)
    n = n[weld]
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return (n / np.where(length > 0, length, 1.0)).astype(np.float32)


def grid_gradients(values: torch.Tensor, vertices_index: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """(V, 3) SDF gradients at marching-cubes vertices by finite differences of the grid itself.

    Each vertex lies on a grid edge ``p0 -> p1`` at fraction ``t``; the gradient is interpolated
    between the two end points: along the edge ``(v1 - v0) / h``, across it central differences
    (one-sided at the border). Every value read is a corner of a cell the surface crosses, so the
    coarse-to-fine grid holds it exactly (:mod:`core.meshing.grid`). scikit-image's marching cubes
    takes its normals the same way; it costs no network pass, where autograd through a big decoder
    costs about three (forward and backward at every vertex).
    """
    R = torch.tensor(values.shape, device=values.device)
    base = vertices_index.floor().long()
    base = torch.minimum(base.clamp_min(0), R - 2)
    frac = vertices_index - base
    axis = frac.argmax(1)
    t = frac.gather(1, axis[:, None])[:, 0].clamp(0.0, 1.0)
    step = torch.nn.functional.one_hot(axis, 3)
    p0, p1 = base, base + step

    def at(p: torch.Tensor) -> torch.Tensor:
        return values[p[:, 0], p[:, 1], p[:, 2]]

    v0, v1 = at(p0), at(p1)
    grads = []
    for p in (p0, p1):
        g = torch.empty(p.shape, dtype=values.dtype, device=values.device)
        for b in range(3):
            e = torch.zeros(3, dtype=torch.long, device=values.device)
            e[b] = 1
            up = torch.minimum(p + e, R - 1)
            down = (p - e).clamp_min(0)
            span = (up[:, b] - down[:, b]).to(values.dtype).clamp_min(1)
            g[:, b] = (at(up) - at(down)) / span
        along = axis[:, None] == torch.arange(3, device=values.device)
        g = torch.where(along, (v1 - v0)[:, None], g)
        grads.append(g)
    return ((1 - t)[:, None] * grads[0] + t[:, None] * grads[1]) / voxel_size


def _sdf_gradients(sdf_fn: SdfFn, points: torch.Tensor, max_batch: int) -> torch.Tensor | None:
    """(N, 3) d sdf / d x by autograd through ``sdf_fn``; None when it is not differentiable."""
    out = torch.empty_like(points)
    try:
        with torch.enable_grad():
            for start in range(0, points.shape[0], max_batch):
                p = points[start : start + max_batch].detach().clone().requires_grad_(True)
                s = sdf_fn(p)
                if not s.requires_grad:
                    return None
                (g,) = torch.autograd.grad(s.sum(), p)
                out[start : start + p.shape[0]] = g
    except RuntimeError:
        return None
    return out


def _field_surface(
    field: SurfaceField, points: torch.Tensor, max_batch: int, with_colour: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients and (``with_colour``) colours of a :class:`SurfaceField` at (N, 3) points, in batches."""
    grads: list[torch.Tensor] = []
    rgbs: list[torch.Tensor] = []
    for start in range(0, points.shape[0], max_batch):
        g, rgb = field.surface(points[start : start + max_batch], with_colour)
        grads.append(g)
        if rgb is not None:  # a field gives colours for every batch or for none
            rgbs.append(rgb)
    return torch.cat(grads), (torch.cat(rgbs) if rgbs else None)


def _field_colours(field: SurfaceField, points: torch.Tensor, max_batch: int) -> torch.Tensor:
    chunks = range(0, points.shape[0], max_batch)
    return torch.cat([field.colour(points[start : start + max_batch]) for start in chunks])


def _marching_cubes(values: torch.Tensor, level: float, mc_backend: str) -> tuple[torch.Tensor, np.ndarray, str]:
    """Vertices in grid-index units (on the grid's device), faces (numpy) and the backend that ran."""
    backend = ("torch" if values.is_cuda else "skimage") if mc_backend == "auto" else mc_backend
    if backend == "torch":
        verts_index, faces_t = marching_cubes_torch(values, level)
        return verts_index, faces_t.cpu().numpy(), backend
    if backend == "skimage":
        verts_np, faces = marching_cubes_skimage(values, level)
        return torch.as_tensor(verts_np, device=values.device), faces, backend
    raise ValueError(f"unknown marching cubes backend {mc_backend!r}: use 'auto', 'skimage' or 'torch'")


def _unit_normals(grads: torch.Tensor, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Field gradients as unit normals; where the field is flat, the mesh's own normal (its scatter-add is the
    dear part, so only there)."""
    g = grads.cpu().numpy().astype(np.float64)
    length = np.linalg.norm(g, axis=1, keepdims=True)
    ok = length[:, 0] > 1e-12
    normals = (g / np.where(ok[:, None], length, 1.0)).astype(np.float32)
    if not ok.all():
        normals[~ok] = vertex_normals_from_faces(vertices, faces)[~ok]
    return normals


def _closure_colours(colour_fn: ColourFn, verts_t: torch.Tensor, max_batch: int) -> np.ndarray:
    """(V, 3) colours in [0, 1] from a colour closure, in batches of ``max_batch`` vertices."""
    rgb = torch.empty((verts_t.shape[0], 3), dtype=torch.float32, device=verts_t.device)
    with torch.no_grad():
        for start in range(0, verts_t.shape[0], max_batch):
            chunk = verts_t[start : start + max_batch].float()
            rgb[start : start + chunk.shape[0]] = colour_fn(chunk).reshape(-1, 3).float()
    return rgb.clamp(0.0, 1.0).cpu().numpy()


def mesh_from_grid(
    grid: GridResult,
    sdf_fn: SdfFn | SurfaceField | None = None,
    colour_fn: ColourFn | None = None,
    mc_backend: str = "auto",
    max_batch: int | None = None,
    level: float = 0.0,
    surface_offset: float = 0.0,
    normals: str = "auto",
) -> MeshArrays:
    """Marching cubes on a sampled grid, then normals and colours at the vertices.

    ``mc_backend``: ``"auto"`` (torch when the grid is on CUDA, scikit-image otherwise),
    ``"torch"`` or ``"skimage"``. Normals come from autograd through ``sdf_fn`` when given and
    differentiable, else from the mesh; a :class:`SurfaceField` gives normals and colours in one pass
    (``colour_fn`` must then be None). ``surface_offset`` > 0 steps every vertex that far inward
    along its normal (see :func:`extract_mesh`); colours are taken there. ``normals``: ``gradient``
    (autograd through the field), ``grid`` (:func:`grid_gradients`, no network pass) or ``auto``
    (``grid`` for a :class:`SurfaceField`, ``gradient`` for closures).
    """
    if normals not in ("auto", "gradient", "grid"):
        raise ValueError(f"unknown normals {normals!r}: use 'auto', 'gradient' or 'grid'")
    field: SurfaceField | None = None
    closure: SdfFn | None = None
    if isinstance(sdf_fn, SurfaceField):
        field = sdf_fn
    else:
        closure = sdf_fn
    if field is not None and colour_fn is not None:
        raise ValueError("a SurfaceField brings its own colours: pass colour_fn=None")
    stats = dict(grid.stats)
    values = grid.values
    device = values.device
    max_batch = max_batch or default_max_batch(device)
    with_colours = colour_fn is not None or (field is not None and field.has_colour)
    if not bool(((values < level).any() & (values >= level).any()).item()):
        sign = "negative" if bool((values < level).all()) else "positive"
        reason = f"no zero crossing: the SDF is {sign} everywhere on the grid"
        return MeshArrays.empty(with_colours, **stats, empty=True, reason=reason)

    t0 = time.perf_counter()
    verts_index, faces, backend = _marching_cubes(values, level, mc_backend)
    verts_t = verts_index * grid.voxel_size + grid.origin
    stats["seconds_marching_cubes"] = time.perf_counter() - t0
    stats["marching_cubes"] = backend
    if faces.shape[0] == 0:
        return MeshArrays.empty(with_colours, **stats, empty=True, reason="marching cubes produced no faces")
    vertices = verts_t.cpu().numpy().astype(np.float32)

    t0 = time.perf_counter()
    field_rgb = None
    grads: torch.Tensor | None
    if normals == "grid" or (normals == "auto" and field is not None):
        grads = grid_gradients(values.float(), verts_index.float(), grid.voxel_size)
        stats["normals"] = "grid"
    elif field is not None:
        # Colours from the same pass unless the vertices move afterwards (then at their new place).
        grads, field_rgb = _field_surface(
            field, verts_t.float(), max_batch, with_colour=with_colours and surface_offset <= 0
        )
    else:
        grads = _sdf_gradients(closure, verts_t.float(), max_batch) if closure is not None else None
    if grads is None:
        vertex_normals, stats["normals"] = vertex_normals_from_faces(vertices, faces), "mesh"
    else:
        vertex_normals = _unit_normals(grads, vertices, faces)
        stats.setdefault("normals", "sdf_gradient")
    stats["seconds_normals"] = time.perf_counter() - t0
    if surface_offset > 0:
        vertices = (vertices - surface_offset * vertex_normals).astype(np.float32)
        verts_t = torch.as_tensor(vertices, device=device)
        stats["surface_offset"] = surface_offset
    if field is not None and with_colours and field_rgb is None:  # at the vertices' final place
        t0 = time.perf_counter()
        field_rgb = _field_colours(field, verts_t.float(), max_batch)
        stats["seconds_colours"] = time.perf_counter() - t0

    colours = None
    if field_rgb is not None:
        colours = field_rgb.clamp(0.0, 1.0).cpu().numpy()
    elif colour_fn is not None:
        t0 = time.perf_counter()
        colours = _closure_colours(colour_fn, verts_t, max_batch)
        stats["seconds_colours"] = time.perf_counter() - t0
    stats.update(empty=False, n_vertices=int(vertices.shape[0]), n_faces=int(faces.shape[0]))
    return MeshArrays(vertices, faces.astype(np.int64), vertex_normals, colours, stats)


def extract_mesh(
    sdf_fn: SdfFn | SurfaceField,
    resolution: int = 128,
    colour_fn: ColourFn | None = None,
    method: str = "coarse_to_fine",
    device: str | torch.device | None = None,
    *,
    mc_backend: str = "auto",
    max_batch: int | None = None,
    coarse_resolution: int = 17,
    band_factor: float = DEFAULT_BAND_FACTOR,
    level: float = 0.0,
    surface_offset: float | None = None,
    normals: str = "auto",
    certify_signs: bool = True,
) -> MeshArrays:
    """Mesh the zero level set of ``sdf_fn`` over [-1, 1]^3.

    Parameters
    ----------
    sdf_fn : Tensor (N, 3) float32 on ``device`` -> Tensor (N,), negative inside; or a
        :class:`SurfaceField` (e.g. ``TrainedModel.mesh_field(...)``), which evaluates the grid with its
        ``sdf`` and the normals and colours with one ``surface`` pass (``colour_fn`` None).
    resolution : samples per side of the grid (DeepSDF's N; voxel size 2 / (N - 1)).
    colour_fn : Tensor (N, 3) -> Tensor (N, 3) in [0, 1], evaluated at the vertices; optional.
    method : ``"coarse_to_fine"`` (narrow band, see :mod:`core.meshing.grid`) or ``"dense"``.
    device : ``None`` picks CUDA when present, else CPU.
    mc_backend : ``"auto"`` (torch on CUDA, scikit-image on CPU), ``"torch"``, ``"skimage"``.
    max_batch : points per ``sdf_fn`` / ``colour_fn`` call.
    coarse_resolution, band_factor : see :func:`core.meshing.grid.evaluate_coarse_to_fine`.
    level : mesh this level set instead of zero (evaluation's dilation study).
    surface_offset : step every vertex this far inward along its normal after marching cubes. A model
        trained on dilated fields (:mod:`core.data.open_mesh_sdf`: every open sheet a slab ``2 ε`` thick)
        draws each surface ``ε`` outside the true one; this puts it back (a slab's two faces onto
        its sheet, a leg to its true radius). None: the ``surface_offset`` attribute that
        :meth:`core.model.trained_model.TrainedModel.sdf_fn` gives its closures, else 0.
    normals : ``auto`` (finite differences of the grid for a :class:`SurfaceField`, the field's
        autograd gradient for closures), ``grid`` or ``gradient``; see :func:`mesh_from_grid`.
    certify_signs : coarse-to-fine only: skip the last level's points whose sign is certain (the same
        mesh, fewer evaluations; False is the reference, see :mod:`core.meshing.grid`).

    Returns
    -------
    MeshArrays; empty (``stats["empty"] is True`` with a ``reason``) when there is no surface.
    ``stats`` holds ``seconds_grid``, ``seconds_marching_cubes``, ``seconds_normals``,
    ``seconds_colours``, ``seconds_total``, ``n_evaluations``, ``n_dense``, ``ratio``.
    """
    t_start = time.perf_counter()
    device = resolve_device(device)
    max_batch = max_batch or default_max_batch(device)
    grid_fn = sdf_fn.sdf if isinstance(sdf_fn, SurfaceField) else sdf_fn
    if method == "coarse_to_fine":
        grid = evaluate_coarse_to_fine(
            grid_fn, resolution, device, max_batch, coarse_resolution, band_factor, certify_signs
        )
    elif method == "dense":
        grid = evaluate_dense(grid_fn, resolution, device, max_batch)
    else:
        raise ValueError(f"unknown grid method {method!r}: use 'coarse_to_fine' or 'dense'")
    grid.stats["seconds_grid"] = grid.stats.pop("seconds")
    if surface_offset is None:
        surface_offset = float(getattr(sdf_fn, "surface_offset", 0.0) or 0.0)
    mesh = mesh_from_grid(grid, sdf_fn, colour_fn, mc_backend, max_batch, level, surface_offset, normals)
    mesh.stats["resolution"] = resolution
    mesh.stats["seconds_total"] = time.perf_counter() - t_start
    return mesh
