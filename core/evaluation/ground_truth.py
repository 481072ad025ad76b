"""What a reconstruction is measured against: a shape's surface samples, its source mesh, or a whole mesh file.

A split's shape: ``surface_points`` / ``surface_normals`` / ``surface_rgb`` of its sample file
(:func:`load_ground_truth`) and its source mesh in that file's frame (:func:`shape_source_mesh`, for
thin-part masks and the grid reference). A mesh given to ``reconstruct``: points sampled on it in its
unit-sphere frame (:func:`mesh_ground_truth`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.evaluation.grid_reference import SourceMesh, load_source_mesh
from core.utils.errors import DataSetError, ExplorerError

if TYPE_CHECKING:
    from core.data.mesh_io import LoadedMesh
    from core.evaluation.held_out_split import EvalShape

__all__ = ["load_ground_truth", "shape_source_mesh", "load_mesh_in_frame", "mesh_ground_truth"]


def load_ground_truth(path: Path) -> dict[str, np.ndarray]:
    """``surface_points``, ``surface_normals`` (, ``surface_rgb``, ``offset``, ``scale``) of a sample file.

    Raises :class:`DataSetError` naming the file for a missing, damaged or incomplete one
    (read by :func:`core.data.samples.read_samples`, the one reader of the format).
    """
    from core.data.samples import read_samples

    samples = read_samples(path)
    if samples.surface_points is None or samples.surface_normals is None:
        raise DataSetError(f"{path}: no surface_points / surface_normals; re-run preprocessing for this shape.")
    gt = {"surface_points": samples.surface_points, "surface_normals": samples.surface_normals}
    if samples.surface_rgb is not None:
        gt["surface_rgb"] = samples.surface_rgb
    if samples.normalization is not None:
        gt["offset"] = samples.normalization.offset
        gt["scale"] = np.asarray(samples.normalization.scale)
    gt["surface_offset"] = np.asarray(samples.surface_offset)
    return gt


def shape_source_mesh(shape: EvalShape, gt: dict[str, np.ndarray]) -> SourceMesh | None:
    """The shape's source mesh in its sample file's frame, or None (no file, no frame, unreadable)."""
    scale = gt.get("scale")
    return load_source_mesh(
        shape.source, gt.get("offset"), None if scale is None else float(scale), float(gt.get("surface_offset", 0.0))
    )


def load_mesh_in_frame(shape: EvalShape, gt: dict[str, np.ndarray]) -> LoadedMesh:
    """The shape's source mesh, colours and all, moved into its sample file's frame (where the model works),
    for what needs more than geometry (a partial scan carries the mesh's colours).

    Raises DataSetError when the source is missing or unreadable, or the sample file recorded no frame.
    Beside :func:`core.evaluation.grid_reference.load_source_mesh`, not through it: that one keeps the loader's
    float32 vertices (the thin masks evaluation always made) and drops the colours a scan needs.
    """
    from core.data.mesh_io import load_mesh
    from core.data.normalization import Normalization

    offset, scale = gt.get("offset"), gt.get("scale")
    if shape.source is None or not Path(shape.source).is_file() or offset is None or scale is None:
        raise DataSetError(
            f"{shape.class_name}/{shape.id}: a partial scan needs the source mesh and the sample file's frame; "
            f"source {shape.source}, frame {'recorded' if offset is not None else 'not recorded'}. Preprocess the "
            "data set again beside its meshes."
        )
    try:
        mesh = load_mesh(shape.source)
    except ExplorerError as exc:
        raise DataSetError(f"{shape.source}: cannot scan it: {exc}") from exc
    norm = Normalization(offset=np.asarray(offset, np.float64), scale=float(scale))
    return mesh.transformed(norm.apply(mesh.vertices))


def mesh_ground_truth(path: str | Path, n_points: int = 30_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Ground truth of a whole mesh file in its unit-sphere frame (the frame a fit to it lives in).

    Returns ``surface_points`` (S, 3), ``surface_normals`` (S, 3), ``surface_rgb`` (S, 3) and
    ``thin_mask`` (S,) bool (:func:`core.data.thickness.thin_part_mask` on the mesh), for
    :func:`core.evaluation.metrics.evaluate_reconstruction`. Used by ``reconstruct`` to measure a fit
    against its mesh input, also when the fit saw only a single-view scan of it.

    Raises
    ------
    MeshLoadError, ValueError
        The mesh cannot be loaded or has no area.
    """
    from core.data.mesh_io import load_mesh
    from core.data.normalization import normalize_mesh
    from core.data.sampling import sample_surface
    from core.data.thickness import thin_part_mask

    mesh, _ = normalize_mesh(load_mesh(path))
    sample = sample_surface(mesh.vertices, mesh.faces, int(n_points), np.random.default_rng(seed))
    gt = {
        "surface_points": sample.points,
        "surface_normals": sample.normals,
        "surface_rgb": np.asarray(mesh.colours_at(sample.face_index, sample.barycentric), np.float32),
    }
    gt["thin_mask"] = thin_part_mask(sample.points, sample.normals, mesh.vertices, mesh.faces)
    return gt
