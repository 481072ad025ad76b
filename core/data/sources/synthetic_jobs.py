"""Turn a data source named on the command line into mesh jobs for preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

from core.data.sources.jobs import MeshJob
from core.utils.errors import SourceError

__all__ = ["synthetic_jobs", "jobs_from_index"]


def jobs_from_index(mesh_dir: Path) -> list[MeshJob]:
    """Jobs from the ``index.json`` the synthetic generator writes beside its GLB files."""
    index_path = Path(mesh_dir) / "index.json"
    try:
        entries = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourceError(f"{index_path}: missing. Generate the set again with --source synthetic.") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(f"{index_path}: not valid JSON ({exc}). Delete the folder and generate it again.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{index_path}: unreadable ({exc}). Delete the folder and generate it again.") from exc
    if isinstance(entries, dict):
        entries = entries.get("shapes", [])
    if not isinstance(entries, list):
        raise SourceError(f"{index_path}: holds no list of shapes. Delete the folder and generate it again.")
    return [_index_job(Path(mesh_dir), index_path, number, entry) for number, entry in enumerate(entries, 1)]


def _index_job(mesh_dir: Path, index_path: Path, number: int, entry: object) -> MeshJob:
    """The job of one ``index.json`` entry; an entry without id, class or file is one clear error."""
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "class_name", "file")):
        raise SourceError(
            f"{index_path}: shape {number} lacks an id, class_name or file. Delete the folder and generate it again."
        )
    fingerprint = entry.get("fingerprint")
    return MeshJob(
        id=entry["id"],
        class_name=entry["class_name"],
        source=mesh_dir / entry["file"],
        text=entry.get("text"),
        split=entry.get("split", "train"),
        extra={k: entry[k] for k in ("thin_parts",) if k in entry},
        fingerprint=fingerprint if isinstance(fingerprint, str) else None,
    )


def synthetic_jobs(
    mesh_dir: Path,
    shapes_per_class: int = 20,
    seed: int = 0,
    classes: tuple[str, ...] | None = None,
    test_fraction: float = 0.2,
    progress: bool = True,
) -> list[MeshJob]:
    """Write (or reuse) the built-in procedural set as GLB files and return its jobs."""
    from core.data.sources.synthetic import CLASSES, SyntheticConfig, write_synthetic_set

    config = SyntheticConfig(
        shapes_per_class=shapes_per_class,
        seed=seed,
        classes=tuple(classes) if classes else tuple(CLASSES),
        test_fraction=test_fraction,
    )
    write_synthetic_set(config, mesh_dir, progress=progress)
    return jobs_from_index(mesh_dir)
