"""Which surface points of a shape's ground truth lie on thin parts, for the thin-part F-score.

Thin parts are slender ones (legs, arms, rods, handles), found by :func:`core.data.thickness.thin_part_mask`.
This module picks its input: the source mesh when it is there (exact thickness), else the surface points
alone (estimated thickness), and says which one it used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from core.evaluation.ground_truth import shape_source_mesh
from core.utils.errors import ExplorerError

if TYPE_CHECKING:
    from core.evaluation.grid_reference import SourceMesh
    from core.evaluation.held_out_split import EvalShape

log = logging.getLogger(__name__)

__all__ = ["approximate_thin_mask", "shape_thin_mask"]


def approximate_thin_mask(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Thin parts from surface points alone (when the source mesh is gone).

    :func:`core.data.thickness.thin_part_mask` with the thickness estimated from the points: slender
    parts (legs, arms, rods, handles), not thin boards or panels.
    """
    from core.data.thickness import thin_part_mask

    return thin_part_mask(points, normals)


def shape_thin_mask(
    shape: EvalShape, gt: dict[str, np.ndarray], source: SourceMesh | None = None
) -> tuple[np.ndarray, str]:
    """(S,) bool thin mask of the gt surface points and how it was made (``mesh`` / ``points``).

    ``source``: the mesh :func:`core.evaluation.ground_truth.shape_source_mesh` already loaded (read here
    when not given).
    """
    from core.data.thickness import thin_part_mask

    source = source if source is not None else shape_source_mesh(shape, gt)
    if source is not None:
        try:
            return thin_part_mask(gt["surface_points"], gt["surface_normals"], source.vertices, source.faces), "mesh"
        except (ExplorerError, ValueError) as exc:
            log.warning(
                "%s: thin mask from the mesh failed (%s); approximating from the surface points", shape.source, exc
            )
    return approximate_thin_mask(gt["surface_points"], gt["surface_normals"]), "points"
