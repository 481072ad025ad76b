"""The live read-out of a fit: its mesh measured against the observation it was fitted to.

What the viewer's TTO panel shows when a fit ends. Unlike ``evaluate`` (:mod:`core.evaluation.loop`)
there is no ground truth beyond the observation itself: its own surface points, their normals (estimated
when the cloud has none) and colours, thin parts from the points alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from core.meshing.extract import MeshArrays
    from core.model.trained_model import TrainedModel
    from core.tto.observations import Observation

__all__ = ["measure_fit"]


def measure_fit(
    model: TrainedModel,
    observation: Observation,
    shape_code: torch.Tensor,
    colour_code: torch.Tensor | None = None,
    condition: torch.Tensor | None = None,
    *,
    resolution: int = 128,
    mesh: MeshArrays | None = None,
    mc_backend: str = "auto",
    n_points: int = 10_000,
) -> dict[str, float]:
    """Metrics of a fit's mesh against the observation's own surface points (the live TTO's read-out).

    ``model`` decodes as fitted (``model.with_decoder(result.decoder_override)`` after a
    fine-tune); ``shape_code`` (Ds,), ``colour_code`` (Dc,) or None, ``condition`` (Dcond,) or
    None. ``mesh``: that fit's mesh at ``resolution`` when it is already there, else it is
    extracted on ``model.device`` with ``mc_backend``. Thin parts come from the points alone
    (:func:`core.evaluation.thin_masks.approximate_thin_mask`); a cloud without normals gets estimated ones.

    Returns
    -------
    :func:`core.evaluation.metrics.evaluate_reconstruction`'s dict, or ``{}`` when the observation has fewer
    than 10 surface points (a sample file or scan without a surface: nothing to compare with).
    """
    from core.evaluation.metrics import evaluate_reconstruction
    from core.evaluation.thin_masks import approximate_thin_mask
    from core.meshing import extract_mesh
    from core.tto.observations import estimate_normals

    if observation.surface_points is None or len(observation.surface_points) < 10:
        return {}
    points = np.asarray(observation.surface_points, np.float64)
    normals = observation.surface_normals
    normals = estimate_normals(points) if normals is None else np.asarray(normals, np.float64)
    if mesh is None:
        mesh = extract_mesh(
            model.sdf_fn(shape_code, condition),
            resolution,
            model.colour_fn(shape_code, colour_code, condition),
            device=model.device,
            mc_backend=mc_backend,
        )
    gt = {"surface_points": points, "surface_normals": normals}
    if observation.surface_colours is not None:
        gt["surface_rgb"] = observation.surface_colours
    return evaluate_reconstruction(gt, mesh, thin_mask=approximate_thin_mask(points, normals), n_points=n_points)
