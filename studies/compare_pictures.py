"""Side-by-side pictures: ground truth next to each checkpoint's reconstruction, with numbers.

Rows are shapes of a data set made by ``main.py preprocess`` (the built-in synthetic set, the
Sweet Home 3D set, a folder of meshes), columns are the ground-truth mesh in its own colours and
then one column per checkpoint, each shape meshed with the model's colour head. Every cell
carries its F@1 % and thin-part F@1 % against the ground truth, measured exactly as
``main.py evaluate`` measures (the sample file's surface points, :func:`core.evaluation.thin_masks.shape_thin_mask`,
:func:`core.evaluation.metrics.evaluate_reconstruction`), and the same numbers go into a JSON file beside
the PNG. So a before/after picture of a training recipe, or real reconstructions next to their
ground truth, shows what the tables say.

* ``--split train``: each checkpoint's trained code of the shape (looked up by id and class); a
  checkpoint that never saw the shape gets an empty cell labelled "not trained".
* ``--floaters``: every reconstruction in grey with its floating fragments in red
  (:func:`core.evaluation.metrics.mesh_components`' rule), and a column "exact SDF on the grid": the source
  mesh's exact signed distance meshed on the same grid (:mod:`core.evaluation.grid_reference`), so a floater
  the grid makes anyway is told from one the decoder adds.
* ``--split test``: the codes (shape and colour) are fitted by test-time optimisation with
  :func:`core.tto.fit` under the viewer's defaults (300 iterations, 4,000 samples a step,
  lr 1e-2 (``INTERACTIVE_LR``), DeepSDF's baseline losses, or a column's own loss set by ``--losses NAME=SET``), under
  the shape's labelled class.

Run from the repository root under a display (VTK renders off screen but needs one)::

    bash scripts/with_display.sh .venv/bin/python -m studies.compare_pictures --data data/study_base \\
        --ckpt demo=resources/demo/demo.pt --split train --out docs/img/compare_demo_train.png
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.evaluation.figures import floater_painted, label_grid, render_grid
from core.tto.config import INTERACTIVE_ITERATIONS, INTERACTIVE_LR, INTERACTIVE_SAMPLES
from core.utils.errors import DataSetError, ExplorerError
from core.utils.io_utils import atomic_write_bytes, atomic_write_json
from core.utils.json_safe import json_safe

ROOT = Path(__file__).resolve().parents[1]
CELL = 260
"""Pixels per rendered cell (square); :func:`core.evaluation.figures.label_grid` adds the labels around them."""
MAX_SURFELS = 8000
"""Ground-truth points drawn when the source mesh is gone (a picture needs no more)."""
GRID_TITLE = "exact SDF on the grid"
"""Title of the ``--floaters`` column."""


class CompareError(ExplorerError):
    """A bad argument of this script (a checkpoint spec, a shape id, a number out of range)."""


@dataclass
class Column:
    """One checkpoint column: its title, file and loaded model."""

    name: str
    path: Path
    model: Any = None
    losses: str = "baseline"
    """The TTO loss set this column's test-split fits use (``--losses NAME=SET``)."""


@dataclass
class Cell:
    """One reconstruction: mesh arrays for the picture and metrics for the picture and the JSON."""

    status: str
    """``ok``, ``not trained``, ``empty`` (no surface) or ``failed``."""
    mesh: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


# --- arguments ------------------------------------------------------------------------------


def parse_checkpoints(specs: Sequence[str]) -> list[Column]:
    """``NAME=PATH`` specs → columns, checked before any work (names unique, files present)."""
    columns: list[Column] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise CompareError(f"--ckpt {spec!r}: expected NAME=PATH (e.g. --ckpt demo=resources/demo/demo.pt).")
        if any(c.name == name for c in columns):
            raise CompareError(f"--ckpt {spec!r}: the name {name!r} is used twice; give each checkpoint its own name.")
        if not Path(path).is_file():
            raise CompareError(
                f"--ckpt {spec!r}: {path} does not exist; point it at a checkpoint (.pt) written by 'main.py train'."
            )
        columns.append(Column(name, Path(path)))
    if not columns:
        raise CompareError("no --ckpt given; add at least one --ckpt NAME=PATH.")
    return columns


def apply_column_losses(columns: list[Column], specs: Sequence[str], split: str) -> None:
    """``NAME=LOSSES`` specs (``--losses``) → each named column's TTO loss set, checked before any work."""
    from core.tto.config import parse_losses

    if specs and split != "test":
        raise CompareError(
            "--losses sets the TTO losses of test-split fits; the train split uses trained codes. "
            "Add --split test or drop --losses."
        )
    names = [c.name for c in columns]
    for spec in specs:
        name, sep, losses = spec.partition("=")
        name, losses = name.strip(), losses.strip()
        if not sep or name not in names:
            raise CompareError(
                f"--losses {spec!r}: expected NAME=LOSSES with NAME one of the --ckpt names "
                f"({', '.join(names)}), e.g. --losses '{names[0]}=finetune'."
            )
        try:
            parse_losses(losses)
        except ExplorerError as exc:
            raise CompareError(f"--losses {spec!r}: {exc}") from exc
        columns[names.index(name)].losses = losses


def select_shapes(data_dir: Path, split: str, shape_ids: Sequence[str] | None, per_class: int) -> list[Any]:
    """The rows: ``shape_ids`` (``id`` or ``class/id``) in that order, else the first ``per_class`` per class.

    Raises
    ------
    CompareError
        An id not in the split (naming the split it is in, when it is in the other one).
    DataSetError
        No manifest, or an empty split (from :func:`core.evaluation.held_out_split.list_split`).
    """
    from core.evaluation.held_out_split import list_split

    if per_class < 1:
        raise CompareError(f"--per-class {per_class}: must be at least 1.")
    if not shape_ids:
        return list_split(data_dir, split, limit=per_class)
    shapes = list_split(data_dir, split)
    by_key = {s.id: s for s in shapes} | {f"{s.class_name}/{s.id}": s for s in shapes}
    missing = [i for i in shape_ids if i not in by_key]
    if missing:
        other = "test" if split == "train" else "train"
        try:
            other_shapes = list_split(data_dir, other)
        except DataSetError:
            other_shapes = []
        elsewhere = {s.id for s in other_shapes} | {f"{s.class_name}/{s.id}" for s in other_shapes}
        hints = [
            f"{i!r}" + (f" (it is in split '{other}': use --split {other})" if i in elsewhere else "") for i in missing
        ]
        examples = ", ".join(s.id for s in shapes[:5])
        raise CompareError(
            f"--shapes: unknown shape id {', '.join(hints)} in split '{split}' of {data_dir}; "
            f"ids there look like: {examples} (see {data_dir / 'manifest.json'})."
        )
    return [by_key[i] for i in shape_ids]


# --- ground truth ---------------------------------------------------------------------------


def _source_path(shape: Any, data_dir: Path) -> Path | None:
    """The shape's source mesh: as recorded (relative to the working folder), else relative to the repository."""
    if shape.source is None:
        return None
    for candidate in (Path(shape.source), ROOT / shape.source, data_dir / shape.source):
        if candidate.is_file():
            return candidate
    return None


def ground_truth_picture(shape: Any, gt: dict[str, np.ndarray], data_dir: Path) -> tuple[tuple, str]:
    """(vertices, faces, colours) of the ground truth in the unit-sphere frame, and what it is.

    The source mesh with per-face colours (texture, material, vertex or face colour sampled at
    each face's centre) when it is there, moved by the sample file's own normalisation so it
    lines up with the reconstructions; else the sample file's surface points as small coloured
    triangles (surfels).
    """
    from core.data.mesh_io import load_mesh
    from core.data.normalization import Normalization, normalize_mesh

    path = _source_path(shape, data_dir)
    if path is not None:
        try:
            mesh = load_mesh(path)
            if "offset" in gt and "scale" in gt:
                vertices = Normalization(offset=gt["offset"], scale=float(gt["scale"])).apply(mesh.vertices)
            else:
                vertices = normalize_mesh(mesh)[0].vertices
            fi = np.arange(len(mesh.faces))
            face_rgb = mesh.colours_at(fi, np.full((len(fi), 3), 1.0 / 3.0))
            return (np.asarray(vertices, np.float32), mesh.faces, face_rgb), "mesh"
        except (ExplorerError, OSError, ValueError):
            pass  # the surface points below still show the shape
    return surfels(gt["surface_points"], gt["surface_normals"], gt.get("surface_rgb")), "surface points"


def surfels(
    points: np.ndarray, normals: np.ndarray, rgb: np.ndarray | None, radius: float = 0.02
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A point cloud as one small triangle per point, facing along its normal.

    ``points``, ``normals`` (N, 3); ``rgb`` (N, 3) in [0, 1] or None. Returns vertices (3M, 3),
    faces (M, 3), per-vertex colours (3M, 3) or None, M = min(N, MAX_SURFELS).
    """
    rng = np.random.default_rng(0)
    keep = rng.choice(len(points), size=min(len(points), MAX_SURFELS), replace=False)
    p, n = np.asarray(points, np.float64)[keep], np.asarray(normals, np.float64)[keep]
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(n, helper)
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    v = np.cross(n, u)
    angles = 2 * np.pi * np.arange(3) / 3
    cos, sin = np.cos(angles)[None, :, None], np.sin(angles)[None, :, None]
    corners = p[:, None] + radius * (cos * u[:, None] + sin * v[:, None])  # (M, 3 corners, 3)
    vertices = corners.reshape(-1, 3).astype(np.float32)
    faces = np.arange(len(vertices), dtype=np.int64).reshape(-1, 3)
    colours = None if rgb is None else np.repeat(np.asarray(rgb, np.float32)[keep], 3, axis=0)
    return vertices, faces, colours


# --- reconstructions ------------------------------------------------------------------------


def reconstruct(
    model: Any,
    shape: Any,
    gt: dict[str, np.ndarray],
    thin_mask: np.ndarray,
    split: str,
    tto_config: Any,
    resolution: int,
    seed: int = 0,
) -> Cell:
    """One cell: the shape's codes (trained or fitted), meshed with colours and measured."""
    from core.evaluation.class_choice import choose_class
    from core.evaluation.loop import trained_codes
    from core.evaluation.metrics import evaluate_reconstruction
    from core.evaluation.settings import EvalSettings
    from core.meshing import extract_mesh
    from core.tto import fit, from_npz

    if split == "train":
        try:
            shape_code, colour_code, condition = trained_codes(model, shape)
        except DataSetError:
            return Cell("not trained")
        used = model  # as the evaluation does for trained codes: the condition the shape was trained with
    else:
        obs = from_npz(shape.file)
        choice = choose_class(model, shape, obs, tto_config, EvalSettings(seed=seed))
        result = fit(
            model,
            obs,
            tto_config,
            class_name=choice.class_name,
            text=choice.text,
            seed=seed,
            every=tto_config.iterations,
        )
        shape_code, colour_code = result.shape_code, result.colour_code
        used = model.with_decoder(result.decoder_override)
        condition = used.condition(class_name=result.class_name, text=result.text)
    colour_fn = used.colour_fn(shape_code, colour_code, condition) if used.has_colour else None
    mesh = extract_mesh(used.sdf_fn(shape_code, condition), resolution, colour_fn, device=used.device)
    metrics = evaluate_reconstruction(gt, mesh, thin_mask=thin_mask, rng=seed)
    if mesh.is_empty:
        return Cell("empty", None, _summary(metrics))
    return Cell("ok", (mesh.vertices, mesh.faces, mesh.colours), _summary(metrics))


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers kept per cell (percentages for the scores, Chamfer × 10³ as the tables report it)."""

    def pct(key: str) -> float | None:
        value = metrics.get(key)
        return None if value is None or not math.isfinite(value) else round(100.0 * float(value), 2)

    chamfer = metrics.get("chamfer")
    return {
        "fscore_1pct": pct("fscore_1pct"),
        "thin_fscore_1pct": pct("thin_fscore_1pct"),
        "chamfer_x1e3": None if chamfer is None or not math.isfinite(chamfer) else round(1e3 * float(chamfer), 4),
        "colour_psnr": None if metrics.get("colour_psnr") is None else round(float(metrics["colour_psnr"]), 2),
        "colour_delta_e": None if metrics.get("colour_delta_e") is None else round(float(metrics["colour_delta_e"]), 2),
        "components": metrics.get("components"),
        "floaters": metrics.get("floaters"),
        "gt_components": metrics.get("gt_components"),
        "n_thin": metrics.get("n_thin"),
    }


# --- picture --------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def grid_reference_cell(source: Any, resolution: int) -> Cell:
    """The ``--floaters`` column: the source's exact SDF (``source``: a
    :class:`core.evaluation.grid_reference.SourceMesh`
    or None) meshed on the reconstructions' grid."""
    from core.evaluation.grid_reference import exact_sdf_mesh
    from core.evaluation.metrics import mesh_components

    if source is None:
        return Cell("failed", error="no source mesh to take the exact SDF of")
    mesh = exact_sdf_mesh(source, resolution)
    if mesh.is_empty:
        return Cell("empty", None, {"floaters": 0})
    stats = mesh_components(mesh.vertices, mesh.faces)
    return Cell(
        "ok", (mesh.vertices, mesh.faces, None), {"floaters": stats["floaters"], "components": stats["components"]}
    )


def caption(cell: Cell, floaters: bool = False) -> str:
    if cell.status == "not trained":
        return "not trained"
    if cell.status == "failed":
        return "failed (see JSON)"
    m = cell.metrics
    if floaters and m.get("fscore_1pct") is None:  # the exact-SDF column: nothing to score against itself
        return f"floaters {m.get('floaters')}  parts {m.get('components')}"
    if floaters:
        return f"F@1 {_fmt(m.get('fscore_1pct'))}  thin {_fmt(m.get('thin_fscore_1pct'))}  floaters {m.get('floaters')}"
    parts = "" if m.get("components") is None else f"  parts {m['components']}"
    return f"F@1 {_fmt(m.get('fscore_1pct'))}  thin {_fmt(m.get('thin_fscore_1pct'))}{_delta_e(m)}" + (
        "  (empty)" if cell.status == "empty" else parts
    )


def _delta_e(metrics: dict[str, Any]) -> str:
    """The caption's colour error (mean CIEDE2000, "dE00": the label font has no Greek), or nothing."""
    value = metrics.get("colour_delta_e")
    return "" if value is None else f"  dE00 {_fmt(value)}"


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return None if not vals else round(float(np.mean(vals)), 2)


# --- the whole run --------------------------------------------------------------------------


def compare(
    data_dir: Path,
    columns: list[Column],
    out: Path,
    split: str = "train",
    shape_ids: Sequence[str] | None = None,
    per_class: int = 1,
    resolution: int = 128,
    tto_iterations: int = INTERACTIVE_ITERATIONS,
    device: str | None = None,
    seed: int = 0,
    floaters: bool = False,
) -> dict[str, Any]:
    """Render ``out`` (PNG) and write ``out.with_suffix('.json')``; return the JSON's content.

    Arguments are checked (checkpoints, shapes, numbers) before any model is run. A shape whose
    reconstruction fails gets a ``failed`` cell with the reason in the JSON; the rest go on.
    """
    from tqdm import tqdm

    from core.evaluation.ground_truth import load_ground_truth, shape_source_mesh
    from core.evaluation.loop import SHAPE_ERRORS
    from core.evaluation.thin_masks import shape_thin_mask
    from core.model import load_trained_model
    from core.tto import TTOConfig

    if split not in ("train", "test"):
        raise CompareError(f"--split {split!r}: use train (trained codes) or test (fitted by TTO).")
    if resolution < 16:
        raise CompareError(f"--resolution {resolution}: use at least 16 (96 for a quick look, 128 as evaluate does).")
    if tto_iterations < 1:
        raise CompareError(f"--tto-iterations {tto_iterations}: must be at least 1.")
    if out.suffix.lower() != ".png":
        raise CompareError(f"--out {out}: the picture is written as PNG; give a path ending in .png.")
    shapes = select_shapes(data_dir, split, shape_ids, per_class)
    for column in columns:
        try:
            column.model = load_trained_model(column.path, device=device)
        except ExplorerError as exc:
            raise CompareError(f"--ckpt {column.name}={column.path}: {exc}") from exc
    tto_config = (
        None
        if split == "train"
        else TTOConfig(iterations=tto_iterations, n_samples=INTERACTIVE_SAMPLES, lr=INTERACTIVE_LR)
    )
    column_tto = {c.name: None if tto_config is None else tto_config.with_losses(c.losses) for c in columns}

    picture_rows, captions, json_rows = [], [], []
    with tqdm(total=len(shapes) * len(columns), desc="compare", unit="cell") as bar:
        for shape in shapes:
            try:
                gt = load_ground_truth(shape.file)
                source = shape_source_mesh(shape, gt)  # read once: thin mask and the --floaters column
                thin_mask, mask_from = shape_thin_mask(shape, gt, source)
                gt_mesh, gt_kind = ground_truth_picture(shape, gt, data_dir)
            except SHAPE_ERRORS as exc:  # a damaged sample file: the row says so, the others go on
                tqdm.write(f"{shape.class_name}/{shape.id}: {exc}")
                gt, source, thin_mask, mask_from, gt_mesh, gt_kind = None, None, np.zeros(0, bool), None, None, "failed"
            cells: dict[str, Cell] = {}
            for column in columns:
                if gt is None:
                    cells[column.name] = Cell("failed", error="ground truth unreadable (see the log)")
                    bar.update(1)
                    continue
                try:
                    cells[column.name] = reconstruct(
                        column.model, shape, gt, thin_mask, split, column_tto[column.name], resolution, seed
                    )
                except SHAPE_ERRORS as exc:
                    cells[column.name] = Cell("failed", error=str(exc) or type(exc).__name__)
                    tqdm.write(f"{shape.class_name}/{shape.id} with {column.name}: {cells[column.name].error}")
                bar.update(1)
            shown = [cells[c.name].mesh for c in columns]
            extra_cells: list[Cell] = []
            if floaters:
                grid = (
                    Cell("failed", error="ground truth unreadable")
                    if gt is None
                    else grid_reference_cell(source, resolution)
                )
                extra_cells = [grid]
                shown = [grid.mesh] + shown
                shown = [floater_painted(m) for m in shown]
            picture_rows.append([gt_mesh] + shown)
            gt_parts = next(
                (
                    cell.metrics["gt_components"]
                    for cell in cells.values()
                    if cell.metrics.get("gt_components") is not None
                ),
                None,
            )
            captions.append(
                [gt_kind + ("" if gt_parts is None else f"  parts {gt_parts}")]
                + [caption(c, floaters) for c in extra_cells]
                + [caption(cells[c.name], floaters) for c in columns]
            )
            json_rows.append(
                {
                    **({"gt_grid_floaters": extra_cells[0].metrics.get("floaters")} if floaters else {}),
                    "class": shape.class_name,
                    "id": shape.id,
                    "ground_truth": gt_kind,
                    "thin_mask_from": mask_from,
                    "n_thin": int(np.count_nonzero(thin_mask)),
                    "cells": {
                        name: {"status": cell.status, **cell.metrics, **({"error": cell.error} if cell.error else {})}
                        for name, cell in cells.items()
                    },
                }
            )

    means = {
        c.name: {
            key: _mean([r["cells"][c.name].get(key) for r in json_rows])
            for key in ("fscore_1pct", "thin_fscore_1pct", "colour_delta_e")
        }
        for c in columns
    }
    how = "trained codes" if split == "train" else f"TTO, {tto_iterations} iterations"
    titles = ["ground truth"] + ([GRID_TITLE] if floaters else []) + [c.name for c in columns]
    footers = (
        [""]
        + ([""] if floaters else [])
        + [
            f"F@1 {_fmt(means[c.name]['fscore_1pct'])}  thin {_fmt(means[c.name]['thin_fscore_1pct'])}"
            + _delta_e(means[c.name])
            for c in columns
        ]
    )
    with tempfile.TemporaryDirectory(prefix="compare_") as tmp:
        grid_png = Path(tmp) / "grid.png"
        render_grid(picture_rows, [], grid_png, size=CELL)
        png = label_grid(
            grid_png,
            titles,
            [f"{s.class_name}/{s.id}" for s in shapes],
            captions,
            footers,
            f"{split} split: {how}; F@1 % / thin F@1 % / " + ("floaters (red)" if floaters else "connected parts"),
        )
    atomic_write_bytes(out, png)
    report = {
        "data": str(data_dir),
        "split": split,
        "how": how,
        "resolution": resolution,
        "seed": seed,
        "checkpoints": {c.name: str(c.path) for c in columns},
        "tto": None if tto_config is None else tto_config.to_dict(),
        "tto_losses": None if tto_config is None else {c.name: c.losses for c in columns},
        "metrics": "percent for fscore_1pct / thin_fscore_1pct (core.evaluation.metrics, 1 % of the object size)",
        "mean": means,
        "floaters": floaters,
        "rows": json_rows,
    }
    atomic_write_json(out.with_suffix(".json"), json_safe(report))
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="data set folder written by 'main.py preprocess'")
    p.add_argument(
        "--ckpt",
        required=True,
        action="append",
        metavar="NAME=CKPT",
        help="a checkpoint column (repeat for more): its title and .pt file",
    )
    p.add_argument("--out", required=True, type=Path, help="PNG to write (its metrics go to the same name .json)")
    p.add_argument(
        "--split",
        default="train",
        choices=("train", "test"),
        help="train: trained codes; test: fitted by TTO (default: train)",
    )
    p.add_argument("--shapes", nargs="+", metavar="ID", help="shape ids (or class/id) in this order")
    p.add_argument("--per-class", type=int, default=1, help="without --shapes: the first K shapes per class")
    p.add_argument("--resolution", type=int, default=128, help="marching-cubes grid (default 128, as evaluate)")
    p.add_argument(
        "--tto-iterations",
        type=int,
        default=INTERACTIVE_ITERATIONS,
        help=f"test split: TTO steps (default {INTERACTIVE_ITERATIONS}, the viewer's)",
    )
    p.add_argument(
        "--losses",
        action="append",
        default=[],
        metavar="NAME=LOSSES",
        help="test split: the TTO loss set of column NAME (default baseline), e.g. 'mine=finetune'; "
        "the same checkpoint may fill two columns with different losses",
    )
    p.add_argument(
        "--floaters",
        action="store_true",
        help="paint floating fragments red and add the source's exact SDF meshed on the same grid",
    )
    p.add_argument("--device", default=None, help="cpu / cuda (default: CUDA when present)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        columns = parse_checkpoints(args.ckpt)
        apply_column_losses(columns, args.losses, args.split)
        report = compare(
            args.data,
            columns,
            args.out,
            args.split,
            args.shapes,
            args.per_class,
            args.resolution,
            args.tto_iterations,
            args.device,
            args.seed,
            args.floaters,
        )
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, mean in report["mean"].items():
        print(
            f"{name}: F@1 {_fmt(mean['fscore_1pct'])} %, thin F@1 {_fmt(mean['thin_fscore_1pct'])} % "
            f"over {len(report['rows'])} shapes"
        )
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
