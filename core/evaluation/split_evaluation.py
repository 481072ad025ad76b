"""Reconstruct the shapes of a data set split and measure them; compare loss sets.

For each shape of the split: observation = its sample file, ground truth = its
``surface_points`` / ``surface_normals`` / ``surface_rgb``, thin-part mask (slender parts:
legs, arms, rods, handles) from :func:`core.evaluation.thickness.thin_part_mask` on the source mesh
(normalised with the sample file's own transform) or, when the mesh is gone, from the surface
points alone (:func:`approximate_thin_mask`).
Codes come from test-time optimisation (:mod:`core.tto`) or, for training shapes with
``use_trained_codes``, from the checkpoint. Results: one row per shape, a table per class
(markdown), JSON; :func:`run_ablation` repeats it for several loss sets on the same shapes.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import pickle
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from core.evaluation.grid_reference import SourceMesh, grid_reference_measures, load_source_mesh
from core.tto.config import TTOConfig
from core.utils.errors import DataSetError, ExplorerError
from core.utils.io_utils import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    import torch

    from core.meshing.extract import MeshArrays
    from core.model.trained_model import TrainedModel
    from core.tto.observations import Observation

log = logging.getLogger(__name__)

__all__ = [
    "EvalShape",
    "EvalSettings",
    "list_split",
    "load_ground_truth",
    "approximate_thin_mask",
    "shape_thin_mask",
    "shape_source_mesh",
    "grid_reference_fields",
    "evaluate_split",
    "ClassChoice",
    "choose_class",
    "TEXT_PROMPTS",
    "MEAN_CONDITION",
    "check_text_prompt",
    "text_choice",
    "mesh_ground_truth",
    "trained_codes",
    "json_safe",
    "SHAPE_ERRORS",
    "summarise",
    "class_table_markdown",
    "comparison_markdown",
    "write_results",
    "run_ablation",
    "measure_fit",
    "TABLE_COLUMNS",
    "FREE_SPACE_VOXELS",
    "free_space_distance",
]

TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (row key, header, format)
    ("chamfer_x1e3", "CD×10³ mean", "mean"),
    ("chamfer_x1e3", "CD×10³ median", "median"),
    ("fscore_1pct", "F@1 %", "pct"),
    ("fscore_2pct", "F@2 %", "pct"),
    ("thin_fscore_1pct", "thin F@1 %", "pct"),
    ("normal_consistency", "NC", "mean"),
    ("colour_l1", "colour L1", "mean"),
    ("colour_psnr", "PSNR dB", "mean"),
    ("components", "components", "mean"),  # connected components of the reconstruction (core.evaluation.metrics)
    ("gt_components", "gt components", "mean"),  # of the ground truth (core.evaluation.metrics.point_components)
    ("has_floaters", "floaters %", "pct"),  # share of shapes with a floating fragment (mesh_components)
    # share of shapes with more floaters than the exact SDF meshed on the same grid (core.evaluation.grid_reference)
    ("has_extra_floaters", "floaters beyond gt grid %", "pct"),
    # floaters per shape by kind (core.evaluation.metrics.floater_kinds): pieces of the surface torn off, blobs in
    # free space (> 2 voxels from the gt surface), bubbles inside a body
    ("torn_floaters", "torn floaters", "mean"),
    ("free_floaters", "free-space floaters", "mean"),
    ("cavity_floaters", "cavities", "mean"),
    # the grid's ceiling: the exact SDF meshed on the same grid, measured like a reconstruction
    ("gt_grid_fscore_1pct", "gt grid F@1 %", "pct"),
    ("gt_grid_thin_fscore_1pct", "gt grid thin F@1 %", "pct"),
    ("seconds", "s", "mean"),
)


@dataclass
class EvalShape:
    """One shape of a split."""

    id: str
    class_name: str
    file: Path
    source: Path | None
    text: str | None = None


@dataclass
class EvalSettings:
    """How shapes are reconstructed and measured."""

    resolution: int = 128
    """Marching-cubes grid resolution."""
    mesh_method: str = "coarse_to_fine"
    """Grid evaluation: ``coarse_to_fine`` or ``dense``."""
    n_eval_points: int = 30_000
    """Points sampled on the reconstruction for the metrics (DeepSDF: 30,000)."""
    infer_class: bool = False
    """Infer the class by TTO instead of using the manifest's label (also reports class accuracy)."""
    use_trained_codes: bool = False
    """Training shapes: use the checkpoint's codes, no optimisation."""
    class_as_text: bool = False
    """Condition on the class name as a free text prompt (text-conditioned models): the zero-shot
    setting for classes the model never saw. Models without conditioning ignore the class."""
    text_prompt: str | None = None
    """Text-conditioned models only (checked by :func:`check_text_prompt`): ``class`` conditions each
    shape on its class name as a prompt, ``description`` on its own text from the manifest (the
    per-shape description a ``text_source = description`` model was trained on). Zero-shot for
    classes the model never saw; None: the class (given or inferred) as usual."""
    seed: int = 0
    grid_reference: bool = True
    """Also mesh each shape's source mesh's exact SDF on the same grid (when the source is there) and
    report the reconstruction's floaters beyond it and the exact field's own F@1 and thin F@1 on
    that grid, the grid's ceiling (:mod:`core.evaluation.grid_reference`); 2-5 s a shape."""
    iso_level: float = 0.0
    """Mesh the level set ``sdf = iso_level`` instead of zero (SDF units: the grid's voxel is
    2 / (resolution - 1)). A small positive level dilates the surface and closes sheets the field
    tears just above zero, at the price of accuracy everywhere (docs/results.md, "The grid's
    ceiling"); the ground-truth references stay at zero."""
    save_meshes: bool = False
    """Write each reconstruction to ``<out>/meshes/<class>/<id>.ply``."""
    device: str | None = None


def _check_record(manifest_path: Path, number: int, record: Any) -> None:
    """A manifest record with a class, an id and a file, whose class and id can name files: they name the
    saved meshes (``--save-meshes``: ``meshes/<class>/<id>.ply``), so ``../..`` would write outside --out."""
    from core.utils.names import path_component_problem

    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("class_name", "id", "file")):
        raise DataSetError(f"{manifest_path}: shape {number} lacks a class_name, id or file. Re-run preprocessing "
                           "to rewrite the manifest.")
    for what in ("class_name", "id"):
        problem = path_component_problem(record[what])
        if problem:
            raise DataSetError(f"{manifest_path}: shape {number}: {what} {record[what][:60]!r} {problem}, so it "
                               "cannot name a file. Re-run preprocessing to rewrite the manifest.")


def list_split(data_dir: str | Path, split: str = "test", limit: int | None = None,
               classes: Sequence[str] | None = None) -> list[EvalShape]:
    """Shapes of ``split`` from ``<data>/manifest.json`` (and ``splits/<split>.json`` when present).

    ``limit`` keeps the first N shapes per class, in manifest order.

    Raises
    ------
    DataSetError
        No manifest, or no shape in the split.
    """
    data_dir = Path(data_dir)
    manifest_path = data_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DataSetError(f"{data_dir}: no manifest.json. Point --data at a folder written by 'main.py preprocess'.")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataSetError(f"{manifest_path}: unreadable ({exc}). Re-run preprocessing to rewrite it.") from exc
    wanted: set[tuple[str, str]] | None = None
    split_path = data_dir / "splits" / f"{split}.json"
    if split_path.is_file():
        try:
            split_data = json.loads(split_path.read_text())
            wanted = {(c, i) for per_set in split_data.values() for c, ids in per_set.items() for i in ids}
        except (OSError, json.JSONDecodeError, AttributeError):
            wanted = None
    shapes: list[EvalShape] = []
    per_class: dict[str, int] = {}
    for number, record in enumerate(manifest.get("shapes", []) if isinstance(manifest, dict) else [], 1):
        _check_record(manifest_path, number, record)
        key = (record["class_name"], record["id"])
        in_split = key in wanted if wanted is not None else record.get("split") == split
        if not in_split or (classes and record["class_name"] not in classes):
            continue
        if limit is not None and per_class.get(record["class_name"], 0) >= limit:
            continue
        per_class[record["class_name"]] = per_class.get(record["class_name"], 0) + 1
        source = record.get("source")
        shapes.append(EvalShape(record["id"], record["class_name"], data_dir / record["file"],
                                Path(source) if source else None, record.get("text")))
    if not shapes:
        raise DataSetError(
            f"{data_dir}: no shapes in split '{split}'"
            + (f" for classes {list(classes)}" if classes else "")
            + ". Check --split (train / test) and that preprocessing held shapes out (--test-fraction)."
        )
    return shapes


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


def approximate_thin_mask(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Thin parts from surface points alone (when the source mesh is gone).

    :func:`core.evaluation.thickness.thin_part_mask` with the thickness estimated from the points: slender
    parts (legs, arms, rods, handles), not thin boards or panels.
    """
    from core.evaluation.thickness import thin_part_mask

    return thin_part_mask(points, normals)


def shape_source_mesh(shape: EvalShape, gt: dict[str, np.ndarray]) -> SourceMesh | None:
    """The shape's source mesh in its sample file's frame, or None (no file, no frame, unreadable)."""
    return load_source_mesh(shape.source, gt.get("offset"), gt.get("scale"), float(gt.get("surface_offset", 0.0)))


def shape_thin_mask(shape: EvalShape, gt: dict[str, np.ndarray],
                    source: SourceMesh | None = None) -> tuple[np.ndarray, str]:
    """(S,) bool thin mask of the gt surface points and how it was made (``mesh`` / ``points``).

    ``source``: the mesh :func:`shape_source_mesh` already loaded (read here when not given).
    """
    from core.evaluation.thickness import thin_part_mask

    source = source if source is not None else shape_source_mesh(shape, gt)
    if source is not None:
        try:
            return thin_part_mask(gt["surface_points"], gt["surface_normals"], source.vertices, source.faces), "mesh"
        except (ExplorerError, ValueError) as exc:
            log.warning("%s: thin mask from the mesh failed (%s); approximating from the surface points",
                        shape.source, exc)
    return approximate_thin_mask(gt["surface_points"], gt["surface_normals"]), "points"


def grid_reference_fields(source: SourceMesh | None, floaters: int | None, settings: EvalSettings,
                          gt: dict[str, np.ndarray], thin_mask: np.ndarray | None) -> dict[str, Any]:
    """The reconstruction against the exact SDF meshed on the same grid (:mod:`core.evaluation.grid_reference`).

    ``gt_grid_floaters`` (the exact SDF's floaters on the evaluation's grid), ``extra_floaters``
    (the reconstruction's beyond those), ``has_extra_floaters``, and the grid's ceiling:
    ``gt_grid_fscore_1pct`` and ``gt_grid_thin_fscore_1pct``, what the exact field itself scores on
    that grid. NaN / None without a source mesh or when :attr:`EvalSettings.grid_reference` is off.
    """
    if source is None or floaters is None or not settings.grid_reference:
        return {"gt_grid_floaters": math.nan, "extra_floaters": math.nan, "has_extra_floaters": None,
                "gt_grid_fscore_1pct": math.nan, "gt_grid_thin_fscore_1pct": math.nan}
    reference = grid_reference_measures(source, gt, thin_mask, settings.resolution, settings.mesh_method,
                                        settings.n_eval_points, settings.seed)
    extra = max(0, int(floaters) - reference["floaters"])
    return {"gt_grid_floaters": reference["floaters"], "extra_floaters": extra, "has_extra_floaters": extra > 0,
            "gt_grid_fscore_1pct": reference["fscore_1pct"],
            "gt_grid_thin_fscore_1pct": reference["thin_fscore_1pct"]}


FREE_SPACE_VOXELS = 2.0
"""A floater whose closest vertex lies more than this many voxels from the ground-truth surface is a
blob in free space; nearer, it is a torn piece of the surface (:func:`core.evaluation.metrics.floater_kinds`)."""


def free_space_distance(resolution: int) -> float:
    """:data:`FREE_SPACE_VOXELS` voxels of a ``resolution``³ grid over [-1, 1]³ (voxel 2 / (N - 1))."""
    return FREE_SPACE_VOXELS * 2.0 / (resolution - 1)


def mesh_ground_truth(path: str | Path, n_points: int = 30_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Ground truth of a whole mesh file in its unit-sphere frame (the frame a fit to it lives in).

    Returns ``surface_points`` (S, 3), ``surface_normals`` (S, 3), ``surface_rgb`` (S, 3) and
    ``thin_mask`` (S,) bool (:func:`core.evaluation.thickness.thin_part_mask` on the mesh), for
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
    from core.evaluation.thickness import thin_part_mask

    mesh, _ = normalize_mesh(load_mesh(path))
    sample = sample_surface(mesh.vertices, mesh.faces, int(n_points), np.random.default_rng(seed))
    gt = {"surface_points": sample.points, "surface_normals": sample.normals,
          "surface_rgb": np.asarray(mesh.colours_at(sample.face_index, sample.barycentric), np.float32)}
    gt["thin_mask"] = thin_part_mask(sample.points, sample.normals, mesh.vertices, mesh.faces)
    return gt


def trained_codes(model: TrainedModel, shape: EvalShape):
    """(shape code, colour code or None, condition or None) the checkpoint trained for ``shape``
    (matched by id and class); the condition is the one it was trained with
    (:meth:`TrainedModel.training_condition`: its own description in a description-trained text model).

    Raises DataSetError when the checkpoint has no code for it (not a training shape of this model).
    """
    import torch

    ids = list(getattr(model, "shape_ids", []) or [])
    classes = list(getattr(model, "shape_classes", []) or [None] * len(ids))
    for k, (sid, cls) in enumerate(zip(ids, classes, strict=False)):
        if sid == shape.id and (cls is None or cls == shape.class_name):
            colours = getattr(model, "colour_codes", None)
            colour = None if colours is None else torch.as_tensor(colours[k]).detach().cpu()
            condition = model.training_condition(k)
            return (torch.as_tensor(model.shape_codes[k]).detach().cpu(), colour,
                    None if condition is None else condition.detach().cpu())
    raise DataSetError(
        f"shape {shape.class_name}/{shape.id} has no trained code in this checkpoint; "
        "--use-trained-codes only works for the training split of the data set the model was trained on."
    )


SHAPE_ERRORS: tuple[type[BaseException], ...] = (
    ExplorerError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError,
)
"""What one bad shape can raise (a damaged .npz raises BadZipFile, EOFError, UnpicklingError ...):
its row gets the error and the batch goes on."""


@dataclass(frozen=True)
class ClassChoice:
    """The class one shape is reconstructed under, chosen once and shared by every loss set.

    source: ``given`` (the manifest's label), ``inferred`` (short fits under every class),
    ``text`` (a prompt: the class name or the shape's description), ``mean`` (:data:`MEAN_CONDITION`)
    or ``none`` (a model without conditioning).
    """

    class_name: str | None
    source: str
    text: str | None = None
    scores: dict[str, float] | None = None
    seconds: float = 0.0


TEXT_PROMPTS: tuple[str, ...] = ("class", "description")
"""What ``--text-prompt`` conditions each shape on (see :attr:`EvalSettings.text_prompt`)."""

MEAN_CONDITION = ClassChoice(None, "mean", text="")
"""The class-agnostic condition: an empty prompt makes :meth:`TrainedModel.condition` return the
mean over the trained classes' conditions, and, being a prompt, keeps :func:`core.tto.fit.fit` from
inferring a class. The "no condition" reference of a zero-shot study (a conditioned decoder never
saw a zero condition vector; the mean is the centre of the conditions it saw)."""


def check_text_prompt(model: TrainedModel, shapes: Sequence[EvalShape], text_prompt: str) -> None:
    """Refuse ``--text-prompt`` before any fit: a model without text conditioning, or shapes without text.

    Raises
    ------
    ConfigError
        An unknown ``text_prompt`` or a model not trained with ``conditioning = text``.
    DataSetError
        ``description`` for shapes whose manifest record has no ``text`` (names up to five).
    """
    from core.utils.errors import ConfigError

    if text_prompt not in TEXT_PROMPTS:
        raise ConfigError(f"--text-prompt {text_prompt!r}: choose one of {', '.join(TEXT_PROMPTS)}")
    mode = getattr(model, "conditioning", "none")
    if mode != "text":
        where = f"{model.path}: " if getattr(model, "path", None) else ""
        raise ConfigError(f"{where}--text-prompt needs a text-conditioned model; this one uses conditioning "
                          f"{mode!r}. Train one with 'main.py train --conditioning text' (add "
                          "--set model.text_source=description for per-shape descriptions), or drop --text-prompt.")
    if text_prompt == "description":
        missing = [f"{s.class_name}/{s.id}" for s in shapes if not (s.text and s.text.strip())]
        if missing:
            raise DataSetError(
                f"--text-prompt description: {len(missing)} of {len(shapes)} shapes have no text in the manifest "
                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}). Preprocess with a source that "
                "writes descriptions (synthetic, sweethome3d), leave those shapes out with --classes, or use "
                "--text-prompt class.")


def text_choice(shape: EvalShape, text_prompt: str) -> ClassChoice:
    """The prompt ``shape`` is fitted under for ``--text-prompt`` (``class`` or ``description``)."""
    if text_prompt == "description":
        if not (shape.text and shape.text.strip()):
            raise DataSetError(f"{shape.class_name}/{shape.id}: no text in the manifest, so it cannot be conditioned "
                               "on its description; use --text-prompt class for it.")
        return ClassChoice(None, "text", text=shape.text.strip())
    return ClassChoice(None, "text", text=shape.class_name)


def unknown_class_message(shape: EvalShape, model: TrainedModel) -> str:
    names = ", ".join(getattr(model, "class_names", None) or [])
    return (f"class {shape.class_name!r} is not one of this model's classes ({names}); evaluate with --infer-class "
            "to reconstruct it under the class the model finds closest, or skip it with --classes")


def choose_class(model: TrainedModel, shape: EvalShape, obs: Observation, config: TTOConfig,
                 settings: EvalSettings, cancel: Any = None,
                 callback: Callable[[Any], None] | None = None) -> ClassChoice:
    """The class ``shape`` is fitted under (see :class:`ClassChoice`).

    Inference runs the baseline losses whatever ``config`` turns on, so every loss set of an
    ablation compares reconstructions under one class. Raises DataSetError for a given class
    the model does not know (the message names ``--infer-class``). ``callback`` gets the short
    fits' progress (stage ``class:<name>``) a few times per class.
    """
    from core.tto.fit import fit

    if settings.text_prompt:
        check_text_prompt(model, [], settings.text_prompt)
        return text_choice(shape, settings.text_prompt)
    if model.condition() is None:
        return ClassChoice(None, "none")
    if settings.class_as_text:
        return ClassChoice(None, "text", text=shape.class_name)
    if not settings.infer_class:
        if shape.class_name not in (getattr(model, "class_names", None) or []):
            raise DataSetError(unknown_class_message(shape, model))
        return ClassChoice(shape.class_name, "given")
    probe = replace(config.with_losses("baseline"), iterations=1, lr_decay_every=None)
    result = fit(model, obs, probe, callback=callback, class_name=None, seed=settings.seed, cancel=cancel,
                 every=max(1, config.class_iterations // 4))
    return ClassChoice(result.class_name, "inferred", scores=result.class_scores, seconds=result.seconds)


def _class_fields(shape: EvalShape, choice: ClassChoice, model: TrainedModel) -> dict[str, Any]:
    known = shape.class_name in (getattr(model, "class_names", None) or [])
    correct = (choice.class_name == shape.class_name) if choice.source == "inferred" and known else None
    return {"class_source": choice.source, "class_pred": choice.class_name if choice.source != "text" else choice.text,
            "class_correct": correct, "seconds_class": choice.seconds}


def evaluate_split(
    model: TrainedModel,
    shapes: Sequence[EvalShape],
    config: TTOConfig,
    settings: EvalSettings | None = None,
    out_dir: Path | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    cancel: Any = None,
    classes: dict[tuple[str, str], ClassChoice] | None = None,
    on_step: Callable[[EvalShape, Any], None] | None = None,
) -> list[dict[str, Any]]:
    """Reconstruct and measure every shape; one row (dict) per shape.

    A shape that fails (a damaged or unreadable file, a class the model does not know, ...)
    gives a row with ``error`` and NaN metrics, and the rest go on; the error is logged once
    (by ``progress`` when given, else by this module's logger).
    ``classes``: (class, id) → :class:`ClassChoice` already made for a shape (an ablation's
    earlier loss set); choices made here are added to it.
    ``on_step(shape, progress)``: about ten reports of each fit's :class:`core.tto.fit.TTOProgress`,
    so a progress display moves during a long fit, not only between shapes.
    Timing: ``seconds`` is the whole cost of the shape (reading, class choice, fit, meshing,
    metrics); ``seconds_class``, ``seconds_fit``, ``seconds_mesh``, ``seconds_metrics`` its parts.
    """
    from core.evaluation.metrics import evaluate_reconstruction
    from core.meshing import export_mesh, extract_mesh
    from core.tto.fit import TTOResult, fit
    from core.tto.observations import from_npz

    settings = settings or EvalSettings()
    classes = {} if classes is None else classes
    rows: list[dict[str, Any]] = []
    for i, shape in enumerate(shapes):
        row: dict[str, Any] = {"id": shape.id, "class": shape.class_name, "losses": config.losses}
        try:
            t0 = time.perf_counter()
            gt = load_ground_truth(shape.file)
            seconds_class = 0.0  # class inference done for an earlier loss set, not timed in t0 here
            if settings.use_trained_codes:
                code, colour, trained_condition = trained_codes(model, shape)
                result = TTOResult(code, colour, shape.class_name, config=config)
                row.update(class_source="trained", class_pred=shape.class_name, class_correct=None)
                t_fit0 = time.perf_counter()
            else:
                obs = from_npz(shape.file)
                key = (shape.class_name, shape.id)
                step = None if on_step is None else (lambda progress, _s=shape: on_step(_s, progress))
                choice = classes.get(key)
                if choice is None:
                    choice = choose_class(model, shape, obs, config, settings, cancel, step)
                    classes[key] = choice
                else:
                    seconds_class = choice.seconds
                row.update(_class_fields(shape, choice, model))
                t_fit0 = time.perf_counter()
                result = fit(model, obs, config, callback=step, class_name=choice.class_name, text=choice.text,
                             seed=settings.seed, cancel=cancel, every=max(1, config.iterations // 10))
                if result.cancelled:
                    break
            t_mesh0 = time.perf_counter()
            used = model.with_decoder(result.decoder_override)
            if settings.use_trained_codes:
                condition = None if trained_condition is None else trained_condition.to(used.device)
            else:
                condition = used.condition(class_name=result.class_name, text=result.text)
            sdf_fn = used.sdf_fn(result.shape_code, condition)
            if settings.iso_level:  # shifted, so the narrow band of coarse_to_fine follows the level
                sdf_fn = _shifted(sdf_fn, settings.iso_level)
            mesh = extract_mesh(sdf_fn, settings.resolution,
                                used.colour_fn(result.shape_code, result.colour_code, condition),
                                method=settings.mesh_method, device=used.device)  # where the model is
            t_metrics0 = time.perf_counter()
            source = shape_source_mesh(shape, gt)
            mask, mask_from = shape_thin_mask(shape, gt, source)
            metrics = evaluate_reconstruction(gt, mesh, thin_mask=mask, n_points=settings.n_eval_points,
                                              rng=settings.seed, free_distance=free_space_distance(settings.resolution))
            metrics.update(grid_reference_fields(source, metrics.get("floaters"), settings, gt, mask))
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
        except SHAPE_ERRORS as exc:
            if progress is None:
                log.warning("%s/%s: %s", shape.class_name, shape.id, exc)
            row.update(error=str(exc) or type(exc).__name__, chamfer_x1e3=math.nan)
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(shapes), row)
    return rows


def _shifted(sdf_fn: Callable[[Any], Any], level: float) -> Callable[[Any], Any]:
    """``sdf_fn - level``: its zero set is ``sdf_fn``'s ``level`` set."""
    return lambda points: sdf_fn(points) - level


def _agg(values: list[float], how: str) -> float:
    vals = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if len(vals) == 0:
        return math.nan
    if how == "median":
        return float(np.median(vals))
    if how == "pct":
        return float(100.0 * vals.mean())
    return float(vals.mean())


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per class (and ``all``): n and every table column's aggregate."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["class"], []).append(row)
    groups = dict(sorted(groups.items()))
    groups["all"] = list(rows)
    out: dict[str, dict[str, float]] = {}
    for name, group in groups.items():
        entry: dict[str, float] = {"n": len(group), "n_failed": sum(1 for r in group if "error" in r)}
        for key, header, how in TABLE_COLUMNS:
            entry[header] = _agg([r.get(key) for r in group], how)
        accuracy = [r["class_correct"] for r in group if r.get("class_correct") is not None]
        if accuracy:
            entry["class accuracy %"] = 100.0 * float(np.mean(accuracy))
        elif any(r.get("class_source") == "inferred" for r in group):
            entry["class accuracy %"] = math.nan  # inferred, but the true class is unknown to the model
        elif any(r.get("class_source") == "given" for r in group):
            entry["class accuracy %"] = "given"  # nothing was inferred: no accuracy to report
        out[name] = entry
    return out


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def class_table_markdown(summary: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per class, then ``all``."""
    headers = ["class", "n"] + [h for _, h, _ in TABLE_COLUMNS]
    if any("class accuracy %" in s for s in summary.values()):
        headers.append("class accuracy %")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for name, entry in summary.items():
        cells = [f"**{name}**" if name == "all" else name] + [_fmt(entry.get(h)) for h in headers[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_markdown(summaries: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: one row per loss set (all classes together)."""
    headers = ["losses", "n"] + [h for _, h, _ in TABLE_COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for losses, summary in summaries.items():
        entry = summary["all"]
        lines.append("| " + " | ".join([losses] + [_fmt(entry.get(h)) for h in headers[1:]]) + " |")
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, rows: Sequence[dict[str, Any]], config: TTOConfig, settings: EvalSettings,
                  meta: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """``results.csv`` (per shape), ``summary.md`` (per class), ``results.json``; returns the summary."""
    out_dir = Path(out_dir)
    summary = summarise(rows)
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key not in keys:
                keys.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in keys})
    atomic_write_bytes(out_dir / "results.csv", buffer.getvalue().encode("utf-8"))
    title = f"# Reconstruction, losses = {config.losses}\n\n"
    atomic_write_bytes(out_dir / "summary.md", (title + class_table_markdown(summary)).encode("utf-8"))
    atomic_write_json(out_dir / "results.json", {
        "meta": meta or {},
        "config": config.to_dict(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(settings).items()},
        "summary": json_safe(summary),
        "rows": json_safe(list(rows)),
    })
    return summary


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and non-finite floats as None / "inf" / "-inf" (JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def run_ablation(
    model: TrainedModel,
    shapes: Sequence[EvalShape],
    loss_sets: Iterable[str],
    base_config: TTOConfig,
    settings: EvalSettings,
    out_dir: Path,
    progress: Callable[[str, int, int, dict[str, Any]], None] | None = None,
    meta: dict[str, Any] | None = None,
    cancel: Any = None,
    on_step: Callable[[EvalShape, Any], None] | None = None,
) -> tuple[dict[str, dict[str, dict[str, float]]], str]:
    """Evaluate each loss set on the same shapes (same seed, same class per shape: it is chosen
    once, by the first loss set, and shared); ``<out>/<losses>/`` each with ``meta`` in its
    results.json, plus ``ablation.md`` / ``ablation.json``. Returns the summaries and the table."""
    out_dir = Path(out_dir)
    summaries: dict[str, dict[str, dict[str, float]]] = {}
    classes: dict[tuple[str, str], ClassChoice] = {}
    for losses in loss_sets:
        config = base_config.with_losses(losses)
        cb = None if progress is None else (lambda i, n, row, _l=losses: progress(_l, i, n, row))
        rows = evaluate_split(model, shapes, config, settings, out_dir / losses.replace(",", "+"), cb,
                              cancel=cancel, classes=classes, on_step=on_step)
        summaries[losses] = write_results(out_dir / losses.replace(",", "+"), rows, config, settings,
                                          {**(meta or {}), "losses": losses})
    table = comparison_markdown(summaries)
    atomic_write_bytes(out_dir / "ablation.md", ("# Loss ablation\n\n" + table).encode("utf-8"))
    atomic_write_json(out_dir / "ablation.json", json_safe(summaries))
    return summaries, table


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
    (:func:`approximate_thin_mask`); a cloud without normals gets estimated ones.

    Returns
    -------
    :func:`core.evaluation.metrics.evaluate_reconstruction`'s dict, or ``{}`` when the observation has fewer
    than 10 surface points (a sample file or scan without a surface: nothing to compare with).
    """
    from core.evaluation.metrics import evaluate_reconstruction
    from core.meshing import extract_mesh
    from core.tto.observations import estimate_normals

    if not observation.has_surface or len(observation.surface_points) < 10:
        return {}
    points = np.asarray(observation.surface_points, np.float64)
    normals = observation.surface_normals
    normals = estimate_normals(points) if normals is None else np.asarray(normals, np.float64)
    if mesh is None:
        mesh = extract_mesh(model.sdf_fn(shape_code, condition), resolution,
                            model.colour_fn(shape_code, colour_code, condition), device=model.device,
                            mc_backend=mc_backend)
    gt = {"surface_points": points, "surface_normals": normals}
    if observation.surface_colours is not None:
        gt["surface_rgb"] = observation.surface_colours
    return evaluate_reconstruction(gt, mesh, thin_mask=approximate_thin_mask(points, normals), n_points=n_points)
