"""A plain folder of meshes as a data source: the class is the name of the first sub-folder.

``root/chair/a.obj``, ``root/chair/set2/b.glb`` and ``root/lamp/c.ply`` give two classes.
The train/test split is drawn from a hash of each shape's id, so adding files never moves
an existing shape from one split to the other.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from core.datasets.jobs import MeshJob
from core.errors import SourceError

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")

__all__ = ["MESH_SUFFIXES", "folder_jobs", "stable_split", "safe_id"]


def safe_id(text: str) -> str:
    """A file-name-safe shape id: letters, digits, ``-`` and ``_`` only."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    return cleaned or "shape"


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
        Fraction of each class held out (by id hash).
    classes
        Keep only these classes (all when ``None``).
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: mesh folder not found. Give a folder with one sub-folder per class.")
    jobs: list[MeshJob] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if classes and class_dir.name not in classes:
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() not in MESH_SUFFIXES or not path.is_file():
                continue
            rel = path.relative_to(class_dir).with_suffix("")
            shape_id = safe_id(str(rel))
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
