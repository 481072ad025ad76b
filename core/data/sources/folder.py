"""A plain folder of meshes as a data source: the class is the name of the first sub-folder.

``root/chair/a.obj``, ``root/chair/set2/b.glb`` and ``root/lamp/c.ply`` give two classes.
Symbolic links are followed (to class folders, sub-folders and mesh files), so a data set can be
assembled from links into other folders; a link back to a folder already visited is not
followed twice.

Ids are unique within a class by construction: the path below the class folder with every run
of characters other than (Unicode) letters, digits, ``-`` and ``_`` replaced by ``_``; paths that
would give the same id (``x.obj`` beside ``x.glb``, ``a b.ply`` beside ``a_b.ply``) each get a
short hash of their path appended.

The train/test split is drawn from a hash of each shape's id, so adding files never moves
an existing shape from one split to the other. By default 20 % of each class is held out.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from core.data.mesh_io import MESH_SUFFIXES, has_mesh_suffix
from core.data.sources.jobs import MeshJob
from core.utils.errors import SourceError

__all__ = ["folder_jobs", "stable_split", "safe_id", "unique_ids"]


def safe_id(text: str) -> str:
    """A file-name-safe shape id: (Unicode) letters, digits, ``-`` and ``_`` only."""
    cleaned = re.sub(r"[^\w-]+", "_", text).strip("_")
    return cleaned or "shape"


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def unique_ids(relative_paths: list[str]) -> list[str]:
    """One id per path (ids of one class): :func:`safe_id`, plus ``-<hash of the path>`` where two collide."""
    ids = [safe_id(str(Path(rel).with_suffix(""))) for rel in relative_paths]
    counts: dict[str, int] = {}
    for shape_id in ids:
        counts[shape_id] = counts.get(shape_id, 0) + 1
    return [
        f"{shape_id}-{_short_hash(rel)}" if counts[shape_id] > 1 else shape_id
        for shape_id, rel in zip(ids, relative_paths, strict=True)
    ]


def _mesh_files(class_dir: Path) -> list[Path]:
    """Mesh files below ``class_dir``, following symbolic links, each real folder once."""
    found: list[Path] = []
    visited: set[str] = set()
    for folder, dirs, files in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link cycle or a second link to the same folder
            dirs[:] = []
            continue
        visited.add(real)
        dirs.sort()
        for name in files:
            path = Path(folder) / name
            if has_mesh_suffix(path) and path.is_file():  # is_file: a link to a file, not broken
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(class_dir).as_posix())


def stable_split(shape_id: str, test_fraction: float) -> str:
    """``"test"`` for a fixed ``test_fraction`` of ids, decided by a hash of the id alone."""
    digest = hashlib.sha1(shape_id.encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if unit < test_fraction else "train"


def folder_jobs(root: str | Path, test_fraction: float = 0.2, classes: list[str] | None = None) -> list[MeshJob]:
    """Mesh jobs for every mesh file below ``root/<class>/``.

    Parameters
    ----------
    root
        Folder whose sub-folders are classes.
    test_fraction
        Fraction of each class held out as test shapes (by id hash), in [0, 1); default 20 %.
    classes
        Keep only these classes (all when ``None``).
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: mesh folder not found. Give a folder with one sub-folder per class.")
    if not 0.0 <= test_fraction < 1.0:
        raise SourceError(f"test fraction {test_fraction}: must be in [0, 1) (0.2 holds out 20 % of each class).")
    jobs: list[MeshJob] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):  # is_dir follows links
        if classes and class_dir.name not in classes:
            continue
        paths = _mesh_files(class_dir)
        relative = [path.relative_to(class_dir).as_posix() for path in paths]
        for path, shape_id in zip(paths, unique_ids(relative), strict=True):
            jobs.append(
                MeshJob(
                    id=shape_id,
                    class_name=class_dir.name,
                    source=path,
                    text=None,
                    split=stable_split(f"{class_dir.name}/{shape_id}", test_fraction),
                )
            )
    if not jobs:
        raise SourceError(
            f"{root}: no mesh files ({', '.join(MESH_SUFFIXES)}) in class sub-folders. "
            "Put meshes in root/<class>/ folders."
        )
    return jobs
