"""The evaluation loop: reconstruct every shape of a split and measure it, one result row per shape.

For each shape: observation = its sample file, ground truth = its surface samples
(:mod:`core.evaluation.ground_truth`), thin-part mask from :mod:`core.evaluation.thin_masks`, the class or
prompt from :mod:`core.evaluation.class_choice`. Codes come from test-time optimisation (:mod:`core.tto`)
or, for training shapes with ``use_trained_codes``, from the checkpoint. A shape that fails gives an
error row and the rest go on; a cancelled run returns the rows it finished, marked
(:attr:`SplitRows.cancelled`). Tables and files: :mod:`core.evaluation.report`.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from core.evaluation.class_choice import ClassChoice, choose_class, class_fields
from core.evaluation.grid_reference import SourceMesh, grid_reference_measures
from core.evaluation.ground_truth import load_ground_truth, load_mesh_in_frame, shape_source_mesh
from core.evaluation.held_out_split import EvalShape
from core.evaluation.settings import EvalSettings
from core.evaluation.thin_masks import shape_thin_mask
from core.tto.config import TTOConfig
from core.utils.cancel import Cancel, is_cancelled
from core.utils.errors import DataSetError, ExplorerError

if TYPE_CHECKING:
    import torch

    from core.meshing.extract import MeshArrays
    from core.model.trained_model import TrainedModel
    from core.tto.fit import TTOResult
    from core.tto.observations import Observation

log = logging.getLogger(__name__)

__all__ = [
    "SHAPE_ERRORS",
    "FREE_SPACE_VOXELS",
    "free_space_distance",
    "grid_reference_fields",
    "trained_codes",
    "SplitRows",
    "evaluate_split",
]

SHAPE_ERRORS: tuple[type[BaseException], ...] = (
    ExplorerError,
    OSError,
    ValueError,
    KeyError,
    EOFError,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
)
"""What one bad shape can raise (a damaged .npz raises BadZipFile, EOFError, UnpicklingError ...):
its row gets the error and the batch goes on."""

FREE_SPACE_VOXELS = 2.0
"""A floater whose closest vertex lies more than this many voxels from the ground-truth surface is a
blob in free space; nearer, it is a torn piece of the surface (:func:`core.evaluation.metrics.floater_kinds`)."""


def free_space_distance(resolution: int) -> float:
    """:data:`FREE_SPACE_VOXELS` voxels of a ``resolution``³ grid over [-1, 1]³ (voxel 2 / (N - 1))."""
    return FREE_SPACE_VOXELS * 2.0 / (resolution - 1)


def grid_reference_fields(
    source: SourceMesh | None,
    floaters: int | None,
    settings: EvalSettings,
    gt: dict[str, np.ndarray],
    thin_mask: np.ndarray | None,
) -> dict[str, Any]:
    """The reconstruction against the exact SDF meshed on the same grid (:mod:`core.evaluation.grid_reference`).

    ``gt_grid_floaters`` (the exact SDF's floaters on the evaluation's grid), ``extra_floaters``
    (the reconstruction's beyond those), ``has_extra_floaters``, and the grid's ceiling:
    ``gt_grid_fscore_1pct`` and ``gt_grid_thin_fscore_1pct``, what the exact field itself scores on
    that grid. NaN / None without a source mesh or when :attr:`EvalSettings.grid_reference` is off.
    """
    if source is None or floaters is None or not settings.grid_reference:
        return {
            "gt_grid_floaters": math.nan,
            "extra_floaters": math.nan,
            "has_extra_floaters": None,
            "gt_grid_fscore_1pct": math.nan,
            "gt_grid_thin_fscore_1pct": math.nan,
        }
    reference = grid_reference_measures(
        source, gt, thin_mask, settings.resolution, settings.mesh_method, settings.n_eval_points, settings.seed
    )
    extra = max(0, int(floaters) - reference["floaters"])
    return {
        "gt_grid_floaters": reference["floaters"],
        "extra_floaters": extra,
        "has_extra_floaters": extra > 0,
        "gt_grid_fscore_1pct": reference["fscore_1pct"],
        "gt_grid_thin_fscore_1pct": reference["thin_fscore_1pct"],
    }


def trained_codes(model: TrainedModel, shape: EvalShape):
    """(shape code, colour code or None, condition or None) the checkpoint trained for ``shape``
    (matched by id and class); the condition is the one it was trained with
    (:meth:`TrainedModel.training_condition`: its own description in a description-trained text model).

    Raises DataSetError when the checkpoint has no code for it (not a training shape of this model).
    """
    import torch

    ids = list(model.shape_ids)
    classes: list[str | None] = list(model.shape_classes) or [None] * len(ids)
    for k, (sid, cls) in enumerate(zip(ids, classes, strict=False)):
        if sid == shape.id and (cls is None or cls == shape.class_name):
            colour = None if model.colour_codes is None else torch.as_tensor(model.colour_codes[k]).detach().cpu()
            condition = model.training_condition(k)
            return (
                torch.as_tensor(model.shape_codes[k]).detach().cpu(),
                colour,
                None if condition is None else condition.detach().cpu(),
            )
    raise DataSetError(
        f"shape {shape.class_name}/{shape.id} has no trained code in this checkpoint; "
        "--use-trained-codes only works for the training split of the data set the model was trained on."
    )


class SplitRows(list[dict[str, Any]]):
    """What :func:`evaluate_split` returns: one row (dict) per evaluated shape, in split order.

    ``cancelled``: the run was asked to stop before its last shape, so the rows cover only the first
    ``len(rows)`` of ``n_shapes`` (a partial result: :func:`core.evaluation.report.write_results` says so in
    every file it writes). A list, so code that iterates, indexes or unpacks the rows reads them as before.
    """

    def __init__(self, rows: Iterable[dict[str, Any]] = (), n_shapes: int = 0, cancelled: bool = False) -> None:
        super().__init__(rows)
        self.n_shapes = n_shapes
        """How many shapes the run was given."""
        self.cancelled = cancelled
        """True when the run stopped early on ``cancel``: the rows are partial."""


def evaluate_split(
    model: TrainedModel,
    shapes: Sequence[EvalShape],
    config: TTOConfig,
    settings: EvalSettings | None = None,
    out_dir: Path | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    cancel: Cancel = None,
    classes: dict[tuple[str, str], ClassChoice] | None = None,
    on_step: Callable[[EvalShape, Any], None] | None = None,
) -> SplitRows:
    """Reconstruct and measure every shape; one row (dict) per shape.

    A shape that fails (a damaged or unreadable file, a class the model does not know, ...)
    gives a row with ``error`` and NaN metrics, and the rest go on; the error is logged once
    (by ``progress`` when given, else by this module's logger).
    ``cancel`` (:mod:`core.utils.cancel`) is checked before each shape and inside each fit; when it
    stops the run, the shape being fitted gets no row and the result is marked
    :attr:`SplitRows.cancelled`.
    ``classes``: (class, id) → :class:`ClassChoice` already made for a shape (an ablation's
    earlier loss set); choices made here are added to it.
    ``on_step(shape, progress)``: about ten reports of each fit's :class:`core.tto.fit.TTOProgress`,
    so a progress display moves during a long fit, not only between shapes.
    Timing: ``seconds`` is the whole cost of the shape (reading, class choice, fit, meshing,
    metrics); ``seconds_class``, ``seconds_fit``, ``seconds_mesh``, ``seconds_metrics`` its parts.
    """
    settings = settings or EvalSettings()
    classes = {} if classes is None else classes
    rows = SplitRows(n_shapes=len(shapes))
    for i, shape in enumerate(shapes):
        if is_cancelled(cancel):
            rows.cancelled = True
            break
        row: dict[str, Any] = {"id": shape.id, "class": shape.class_name, "losses": config.losses}
        if shape.view is not None:
            row["view"] = shape.view
        try:
            if not _evaluate_shape(model, shape, config, settings, out_dir, row, classes, cancel, on_step):
                rows.cancelled = True
                break
        except SHAPE_ERRORS as exc:
            if progress is None:
                log.warning("%s/%s: %s", shape.class_name, shape.id, exc)
            row.update(error=str(exc) or type(exc).__name__, chamfer_x1e3=math.nan)
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(shapes), row)
    return rows


def _evaluate_shape(
    model: TrainedModel,
    shape: EvalShape,
    config: TTOConfig,
    settings: EvalSettings,
    out_dir: Path | None,
    row: dict[str, Any],
    classes: dict[tuple[str, str], ClassChoice],
    cancel: Cancel,
    on_step: Callable[[EvalShape, Any], None] | None,
) -> bool:
    """Fill ``row`` with the shape's reconstruction's measures; False when its fit was cancelled.

    ``row`` is filled as the work goes, so a shape that fails half way keeps its class columns.
    """
    from core.meshing import export_mesh

    t0 = time.perf_counter()
    gt = load_ground_truth(shape.file)
    observation = _observation(shape, gt, settings)
    seconds_class = 0.0  # class inference done for an earlier loss set, not timed in t0 here
    trained_condition = None
    if settings.use_trained_codes:
        from core.tto.fit import TTOResult

        code, colour, trained_condition = trained_codes(model, shape)
        result = TTOResult(code, colour, shape.class_name, config=config)
        row.update(class_source="trained", class_pred=shape.class_name, class_correct=None)
        t_fit0 = time.perf_counter()
    else:
        result, seconds_class, t_fit0 = _fit_shape(
            model, shape, observation, config, settings, row, classes, cancel, on_step
        )
        if result.cancelled:
            return False
    t_mesh0 = time.perf_counter()
    used = model.with_decoder(result.decoder_override)
    if settings.use_trained_codes:
        condition = None if trained_condition is None else trained_condition.to(used.device)
    else:
        condition = used.condition(class_name=result.class_name, text=result.text)
    mesh = _reconstruction_mesh(used, result, condition, settings)
    t_metrics0 = time.perf_counter()
    seen = None if observation is None or shape.view is None else observation.surface_points
    metrics, mask_from = _measures(shape, gt, mesh, settings, seen)
    if settings.save_meshes and out_dir is not None and not mesh.is_empty:
        export_mesh(mesh, Path(out_dir) / "meshes" / shape.class_name / f"{shape.id}.ply")
    t_end = time.perf_counter()
    row.update(
        seconds=(t_end - t0) + seconds_class,
        seconds_fit=t_mesh0 - t_fit0,
        seconds_mesh=t_metrics0 - t_mesh0,
        seconds_metrics=t_end - t_metrics0,
        chamfer_x1e3=1e3 * metrics["chamfer"],
        thin_mask_from=mask_from,
        empty=bool(mesh.is_empty),
        final_sdf_loss=result.final_losses.get("sdf"),
        **{k: v for k, v in metrics.items() if k != "chamfer"},
    )
    return True


def _observation(shape: EvalShape, gt: dict[str, np.ndarray], settings: EvalSettings) -> Observation | None:
    """What ``shape`` is fitted to: its sample file, or a partial scan of its source mesh from ``shape.view``
    in the sample file's frame (None with trained codes: nothing is fitted)."""
    from core.tto.observations import from_npz, scan_observation
    from core.tto.scan import SCAN_DIRECTIONS

    if settings.use_trained_codes:
        return None
    if shape.view is None:
        return from_npz(shape.file)
    if shape.view not in SCAN_DIRECTIONS:
        raise DataSetError(f"unknown scan direction {shape.view!r}; known: {', '.join(SCAN_DIRECTIONS)}")
    mesh = load_mesh_in_frame(shape, gt)
    return scan_observation(
        mesh,
        SCAN_DIRECTIONS[shape.view],
        resolution=settings.scan_resolution,
        seed=settings.seed,
        source=f"{shape.class_name}/{shape.id}",
    )


def _fit_shape(
    model: TrainedModel,
    shape: EvalShape,
    obs: Observation | None,
    config: TTOConfig,
    settings: EvalSettings,
    row: dict[str, Any],
    classes: dict[tuple[str, str], ClassChoice],
    cancel: Cancel,
    on_step: Callable[[EvalShape, Any], None] | None,
) -> tuple[TTOResult, float, float]:
    """Test-time optimisation of ``shape`` under its class choice (made here once, or taken from ``classes``).

    Returns the fit, the seconds of a class choice made earlier (not timed by the caller) and the fit's start
    (``time.perf_counter``); adds the class columns to ``row``.
    """
    from core.tto.fit import fit

    assert obs is not None  # only trained codes have none, and they are not fitted
    key = (shape.class_name, shape.id) if shape.view is None else (shape.class_name, f"{shape.id}@{shape.view}")
    step = None if on_step is None else (lambda progress, _s=shape: on_step(_s, progress))
    seconds_class = 0.0
    choice = classes.get(key)
    if choice is None:
        choice = choose_class(model, shape, obs, config, settings, cancel, step)
        classes[key] = choice
    else:
        seconds_class = choice.seconds
    row.update(class_fields(shape, choice, model))
    t_fit0 = time.perf_counter()
    result = fit(
        model,
        obs,
        config,
        callback=step,
        class_name=choice.class_name,
        text=choice.text,
        seed=settings.seed,
        cancel=cancel,
        every=max(1, config.iterations // 10),
    )
    return result, seconds_class, t_fit0


def _reconstruction_mesh(
    model: TrainedModel, result: TTOResult, condition: torch.Tensor | None, settings: EvalSettings
) -> MeshArrays:
    """The fit's mesh at ``settings.resolution`` (level ``settings.iso_level``), extracted where the model is."""
    from core.meshing import extract_mesh

    sdf_fn = model.sdf_fn(result.shape_code, condition)
    if settings.iso_level:  # shifted, so the narrow band of coarse_to_fine follows the level
        sdf_fn = _shifted(sdf_fn, settings.iso_level)
    return extract_mesh(
        sdf_fn,
        settings.resolution,
        model.colour_fn(result.shape_code, result.colour_code, condition),
        method=settings.mesh_method,
        device=model.device,
    )


def _measures(
    shape: EvalShape,
    gt: dict[str, np.ndarray],
    mesh: MeshArrays,
    settings: EvalSettings,
    seen: np.ndarray | None = None,
) -> tuple[dict[str, Any], str]:
    """:func:`core.evaluation.metrics.evaluate_reconstruction` of ``mesh`` against ``gt`` with the grid
    reference's fields, and where the thin mask came from (``mesh`` / ``points``). ``seen``: the points a
    partial observation saw (the rest of the surface is measured as ``unseen_*``)."""
    from core.evaluation.metrics import evaluate_reconstruction, unseen_points

    source = shape_source_mesh(shape, gt)
    mask, mask_from = shape_thin_mask(shape, gt, source)
    metrics = evaluate_reconstruction(
        gt,
        mesh,
        thin_mask=mask,
        n_points=settings.n_eval_points,
        rng=settings.seed,
        free_distance=free_space_distance(settings.resolution),
        unseen_mask=None if seen is None else unseen_points(gt["surface_points"], seen),
    )
    floaters = metrics.get("floaters")
    metrics.update(grid_reference_fields(source, None if floaters is None else int(floaters), settings, gt, mask))
    return metrics, mask_from


def _shifted(sdf_fn: Callable[[Any], Any], level: float) -> Callable[[Any], Any]:
    """``sdf_fn - level``: its zero set is ``sdf_fn``'s ``level`` set."""
    return lambda points: sdf_fn(points) - level
