"""An evaluation's results as tables and files: per-class summaries, markdown tables, ``results.*``.

:func:`summarise` aggregates the rows of :func:`core.evaluation.loop.evaluate_split` per class (the columns
of :data:`TABLE_COLUMNS`), :func:`class_table_markdown` / :func:`comparison_markdown` lay them out with the
project's one table builder (:func:`core.utils.markdown.markdown_table`), and :func:`write_results` writes
``results.csv``, ``summary.md`` and ``results.json``, marking a cancelled run's partial rows as such.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.evaluation.loop import SplitRows
from core.evaluation.settings import EvalSettings
from core.tto.config import TTOConfig
from core.utils.io_utils import atomic_write_bytes, atomic_write_json
from core.utils.markdown import markdown_table

__all__ = [
    "TABLE_COLUMNS",
    "summarise",
    "class_table_markdown",
    "comparison_markdown",
    "partial_note",
    "write_results",
]

TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (row key, header, format)
    ("chamfer_x1e3", "CD×10³ mean", "mean"),
    ("chamfer_x1e3", "CD×10³ median", "median"),
    ("fscore_1pct", "F@1 %", "pct"),
    ("fscore_2pct", "F@2 %", "pct"),
    ("thin_fscore_1pct", "thin F@1 %", "pct"),
    ("unseen_fscore_1pct", "unseen F@1 %", "pct"),  # partial scans: the side the camera did not see
    ("normal_consistency", "NC", "mean"),
    ("colour_l1", "colour L1", "mean"),
    ("colour_psnr", "PSNR dB", "mean"),
    ("colour_delta_e", "ΔE00", "mean"),
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

Summary = dict[str, dict[str, float | str]]
"""Per group (a class, or "all"): column header -> mean / median (or "given" for a class accuracy not inferred)."""


def _agg(values: list[float | None], how: str) -> float:
    vals = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if len(vals) == 0:
        return math.nan
    if how == "median":
        return float(np.median(vals))
    if how == "pct":
        return float(100.0 * vals.mean())
    return float(vals.mean())


def summarise(rows: Sequence[dict[str, Any]]) -> Summary:
    """Per class (and ``all``): n and every table column's aggregate."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["class"], []).append(row)
    groups = dict(sorted(groups.items()))
    groups["all"] = list(rows)
    out: Summary = {}
    for name, group in groups.items():
        entry: dict[str, float | str] = {"n": len(group), "n_failed": sum(1 for r in group if "error" in r)}
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
    """A summary cell: three decimals below 100, one above (CD×10³ and NC need the third); NaN as "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def class_table_markdown(summary: Summary) -> str:
    """Markdown table: one row per class, then ``all``."""
    headers = ["class", "n"] + [h for _, h, _ in TABLE_COLUMNS]
    if any("class accuracy %" in s for s in summary.values()):
        headers.append("class accuracy %")
    rows = [
        [f"**{name}**" if name == "all" else name] + [_fmt(entry.get(h)) for h in headers[1:]]
        for name, entry in summary.items()
    ]
    return markdown_table(headers, rows) + "\n"


def comparison_markdown(summaries: dict[str, Summary]) -> str:
    """Markdown table: one row per loss set (all classes together)."""
    headers = ["losses", "n"] + [h for _, h, _ in TABLE_COLUMNS]
    rows = [[losses] + [_fmt(summary["all"].get(h)) for h in headers[1:]] for losses, summary in summaries.items()]
    return markdown_table(headers, rows) + "\n"


def partial_note(rows: Sequence[dict[str, Any]]) -> str | None:
    """ "Cancelled after k of n shapes ..." for the rows of a cancelled run, None for a complete one."""
    if not (isinstance(rows, SplitRows) and rows.cancelled):
        return None
    return (
        f"Cancelled after {len(rows)} of {rows.n_shapes} shapes: partial results, the shapes not reached "
        "are missing from every table."
    )


def write_results(
    out_dir: Path,
    rows: Sequence[dict[str, Any]],
    config: TTOConfig,
    settings: EvalSettings,
    meta: dict[str, Any] | None = None,
) -> Summary:
    """``results.csv`` (per shape), ``summary.md`` (per class), ``results.json``; returns the summary.

    Rows of a cancelled run (:attr:`core.evaluation.loop.SplitRows.cancelled`) are written as they are, with
    ``cancelled: true`` and the planned ``n_shapes`` in ``results.json`` and a line saying so in ``summary.md``.
    """
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
    note = partial_note(rows)
    title = f"# Reconstruction, losses = {config.losses}\n\n" + (f"**{note}**\n\n" if note else "")
    atomic_write_bytes(out_dir / "summary.md", (title + class_table_markdown(summary)).encode("utf-8"))
    atomic_write_json(
        out_dir / "results.json",
        {
            "meta": meta or {},
            "cancelled": note is not None,
            "n_shapes": rows.n_shapes if isinstance(rows, SplitRows) else len(rows),
            "config": config.to_dict(),
            "settings": asdict(settings),
            "summary": summary,
            "rows": list(rows),
        },
    )
    return summary
