"""The data set's index: ``manifest.json`` and ``splits/{train,test}.json``, written and read here only.

Why one owner: preprocessing wrote the manifest while training, evaluation and the preprocess command
each parsed it their own way, with different errors for one bad file. Layout of ``<data>/manifest.json``::

    {"format": 1, "name": "<data set name>", "classes": [sorted class names],
     "preprocess": {the PreprocessConfig it was made with},
     "shapes": [{"id", "class_name", "source", "text", "split", "file" (relative to <data>), "stats",
                 optional "extra"}, ...]}

and ``splits/<split>.json`` is DeepSDF's split file, ``{"<data set name>": {"<class>": [ids]}}``. Writes
are atomic (:func:`core.utils.io_utils.atomic_write_json`): a killed run leaves the old index or the new.
Reading raises :class:`~core.utils.errors.DataSetError` naming the file, what is wrong and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.utils.errors import DataSetError
from core.utils.io_utils import atomic_write_json

__all__ = [
    "manifest_classes",
    "MANIFEST_NAME",
    "MANIFEST_FORMAT",
    "manifest_path",
    "split_path",
    "load_manifest",
    "check_record",
    "split_keys",
    "write_index",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
"""Written into every manifest; readers accept the records described above whatever the number."""

_FIX = "Re-run `python main.py preprocess --source ... --out DIR` to rewrite it"


def manifest_path(data_dir: str | Path) -> Path:
    """``<data>/manifest.json``."""
    return Path(data_dir) / MANIFEST_NAME


def split_path(data_dir: str | Path, split: str) -> Path:
    """``<data>/splits/<split>.json`` (DeepSDF's split file)."""
    return Path(data_dir) / "splits" / f"{split}.json"


def load_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The manifest of the data set in ``data_dir``, a dict with a ``shapes`` list.

    Raises
    ------
    DataSetError
        No manifest (``data_dir`` is not a preprocessed data set, or is a file), an unreadable one,
        one that is not JSON, or one without a ``shapes`` list.
    """
    path = manifest_path(data_dir)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:  # DATA a file, or the manifest a folder
        raise DataSetError(
            f"{path}: missing; {data_dir} has no {MANIFEST_NAME}, so it is not a preprocessed data "
            "set. Point --data at a folder written by `python main.py preprocess --source ... "
            "--out DIR`, or run that first."
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataSetError(
            f"{path}: unreadable ({exc}). Check the file's permissions; if it is damaged, "
            "re-run preprocessing to rewrite it."
        ) from exc
    except json.JSONDecodeError as exc:
        raise DataSetError(f"{path}: not valid JSON ({exc}). {_FIX}.") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shapes"), list):
        raise DataSetError(f"{path}: no 'shapes' list, so not a manifest written by `main.py preprocess`. {_FIX}.")
    return manifest


def check_record(path: str | Path, number: int, record: Any) -> None:
    """Refuse manifest record ``number`` (1-based) of ``path`` unless it has a class, an id and a file, and its
    class and id can name files: they name saved meshes (``meshes/<class>/<id>.ply``), so ``../..`` would
    write outside the output folder."""
    from core.utils.names import path_component_problem

    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("class_name", "id", "file")):
        raise DataSetError(f"{path}: shape {number} lacks a class_name, id or file. {_FIX}.")
    for what in ("class_name", "id"):
        problem = path_component_problem(record[what])
        if problem:
            raise DataSetError(
                f"{path}: shape {number}: {what} {record[what][:60]!r} {problem}, so it cannot name a file. {_FIX}."
            )


def split_keys(data_dir: str | Path, split: str) -> set[tuple[str, str]] | None:
    """(class, id) of every shape ``splits/<split>.json`` lists; None when there is no such file or it cannot
    be read (the manifest records' own ``split`` field decides then)."""
    path = split_path(data_dir, split)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {(c, i) for per_set in data.values() for c, ids in per_set.items() for i in ids}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None


def write_index(
    out_dir: str | Path, name: str, preprocess: dict[str, Any], records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Write ``manifest.json`` for ``records`` and ``splits/{train,test}.json`` from their ``split`` fields;
    returns the manifest.

    A record's file under ``SdfSamples/<set>/<class>/`` puts its id under ``<set>`` in the split files (shapes
    an earlier run wrote under another set name keep it), else under ``name``.
    """
    out_dir = Path(out_dir)
    classes: list[str] = []
    splits: dict[str, dict[str, dict[str, list[str]]]] = {"train": {}, "test": {}}
    for record in records:
        if record["class_name"] not in classes:
            classes.append(record["class_name"])
        parts = Path(record["file"]).parts
        set_name = parts[1] if len(parts) == 4 and parts[0] == "SdfSamples" else name
        split = splits.setdefault(record.get("split", "train"), {})
        split.setdefault(set_name, {}).setdefault(record["class_name"], []).append(record["id"])
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "classes": sorted(classes),
        "preprocess": preprocess,
        "shapes": records,
    }
    atomic_write_json(manifest_path(out_dir), manifest)
    for split_name, split in splits.items():
        atomic_write_json(split_path(out_dir, split_name), split or {name: {}})
    return manifest


def manifest_classes(manifest: dict) -> list[str]:
    """The data set's classes in their manifest order (the ``classes`` list), else its shapes' classes sorted."""
    return list(manifest.get("classes") or sorted({r["class_name"] for r in manifest["shapes"]}))
