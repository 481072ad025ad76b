"""Turn a data source named on the command line into mesh jobs for preprocessing."""
from __future__ import annotations

import json
from pathlib import Path

from core.datasets.jobs import MeshJob
from core.errors import SourceError

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
    if isinstance(entries, dict):
        entries = entries.get("shapes", [])
    jobs = []
    for entry in entries:
        extra = {k: entry[k] for k in ("thin_parts",) if k in entry}
        jobs.append(
            MeshJob(
                id=entry["id"],
                class_name=entry["class_name"],
                source=Path(mesh_dir) / entry["file"],
                text=entry.get("text"),
                split=entry.get("split", "train"),
                extra=extra,
            )
        )
    return jobs


def synthetic_jobs(mesh_dir: Path, shapes_per_class: int = 20, seed: int = 0, classes: tuple[str, ...] | None = None,
                   test_fraction: float = 0.2, progress: bool = True) -> list[MeshJob]:
    """Write (or reuse) the built-in procedural set as GLB files and return its jobs."""
    from core.datasets.synthetic import CLASSES, SyntheticConfig, write_synthetic_set

    config = SyntheticConfig(
        shapes_per_class=shapes_per_class,
        seed=seed,
        classes=tuple(classes) if classes else tuple(CLASSES),
        test_fraction=test_fraction,
    )
    write_synthetic_set(config, mesh_dir, progress=progress)
    return jobs_from_index(mesh_dir)
