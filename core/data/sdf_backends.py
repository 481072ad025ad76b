"""Signed distances from query points to a triangle mesh, by selectable back ends.

``compute_sdf(vertices, faces, points, backend=...)`` works on plain arrays in the
unit-sphere frame and returns an :class:`SdfResult` (negative inside); :func:`sdf_field`
prepares a mesh once for many queries and says which method it chose and why.

* ``"auto"`` (preprocessing's default): :mod:`core.data.open_mesh_sdf`: the exact distance to the
  surface dilated by ``ε``, so every open sheet becomes a closed slab ``2 ε`` thick. The sign is
  chosen per mesh: a closed mesh (every part watertight and outward oriented,
  :func:`core.data.open_mesh_sdf.mesh_closure`) keeps the exact winding-number sign
  (``dilated_winding``); an open one gets the winding sign inside its closed parts and a flood
  fill of the outside for the rest (``dilated_fill``); see-through parts (glass) let the fill through.
* ``"winding"``: the undilated field: exact unsigned distance and closest point from libigl's AABB
  tree; the sign from libigl's fast generalised winding number (inside where it exceeds
  0.5). Exact on closed meshes; on an open sheet the number is about 0.5 on both sides and
  the sign flips at random along it (stripes, holes, flakes).
* ``"mesh_to_sdf"``: the ``mesh-to-sdf`` package, i.e. DeepSDF's own approach: distances to
  a dense surface point cloud taken by 100 virtual scans (needs a headless OpenGL context,
  tried once through EGL), signs by a vote of the 11 nearest scan normals. Without OpenGL it
  falls back to points sampled on the mesh (``mesh_to_sdf_sample``) and warns. Its distances
  are point-cloud distances: near the surface they are off by up to about half the scan
  point spacing (a few 1e-3 in the unit sphere), further out they converge to the exact
  ones. Closest face and barycentric coordinates (for colour look-up) still come from libigl.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from core.data.mesh_queries import (
    DEFAULT_CHUNK_SIZE,
    as_mesh_arrays,
    as_points,
    closest_points,
    into_surface_dirs,
    unit_or,
    winding_numbers,
)
from core.data.open_mesh_sdf import FillSdfField

__all__ = [
    "BACKEND_NAMES",
    "SdfResult",
    "compute_sdf",
    "SdfField",
    "sdf_field",
    "winding_sdf",
    "mesh_to_sdf_sdf",
    "headless_gl_available",
]

BACKEND_NAMES: tuple[str, ...] = ("auto", "winding", "mesh_to_sdf")
"""Names accepted by :func:`compute_sdf` and :func:`sdf_field`."""


@dataclass
class SdfResult:
    """Signed distances and the surface point each query is closest to.

    Attributes
    ----------
    sdf : (N,) float32
        Signed distance, negative inside, in the frame of the input vertices.
    closest_face : (N,) int64
        Face holding the closest surface point.
    closest_barycentric : (N, 3) float32
        Barycentric coordinates of that point in that face (rows sum to 1).
    view_dirs : (N, 3) float32
        Unit viewing direction onto the closest point: the scan camera's ray where a scan
        saw it, else the negated face normal (pointing into the surface).
    backend : str
        Method actually used: ``dilated_winding``, ``dilated_fill`` (``auto``), ``winding``,
        ``mesh_to_sdf_scan`` or ``mesh_to_sdf_sample``.
    """

    sdf: np.ndarray
    closest_face: np.ndarray
    closest_barycentric: np.ndarray
    view_dirs: np.ndarray
    backend: str

    def __len__(self) -> int:
        return len(self.sdf)


def winding_sdf(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SdfResult:
    """Exact distance (libigl AABB) signed by the fast generalised winding number.

    Parameters
    ----------
    vertices : (V, 3) float
        Unit-sphere frame.
    faces : (F, 3) int
        Triangles, outward orientation (counter-clockwise seen from outside).
    points : (N, 3) float
        Queries.
    chunk_size : int
        Queries per libigl call; bounds memory.

    Returns
    -------
    SdfResult
        ``backend == "winding"``; ``view_dirs`` are negated closest-face normals.
    """
    vertices, faces = as_mesh_arrays(vertices, faces)
    points = as_points(points)
    closest = closest_points(vertices, faces, points, chunk_size=chunk_size)
    winding = winding_numbers(vertices, faces, points, chunk_size)
    # 0.5 splits inside (1) from outside (0) and is where a hole's "leak" is most ambiguous;
    # inverted meshes (winding -1 inside) come out all-outside, which preprocess reports.
    sign = np.where(winding > 0.5, -1.0, 1.0)
    return SdfResult(
        sdf=(sign * closest.distance).astype(np.float32),
        closest_face=closest.face,
        closest_barycentric=closest.barycentric.astype(np.float32),
        view_dirs=into_surface_dirs(vertices, faces, points, closest).astype(np.float32),
        backend="winding",
    )


# --- mesh_to_sdf -----------------------------------------------------------------------

_GL_PROBE: dict[str, Any] = {}  # "ok": bool, "reason": str; filled once per process


def _import_mesh_to_sdf() -> Any:
    """Import ``mesh_to_sdf``, asking PyOpenGL for EGL first if nobody chose a platform.

    PyOpenGL fixes its platform on first import, so the variable only helps when neither
    OpenGL nor pyrender is loaded yet; mesh_to_sdf itself refuses to load after pyrender.
    """
    if "OpenGL" not in sys.modules and not os.environ.get("PYOPENGL_PLATFORM"):
        os.environ["PYOPENGL_PLATFORM"] = "egl"
    import mesh_to_sdf

    return mesh_to_sdf


def headless_gl_available() -> bool:
    """Whether mesh_to_sdf's virtual scans can render here (tried once, then cached).

    The probe renders two tiny scans of an octahedron through the very code path the
    back end uses, so a context that opens but cannot render also counts as unavailable.
    """
    if "ok" not in _GL_PROBE:
        try:
            import trimesh

            m2s = _import_mesh_to_sdf()
            octahedron = trimesh.Trimesh(
                vertices=[[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                faces=[[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]],
                process=False,
            )
            cloud = m2s.get_surface_point_cloud(octahedron, "scan", scan_count=2, scan_resolution=16)
            if len(cloud.points) == 0:
                raise RuntimeError("the test scan rendered no surface points")
            _GL_PROBE.update(ok=True, reason="")
        except Exception as error:  # any failure means: no usable OpenGL here
            _GL_PROBE.update(ok=False, reason=f"{type(error).__name__}: {error}")
    return bool(_GL_PROBE["ok"])


def mesh_to_sdf_sdf(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    *,
    surface_point_method: str | None = None,
    sign_method: str = "normal",
    scan_count: int = 100,
    scan_resolution: int = 400,
    sample_point_count: int = 10_000_000,
    normal_sample_count: int = 11,
    scan_view_dirs: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    seed: int = 0,
) -> SdfResult:
    """Signed distances by the ``mesh-to-sdf`` package (DeepSDF's virtual-scan method).

    mesh_to_sdf does not rescale the mesh in this call (only ``sample_sdf_near_surface``
    does): its cameras sit at twice the largest vertex norm, looking at the origin, so
    distances are already in the caller's frame, and the mesh should be centred (as in the
    unit-sphere frame).

    Parameters
    ----------
    vertices : (V, 3) float
        Unit-sphere frame.
    faces : (F, 3) int
    points : (N, 3) float
    surface_point_method : {"scan", "sample"}, optional
        Default: ``"scan"`` when :func:`headless_gl_available`, else ``"sample"`` with a
        warning. Asking for ``"scan"`` without OpenGL also falls back with a warning.
    sign_method : {"normal", "depth"}
        Vote of the ``normal_sample_count`` nearest surface normals (DeepSDF), or the scans'
        depth buffers (scan only; falls back to "normal" with the sample method).
    scan_count, scan_resolution : int
        Virtual scans and their pixel resolution (DeepSDF: 100 at 400 x 400).
    sample_point_count : int
        Surface points drawn by the "sample" method.
    normal_sample_count : int
        Nearest neighbours voting on the sign.
    scan_view_dirs : bool
        With scans, view along the ray of the camera that saw the nearest scan point
        (one extra nearest-neighbour query); otherwise negated closest-face normals.
    chunk_size : int
        Queries per libigl closest-point call.
    seed : int
        Seeds the "sample" method's surface points, so the same call gives the same distances.

    Returns
    -------
    SdfResult
        ``backend`` is ``"mesh_to_sdf_scan"`` or ``"mesh_to_sdf_sample"``.
    """
    import trimesh

    vertices, faces = as_mesh_arrays(vertices, faces)
    points = as_points(points)
    if surface_point_method not in (None, "scan", "sample"):
        raise ValueError(f"surface_point_method must be 'scan' or 'sample', got {surface_point_method!r}.")
    if sign_method not in ("normal", "depth"):
        raise ValueError(f"sign_method must be 'normal' or 'depth', got {sign_method!r}.")

    method = surface_point_method or "scan"
    if method == "scan" and not headless_gl_available():
        warnings.warn(
            "mesh_to_sdf: no headless OpenGL context for virtual scans "
            f"({_GL_PROBE.get('reason', '')}); using surface points sampled on the mesh instead "
            "(install EGL / OSMesa, e.g. Debian's libegl1 and libgl1-mesa-dri, for scans).",
            RuntimeWarning,
            stacklevel=3,
        )
        method = "sample"
    if method == "sample" and sign_method == "depth":
        warnings.warn(
            "mesh_to_sdf: sign_method='depth' needs scans; using 'normal' with sampled points.",
            RuntimeWarning,
            stacklevel=3,
        )
        sign_method = "normal"

    m2s = _import_mesh_to_sdf()
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    if method == "sample":
        # mesh_to_sdf.surface_point_cloud.sample_from_mesh with a seed: it calls mesh.sample without
        # one, which draws from fresh OS entropy, so two runs on one mesh gave different distances.
        from mesh_to_sdf.surface_point_cloud import SurfacePointCloud

        surface, face_index = trimesh.sample.sample_surface(mesh, sample_point_count, seed=seed)
        cloud = SurfacePointCloud(
            mesh, points=surface, normals=mesh.face_normals[face_index] if sign_method == "normal" else None, scans=None
        )
    else:
        cloud = m2s.get_surface_point_cloud(
            mesh,
            surface_point_method=method,
            scan_count=scan_count,
            scan_resolution=scan_resolution,
            sample_point_count=sample_point_count,
            calculate_normals=sign_method == "normal",
        )
    # The same call mesh_to_sdf.mesh_to_sdf() makes, kept separate so the point cloud (and
    # its scans' cameras) can be reused for the viewing directions below.
    if sign_method == "normal":
        sdf = cloud.get_sdf_in_batches(points, use_depth_buffer=False, sample_count=normal_sample_count)
    else:
        sdf = cloud.get_sdf_in_batches(points, use_depth_buffer=True, sample_count=sample_point_count)

    closest = closest_points(vertices, faces, points, chunk_size=chunk_size)
    view_dirs = into_surface_dirs(vertices, faces, points, closest)
    if method == "scan" and scan_view_dirs and cloud.scans:
        nearest = cloud.kd_tree.query(points, k=1, return_distance=False)[:, 0]
        cameras = np.concatenate([np.broadcast_to(scan.camera_position, (len(scan.points), 3)) for scan in cloud.scans])
        view_dirs = unit_or(cloud.points[nearest] - cameras[nearest], view_dirs)

    return SdfResult(
        sdf=np.asarray(sdf, dtype=np.float32).reshape(-1),
        closest_face=closest.face,
        closest_barycentric=closest.barycentric.astype(np.float32),
        view_dirs=view_dirs.astype(np.float32),
        backend=f"mesh_to_sdf_{method}",
    )


@dataclass
class SdfField:
    """A mesh prepared for signed-distance queries by one method (:func:`sdf_field`).

    Attributes
    ----------
    query : callable
        ``(N, 3) points -> SdfResult``; may be called many times (trees and fills are built once).
    backend : str
        The method it uses: ``dilated_winding``, ``dilated_fill``, ``winding`` or ``mesh_to_sdf``.
    reason : str
        Why that method (what ``auto`` found, or that it was asked for), one line for the manifest.
    details : dict
        JSON-ready facts of the field: ``epsilon`` (the surface's dilation; 0 for the undilated
        back ends), and for ``auto`` the closed faces' share, see-through faces, the fill's grid.
    """

    query: Callable[[np.ndarray], SdfResult]
    backend: str
    reason: str
    details: dict[str, Any]

    def __call__(self, points: np.ndarray) -> SdfResult:
        return self.query(points)

    @property
    def epsilon(self) -> float:
        """How far the field's zero level set lies outside the mesh's surface."""
        return float(self.details.get("epsilon", 0.0))

    def record(self) -> dict[str, Any]:
        """What a sample file's stats keep of the field: ``{"method", "reason", **details}``."""
        return {"method": self.backend, "reason": self.reason, **self.details}


def _dilated_field(
    vertices: np.ndarray, faces: np.ndarray, see_through: np.ndarray | None, settings: Any = None
) -> SdfField:
    field = FillSdfField(vertices, faces, see_through=see_through, settings=settings)
    method = "dilated_winding" if field.closure.closed else "dilated_fill"

    def query(points: np.ndarray) -> SdfResult:
        points = as_points(points)
        closest = field.closest(points)
        return SdfResult(
            sdf=field.signed_distance(points, closest).astype(np.float32),
            closest_face=closest.face,
            closest_barycentric=closest.barycentric.astype(np.float32),
            view_dirs=into_surface_dirs(field.vertices, field.faces, points, closest).astype(np.float32),
            backend=method,
        )

    details: dict[str, Any] = {
        "epsilon": field.settings.epsilon,
        "closed_faces_share": round(float(field.closure.closed_faces.mean()), 5),
    }
    if not field.closure.closed:
        details.update(
            fill_resolution=field.settings.resolution,
            see_through_faces=field.n_see_through,
            enclosed_share=round(field.enclosed_share, 5),
        )
    return SdfField(query, method, field.closure.reason, details)


def sdf_field(
    vertices: np.ndarray,
    faces: np.ndarray,
    backend: str = "winding",
    see_through: np.ndarray | None = None,
    **options: Any,
) -> SdfField:
    """Prepare ``(vertices, faces)`` for signed-distance queries by ``backend`` (module docstring).

    Parameters
    ----------
    vertices : (V, 3) float
        Unit-sphere frame.
    faces : (F, 3) int
    backend : {"auto", "winding", "mesh_to_sdf"}
    see_through : (F,) bool, optional
        Faces of see-through parts (glass): ``auto``'s fill passes through them.
    **options
        ``auto``: ``settings`` (:class:`core.data.open_mesh_sdf.FillSdfSettings`); ``winding`` and
        ``mesh_to_sdf``: keyword arguments of :func:`winding_sdf` / :func:`mesh_to_sdf_sdf`.

    Raises
    ------
    ValueError
        Unknown back end (the message lists the names) or malformed arrays.
    """
    if backend not in BACKEND_NAMES:
        raise ValueError(f"unknown SDF back end {backend!r}; choose one of: {', '.join(BACKEND_NAMES)}.")
    vertices, faces = as_mesh_arrays(vertices, faces)
    if backend == "auto":
        return _dilated_field(vertices, faces, see_through, options.get("settings"))
    function = winding_sdf if backend == "winding" else mesh_to_sdf_sdf
    return SdfField(lambda points: function(vertices, faces, points, **options), backend, "asked for", {})


def compute_sdf(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    backend: str = "winding",
    **options: Any,
) -> SdfResult:
    """Signed distance from ``points`` to the mesh ``(vertices, faces)``, negative inside.

    One-off queries; :func:`sdf_field` prepares a mesh once for many (same arguments).

    Returns
    -------
    SdfResult

    Raises
    ------
    ValueError
        Unknown back end (the message lists the names) or malformed arrays.
    """
    return sdf_field(vertices, faces, backend, **options)(points)
