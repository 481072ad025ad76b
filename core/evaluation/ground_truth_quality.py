"""How good a training target is: a shape's signed-distance field meshed on a grid, against its source mesh.

Why: a decoder learns the field its samples were drawn from, so a field that tears a shade into
flakes or drops a shelf teaches exactly that, and no training recipe can do better. This module
measures the target itself, the way a reconstruction is measured, but against the source mesh's
own parts:

- ``torn_pieces``: pieces of the meshed field beyond the source's own parts. Each piece is given to
  the source part most of its vertices lie nearest to; a part that comes out in ``k`` pieces adds
  ``k − 1`` (parts merging is fine: touching boards become one slab). The wall of a pocket of air
  sealed inside a solid (the inside of a cabinet behind glass doors; normals pointing into the
  piece) is a true surface of the field that no view from outside reaches: it is counted apart,
  ``cavity_pieces``, not as a tear.
- ``missing_parts``: source parts holding at least :data:`MISSING_PART_AREA` of the area of which less
  than half lies within ``τ`` of the meshed field (``τ`` = the field's offset ``ε`` plus a voxel).
- ``chamfer_l1``: mean of the two one-sided mean distances between the field's surface and the
  source's. An open sheet's slab lies ``ε`` off the sheet on both sides, so ``chamfer_l1 ≈ ε`` is what
  the slabs explain; ``chamfer_beyond_offset = chamfer_l1 − ε`` is the rest (grid, torn or missing parts).
- ``fscore_1pct``: F-score at 1 % of the bounding-box diagonal against source surface points
  (:func:`core.evaluation.metrics.fscore`), the ceiling a reconstruction on that grid can reach;
  ``fscore_1pct_deflated`` and ``chamfer_l1_deflated`` the same after every vertex of the meshed field
  stepped inward along its normal as a model's meshes are (:func:`core.data.open_mesh_sdf.mesh_step`: 0.9 ε),
  which puts a slab's faces back beside its sheet.

Source points buried inside other parts (a sofa's frame inside its cushions: the field is negative
on both sides of them) can appear in no field's surface; a part counts as missing only by its
exposed points, and a part with fewer than half its points exposed is not counted at all.

A source part is a welded, vertex-connected component of the source mesh.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from core.evaluation.grid_reference import field_mesh

__all__ = ["MISSING_PART_AREA", "GroundTruthQuality", "source_parts", "ground_truth_quality"]

MISSING_PART_AREA = 0.01
"""Source parts with at least this share of the surface area count when missing."""
_POINTS = 30_000
"""Surface points drawn on the source (area-weighted) and on the meshed field."""


@dataclass
class GroundTruthQuality:
    """One shape's field on one grid, against its source mesh (module docstring)."""

    resolution: int
    method: str
    """The field: ``udf_fill``, ``winding``, ..."""
    pieces: int
    source_parts: int
    torn_pieces: int
    missing_parts: int
    chamfer_l1: float
    chamfer_beyond_offset: float
    fscore_1pct: float
    chamfer_l1_deflated: float
    fscore_1pct_deflated: float
    seconds: float
    cavity_pieces: int = 0
    """Pieces walling air sealed inside a solid (negative signed volume); not counted as torn."""

    @property
    def has_torn_pieces(self) -> bool:
        return self.torn_pieces > 0

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def source_parts(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(part of each face (F,), area share of each part (P,)): welded vertex-connected components."""
    from core.evaluation.metrics import face_components

    labels = face_components(vertices, faces)
    if labels is None:
        raise ValueError("the source mesh has no faces")
    return labels


def ground_truth_quality(
    vertices: np.ndarray, faces: np.ndarray, field, resolution: int, method: str = "coarse_to_fine", seed: int = 0
) -> GroundTruthQuality:
    """Measure ``field`` (prepared for this mesh) meshed at ``resolution`` against the mesh itself.

    Parameters
    ----------
    vertices, faces : the source mesh in the field's (unit-sphere) frame.
    field : :class:`core.data.sdf_backends.SdfField` of that mesh.
    resolution : grid samples per side over [-1, 1]³.
    """
    from core.data.sampling import sample_surface
    from core.evaluation.metrics import _nn, face_components, fscore, object_size, piece_is_cavity
    from core.meshing.grid import grid_spacing

    start = time.perf_counter()
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    part_of_face, part_share = source_parts(vertices, faces)
    rng = np.random.default_rng(seed)
    src = sample_surface(vertices, faces, _POINTS, rng)
    src_part = part_of_face[src.face_index]
    epsilon = float(field.details.get("epsilon", 0.0))
    tolerance = epsilon + grid_spacing(resolution)
    mesh = field_mesh(field, resolution, method)
    if mesh.is_empty:
        inf = float("inf")
        return GroundTruthQuality(
            resolution,
            field.backend,
            0,
            len(part_share),
            0,
            int((part_share >= MISSING_PART_AREA).sum()),
            inf,
            inf,
            0.0,
            inf,
            0.0,
            time.perf_counter() - start,
        )
    labels = face_components(mesh.vertices, mesh.faces)
    assert labels is not None  # the mesh is not empty (above)
    piece_of_face, piece_share = labels
    # each piece goes to the source part most of its vertices are nearest to
    piece_of_vertex = np.full(len(mesh.vertices), -1)
    piece_of_vertex[mesh.faces.reshape(-1)] = np.repeat(piece_of_face, 3)
    used = piece_of_vertex >= 0
    _, nearest = _nn(np.asarray(mesh.vertices, np.float64)[used], src.points)
    votes = np.zeros((len(piece_share), len(part_share)))
    np.add.at(votes, (piece_of_vertex[used], src_part[nearest]), 1)
    owner = votes.argmax(axis=1)
    # a piece whose normals point into it walls a pocket of air sealed inside a solid (a cabinet's
    # inside behind its glass doors): a surface of the field, invisible from outside, not a tear
    cavity = piece_is_cavity(mesh.vertices, mesh.faces, piece_of_face, len(piece_share))
    outer = owner[~cavity]
    torn = int(len(outer) - len(np.unique(outer)))
    # missing parts and Chamfer from points on both surfaces
    faces_pred = np.asarray(mesh.faces, np.int64)
    pred = sample_surface(np.asarray(mesh.vertices, np.float64), faces_pred, _POINTS, rng)
    d_src, _ = _nn(src.points, pred.points)
    d_pred, _ = _nn(pred.points, src.points)
    exposed = _exposed(field, src.points, src.normals, epsilon + grid_spacing(resolution))
    near = np.bincount(src_part, weights=(d_src <= tolerance) & exposed, minlength=len(part_share))
    seen = np.bincount(src_part, weights=exposed, minlength=len(part_share))
    drawn = np.bincount(src_part, minlength=len(part_share))
    covered = np.divide(near, seen, out=np.ones_like(near), where=seen > 0)
    visible = seen >= 0.5 * drawn
    missing = int(((part_share >= MISSING_PART_AREA) & visible & (covered < 0.5)).sum())
    chamfer = 0.5 * (float(d_src.mean()) + float(d_pred.mean()))
    threshold = 0.01 * object_size(src.points)
    f1 = fscore(src.points, pred.points, threshold)["fscore"]
    # the deflated surface: every vertex stepped inward along its normal as a model's meshes are
    from core.data.open_mesh_sdf import mesh_step

    deflated = np.asarray(mesh.vertices, np.float64) - mesh_step(epsilon) * np.asarray(mesh.normals, np.float64)
    pred_in = sample_surface(deflated, faces_pred, _POINTS, rng).points
    chamfer_in = 0.5 * (float(_nn(src.points, pred_in)[0].mean()) + float(_nn(pred_in, src.points)[0].mean()))
    f1_in = fscore(src.points, pred_in, threshold)["fscore"]
    return GroundTruthQuality(
        resolution,
        field.backend,
        int(len(piece_share)),
        int(len(part_share)),
        torn,
        missing,
        chamfer,
        chamfer - epsilon,
        float(f1),
        chamfer_in,
        float(f1_in),
        time.perf_counter() - start,
        int(cavity.sum()),
    )


def _exposed(field, points: np.ndarray, normals: np.ndarray, step: float) -> np.ndarray:
    """(N,) bool: surface points with the field positive a ``step`` off the surface on either side."""
    offsets = np.concatenate([points + step * normals, points - step * normals])
    sdf = np.asarray(field(offsets).sdf).reshape(2, -1)
    return np.asarray((sdf > 0).any(axis=0))


def _shape_quality(task: tuple[str, str, str, str | None, tuple[int, ...]]) -> dict:
    """One manifest shape's :class:`GroundTruthQuality` at each resolution (a worker's job)."""
    from pathlib import Path

    from core.evaluation.ground_truth import load_ground_truth, shape_source_mesh
    from core.evaluation.held_out_split import EvalShape

    shape_id, class_name, file, source, resolutions = task
    shape = EvalShape(shape_id, class_name, Path(file), Path(source) if source else None, None)
    gt = load_ground_truth(shape.file)
    mesh = shape_source_mesh(shape, gt)
    if mesh is None:
        return {"id": shape_id, "class_name": class_name, "error": f"{source}: source mesh missing or unreadable"}
    field = mesh.field()
    row = {"id": shape_id, "class_name": class_name, "method": field.backend, "reason": field.reason}
    for resolution in resolutions:
        row[str(resolution)] = ground_truth_quality(mesh.vertices, mesh.faces, field, resolution).to_dict()
    return row


def ground_truth_report(
    data_dir, resolutions: tuple[int, ...] = (96, 128), workers: int = 1, progress: bool = True
) -> dict:
    """:func:`ground_truth_quality` of every shape of a preprocessed data set, against its source mesh.

    Each shape's field is rebuilt from its source mesh as its sample file records it (the ``auto``
    field's ``ε``, or the undilated winding field of older files). Writes ``DATA/ground_truth.json``
    (rows per shape, and a summary per resolution) and returns it. A shape whose source mesh is gone
    gets an error row; the others go on.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    from tqdm import tqdm

    from core.data.manifest import load_manifest
    from core.utils.io_utils import atomic_write_json

    data_dir = Path(data_dir)
    tasks = [
        (str(r["id"]), str(r["class_name"]), str(data_dir / r["file"]), r.get("source"), tuple(resolutions))
        for r in load_manifest(data_dir)["shapes"]
    ]
    bar = dict(total=len(tasks), desc="ground truth", unit="shape", disable=not progress)
    if workers <= 1:
        rows = [_shape_quality(task) for task in tqdm(tasks, **bar)]
    else:
        # spawn, not fork: the workers mesh with torch, and a child forked from a parent whose torch
        # thread pool is running deadlocks on its first parallel op (a pytest run hung CI for an hour)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(tqdm(pool.map(_shape_quality, tasks), **bar))
    report = {"resolutions": list(resolutions), "summary": summarise_quality(rows, resolutions), "shapes": rows}
    atomic_write_json(data_dir / "ground_truth.json", report)
    return report


def summarise_quality(rows: list[dict], resolutions: tuple[int, ...]) -> dict:
    """Per resolution: shapes measured, shares with torn pieces / missing parts / sealed cavities (%), mean
    Chamfer and F@1."""
    out = {}
    for resolution in resolutions:
        q = [r[str(resolution)] for r in rows if str(resolution) in r]
        if not q:
            continue
        out[str(resolution)] = {
            "shapes": len(q),
            "torn_share_pct": 100.0 * float(np.mean([x["torn_pieces"] > 0 for x in q])),
            "missing_share_pct": 100.0 * float(np.mean([x["missing_parts"] > 0 for x in q])),
            "cavity_share_pct": 100.0 * float(np.mean([x.get("cavity_pieces", 0) > 0 for x in q])),
            "chamfer_l1": float(np.mean([x["chamfer_l1"] for x in q])),
            "chamfer_l1_deflated": float(np.mean([x["chamfer_l1_deflated"] for x in q])),
            "fscore_1pct": 100.0 * float(np.mean([x["fscore_1pct"] for x in q])),
            "fscore_1pct_deflated": 100.0 * float(np.mean([x["fscore_1pct_deflated"] for x in q])),
        }
    return out
