"""Objaverse 1.0 as a data source, read from the local layout the ``objaverse`` package keeps.

Layout (``~/.objaverse/hf-objaverse-v1`` by default)::

    lvis-annotations.json.gz   {"<lvis category>": ["<uid>", ...]}
    object-paths.json.gz       {"<uid>": "glbs/000-023/<uid>.glb"}
    metadata/000-023.json.gz   {"<uid>": {"name": ..., "tags": [{"name": ...}], "description": ...}}
    glbs/000-023/<uid>.glb

We pick LVIS categories, draw a balanced number of objects per class with a seed (the
seed project used 4 classes x 80 objects), and take each object's text from its name, tags
and description. With ``download=True`` missing files are fetched with the ``objaverse``
package (network needed); offline we fail with a message that says what is missing.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data.sources.folder import safe_id, stable_split
from core.data.sources.jobs import MeshJob
from core.utils.errors import SourceError

DEFAULT_ROOT = Path.home() / ".objaverse" / "hf-objaverse-v1"

__all__ = ["ObjaverseConfig", "objaverse_jobs", "object_text", "DEFAULT_ROOT"]


@dataclass
class ObjaverseConfig:
    """Which Objaverse objects to use."""

    root: Path = DEFAULT_ROOT
    """Local Objaverse 1.0 folder (the ``objaverse`` package's cache)."""
    categories: tuple[str, ...] = ("chair", "table", "lamp", "mug")
    """LVIS category names; each becomes one class."""
    per_class: int = 80
    """Objects drawn per class (fewer when a class has fewer local objects)."""
    seed: int = 0
    """Seed of the per-class draw."""
    test_fraction: float = 0.2
    """Fraction of each class held out."""
    download: bool = False
    """Fetch missing annotations and GLBs with the ``objaverse`` package (needs a network)."""


def _read_json_gz(path: Path) -> Any:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, EOFError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: unreadable Objaverse file ({exc}). Delete it and download it again.") from exc


def object_text(meta: dict[str, Any] | None) -> str | None:
    """A one-line description from an object's metadata: name, tags, then description."""
    if not meta:
        return None
    parts: list[str] = []
    name = (meta.get("name") or "").strip()
    if name:
        parts.append(name)
    tags = [t.get("name", "") if isinstance(t, dict) else str(t) for t in meta.get("tags") or []]
    tags = [t for t in tags if t]
    if tags:
        parts.append("tags: " + ", ".join(tags[:12]))
    description = " ".join((meta.get("description") or "").split())
    if description:
        parts.append(description[:300])
    return "; ".join(parts) or None


def _download_annotations(config: ObjaverseConfig) -> None:
    try:
        import objaverse
    except ImportError as exc:
        raise SourceError(
            f"{config.root}: no local Objaverse annotations, and the 'objaverse' package is not "
            "installed. Install it with `pip install .[objaverse]` (needs a network) or point "
            "--objaverse-root at a local copy."
        ) from exc
    try:
        objaverse.load_lvis_annotations()
        objaverse._load_object_paths()  # writes object-paths.json.gz into the cache
    except Exception as exc:  # network errors come in many types
        raise SourceError(
            f"{config.root}: downloading the Objaverse annotations failed ({exc}). "
            "Check the network, or use a local copy with --objaverse-root."
        ) from exc


def objaverse_jobs(config: ObjaverseConfig) -> list[MeshJob]:
    """Mesh jobs for a balanced draw of Objaverse objects per LVIS category.

    Raises
    ------
    SourceError
        The layout is missing or incomplete and cannot be downloaded.
    """
    root = Path(config.root)
    lvis_path = root / "lvis-annotations.json.gz"
    paths_path = root / "object-paths.json.gz"
    if (not lvis_path.is_file() or not paths_path.is_file()) and config.download:
        _download_annotations(config)
    for path in (lvis_path, paths_path):
        if not path.is_file():
            raise SourceError(
                f"{path}: missing from the Objaverse folder. Download Objaverse with "
                "`python main.py preprocess --source objaverse --download` (needs a network) "
                "or give the folder of a local copy with --objaverse-root."
            )
    lvis: dict[str, list[str]] = _table_of(lvis_path, _read_json_gz(lvis_path), list)
    object_paths = {
        uid: rel for uid, rel in _table_of(paths_path, _read_json_gz(paths_path), str).items() if _inside(rel)
    }
    unknown = [c for c in config.categories if c not in lvis]
    if unknown:
        raise SourceError(f"{lvis_path}: unknown LVIS categories {unknown}. Some that exist: {sorted(lvis)[:20]}")

    rng = np.random.default_rng(config.seed)
    chosen: dict[str, list[str]] = {}
    for category in config.categories:
        uids = sorted(u for u in lvis[category] if u in object_paths)
        if config.download:
            candidates = uids
        else:
            candidates = [u for u in uids if (root / object_paths[u]).is_file()]
        order = rng.permutation(len(candidates))
        chosen[category] = [candidates[i] for i in order[: config.per_class]]
        if not chosen[category]:
            raise SourceError(
                f"{root}: no local GLB files for category '{category}'. Download them "
                "(--download, needs a network) or pick other categories."
            )

    if config.download:
        missing = [u for us in chosen.values() for u in us if not (root / object_paths[u]).is_file()]
        if missing:
            try:
                import objaverse

                objaverse.load_objects(uids=missing)
            except Exception as exc:
                raise SourceError(f"{root}: downloading {len(missing)} Objaverse objects failed ({exc}).") from exc

    metadata = _load_metadata(root, object_paths, [u for us in chosen.values() for u in us])
    jobs = []
    for category, uids in chosen.items():
        for uid in uids:
            shape_id = safe_id(uid)
            jobs.append(
                MeshJob(
                    id=shape_id,
                    class_name=category,
                    source=root / object_paths[uid],
                    text=object_text(metadata.get(uid)),
                    split=stable_split(f"{category}/{shape_id}", config.test_fraction),
                    extra={"uid": uid},
                )
            )
    return jobs


def _table_of(path: Path, data: Any, kind: type) -> dict:
    """``data`` as a JSON object whose values are all of ``kind``; else one error naming the file."""
    if not isinstance(data, dict) or not all(isinstance(v, kind) for v in data.values()):
        raise SourceError(
            f"{path}: not the Objaverse layout (a JSON object of {kind.__name__} values). "
            "Delete it and download it again."
        )
    return data


def _inside(relative: str) -> bool:
    """True for a path from ``object-paths.json.gz`` that stays inside the Objaverse folder (a damaged or
    altered file naming ``/etc/...`` or ``../..`` is not followed)."""
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _load_metadata(root: Path, object_paths: dict[str, str], uids: list[str]) -> dict[str, dict]:
    """Metadata of ``uids``, read from the per-folder ``metadata/<folder>.json.gz`` files."""
    by_folder: dict[str, list[str]] = {}
    for uid in uids:
        folder = Path(object_paths[uid]).parent.name
        by_folder.setdefault(folder, []).append(uid)
    result: dict[str, dict] = {}
    for folder, folder_uids in by_folder.items():
        path = root / "metadata" / f"{folder}.json.gz"
        if not path.is_file():
            continue  # text is optional: shapes without metadata get none
        table = _read_json_gz(path)
        if not isinstance(table, dict):
            continue  # text is optional: a damaged metadata file gives none
        for uid in folder_uids:
            if isinstance(table.get(uid), dict):
                result[uid] = table[uid]
    return result
