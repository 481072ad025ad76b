"""The ground truth as a grid sees it: the source mesh's training field meshed like a reconstruction.

Why: a floater count alone blames the decoder for what the grid does. A lamp's chain or a wire
frame thinner than one voxel falls apart into beads at 96³ even when the *exact* signed distance
is meshed, and real models carry genuinely separate small parts (a bulb inside its shade, glass
panes, knobs a hair off the door). On Sweet Home 3D's furniture the exact SDF meshed at 96³ has
floaters on about half the shapes. So evaluation meshes the source's exact SDF (winding-number
back end, :func:`core.data.sdf_backends.compute_sdf`) on the same grid with the same method as the
reconstruction, and reports the reconstruction's floaters *beyond* that reference: the pieces the
decoder breaks off, not the ones no SDF could keep at that resolution.

The reference field is the one the shape's training samples were drawn from: the ``auto`` field of
:mod:`core.data.open_mesh_sdf` (the surface dilated by the ``ε`` its sample file records, meshed and then
stepped ``ε`` inward like a model's meshes) or, for sample files made before it, the undilated
winding-number field.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.utils.errors import ExplorerError

log = logging.getLogger(__name__)

__all__ = [
    "SourceMesh",
    "load_source_mesh",
    "exact_sdf_mesh",
    "grid_reference_floaters",
    "grid_reference_measures",
    "field_mesh",
]


@dataclass
class SourceMesh:
    """A shape's source mesh moved into its sample file's unit-sphere frame."""

    vertices: np.ndarray
    """(V, 3) float, the frame of the sample file's surface points."""
    faces: np.ndarray
    """(F, 3) int64."""
    see_through: np.ndarray | None = None
    """(F,) bool faces of see-through parts (glass), or None."""
    surface_offset: float = 0.0
    """The ``ε`` of the field its samples were drawn with (0: the undilated winding field)."""

    def field(self):
        """The training field of this mesh (:func:`core.data.sdf_backends.sdf_field`), prepared once."""
        from core.data.open_mesh_sdf import FillSdfSettings
        from core.data.sdf_backends import sdf_field

        if self.surface_offset > 0:
            return sdf_field(
                self.vertices,
                self.faces,
                "auto",
                see_through=self.see_through,
                settings=FillSdfSettings(epsilon=self.surface_offset),
            )
        return sdf_field(self.vertices, self.faces, "winding")


def load_source_mesh(
    source: Path | None, offset: np.ndarray | None, scale: float | None, surface_offset: float = 0.0
) -> SourceMesh | None:
    """The source mesh in the frame the sample file recorded (its ``offset`` and ``scale``).

    ``surface_offset``: the ``ε`` the sample file's field recorded (:attr:`SourceMesh.surface_offset`).

    None when there is no source file, no recorded frame, or the mesh cannot be read (logged):
    callers then fall back to what the surface points alone can tell.
    """
    if source is None or not Path(source).is_file() or offset is None or scale is None:
        return None
    from core.data.mesh_io import SEE_THROUGH_BELOW, load_mesh
    from core.data.normalization import Normalization

    try:
        mesh = load_mesh(source)
        norm = Normalization(offset=np.asarray(offset, np.float64), scale=float(scale))
        see_through = mesh.face_opacity < SEE_THROUGH_BELOW
        # the loader's dtype kept (float32 stays float32), so the thin mask made from it is the one
        # evaluation always made
        return SourceMesh(
            norm.apply(mesh.vertices),
            np.asarray(mesh.faces, np.int64),
            see_through if see_through.any() else None,
            float(surface_offset),
        )
    except (ExplorerError, ValueError) as exc:
        log.warning("%s: source mesh unreadable for the ground-truth references (%s)", source, exc)
        return None


def exact_sdf_mesh(source: SourceMesh, resolution: int, method: str = "coarse_to_fine"):
    """The source's training field (:meth:`SourceMesh.field`) meshed by :func:`core.meshing.extract_mesh` on CPU.

    Same grid (``resolution`` over [-1, 1]³), evaluation ``method`` and inward step of the surface
    offset as a reconstruction, so the two meshes differ only in the field: the decoder's against the
    exact one. About 1-4 s a shape at 96³-128³ for meshes of a few thousand faces.
    """
    from core.data.open_mesh_sdf import mesh_step

    return field_mesh(source.field(), resolution, method, surface_offset=mesh_step(source.surface_offset))


def grid_reference_floaters(source: SourceMesh, resolution: int, method: str = "coarse_to_fine") -> int:
    """Floaters (:func:`core.evaluation.metrics.mesh_components`) of the exact SDF meshed on the grid."""
    from core.evaluation.metrics import mesh_components

    mesh = exact_sdf_mesh(source, resolution, method)
    return int(mesh_components(mesh.vertices, mesh.faces)["floaters"])


def grid_reference_measures(
    source: SourceMesh,
    gt: dict[str, np.ndarray],
    thin_mask: np.ndarray | None,
    resolution: int,
    method: str = "coarse_to_fine",
    n_points: int = 30_000,
    seed: int = 0,
) -> dict[str, float]:
    """The grid's ceiling: the exact SDF meshed on the grid, measured like a reconstruction.

    Returns ``floaters`` (as :func:`grid_reference_floaters`), ``fscore_1pct`` and
    ``thin_fscore_1pct`` (NaN when the mask is None or empty) of that mesh against ``gt`` (the
    sample file's surface points, :func:`core.evaluation.metrics.evaluate_reconstruction`). Why: a handle or a
    chair leg thinner than a voxel is lost by *any* field on that grid, so a reconstruction's thin
    F@1 is only readable next to what the exact field itself reaches there (the field the training
    samples were drawn from, same back end).
    """
    from core.evaluation.metrics import evaluate_reconstruction

    mesh = exact_sdf_mesh(source, resolution, method)
    metrics = evaluate_reconstruction(gt, mesh, thin_mask=thin_mask, n_points=n_points, rng=seed)
    return {
        "floaters": int(metrics["floaters"]),
        "fscore_1pct": float(metrics["fscore_1pct"]),
        "thin_fscore_1pct": float(metrics.get("thin_fscore_1pct", float("nan"))),
    }


def field_mesh(field, resolution: int, method: str = "coarse_to_fine", surface_offset: float = 0.0):
    """A prepared field (:func:`core.data.sdf_backends.sdf_field`) meshed like a reconstruction (CPU).

    Same grid (``resolution`` over [-1, 1]³) and evaluation ``method`` as the decoder's meshes
    (:func:`core.meshing.extract_mesh`), so the two differ only in the field; ``surface_offset``:
    the inward step a model's meshes take (its training ``ε``), 0 for the dilated surface itself.
    """
    import torch

    from core.meshing import extract_mesh

    def sdf_fn(points: torch.Tensor) -> torch.Tensor:
        query = points.detach().cpu().numpy().astype(np.float64)
        return torch.from_numpy(np.asarray(field(query).sdf, np.float32)).to(points.device)

    return extract_mesh(sdf_fn, resolution, method=method, device="cpu", surface_offset=surface_offset)
