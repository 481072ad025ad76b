"""The shapes of a data set split to evaluate: :class:`EvalShape` records read from the data set's index.

The manifest and split files are read through :mod:`core.data.manifest` (their one owner); this module
only picks the shapes of one split, class filter and per-class limit applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from core.data.manifest import check_record, load_manifest, manifest_path, split_keys
from core.utils.errors import DataSetError

__all__ = ["EvalShape", "list_split"]


@dataclass
class EvalShape:
    """One shape of a split: its sample file (observation and ground truth) and, when known, its source mesh."""

    id: str
    class_name: str
    file: Path
    source: Path | None
    text: str | None = None
    view: str | None = None
    """A partial-scan evaluation's camera (a name of :data:`core.tto.scan.SCAN_DIRECTIONS`); None: the full
    observation."""


def list_split(
    data_dir: str | Path, split: str = "test", limit: int | None = None, classes: Sequence[str] | None = None
) -> list[EvalShape]:
    """Shapes of ``split`` from ``<data>/manifest.json`` (and ``splits/<split>.json`` when present).

    ``limit`` keeps the first N shapes per class, in manifest order.

    Raises
    ------
    DataSetError
        No manifest or a damaged one, a record whose class or id cannot name a file, or no shape in the split.
    """
    data_dir = Path(data_dir)
    manifest = load_manifest(data_dir)
    wanted = split_keys(data_dir, split)
    shapes: list[EvalShape] = []
    per_class: dict[str, int] = {}
    for number, record in enumerate(manifest["shapes"], 1):
        check_record(manifest_path(data_dir), number, record)
        key = (record["class_name"], record["id"])
        in_split = key in wanted if wanted is not None else record.get("split") == split
        if not in_split or (classes and record["class_name"] not in classes):
            continue
        if limit is not None and per_class.get(record["class_name"], 0) >= limit:
            continue
        per_class[record["class_name"]] = per_class.get(record["class_name"], 0) + 1
        source = record.get("source")
        shapes.append(
            EvalShape(
                record["id"],
                record["class_name"],
                data_dir / record["file"],
                Path(source) if source else None,
                record.get("text"),
            )
        )
    if not shapes:
        raise DataSetError(
            f"{data_dir}: no shapes in split '{split}'"
            + (f" for classes {list(classes)}" if classes else "")
            + ". Check --split (train / test) and that preprocessing held shapes out (--test-fraction)."
        )
    return shapes
