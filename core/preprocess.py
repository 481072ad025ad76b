"""Meshes → DeepSDF training data with colours: one ``.npz`` per shape, a manifest and splits.

The pipeline per shape is the data flow of ``core``: load (any format, with colour) →
normalise to the unit sphere → draw DeepSDF's SDF query points and a surface point set →
signed distances (winding-number or mesh-to-sdf back end) → colours of the nearest surface
points → one atomically written ``.npz`` (layout in ``docs/architecture.md``).

The data set job is resumable (finished shapes are skipped), splittable over machines
(``shard``), parallel (``workers`` processes), and never stops on one bad mesh: failures are
logged to ``failures.json`` with the reason while the rest go on.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from core.datasets.jobs import MeshJob
from core.errors import DataSetError, ExplorerError
from core.io_utils import atomic_save_npz, atomic_write_json

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
REQUIRED_KEYS = ("pos", "neg")

__all__ = [
    "PreprocessConfig",
    "PreprocessReport",
    "preprocess_shape",
    "preprocess_dataset",
    "sample_path",
    "parse_shard",
]


@dataclass
class PreprocessConfig:
    """How each shape is sampled."""

    n_samples: int = 500_000
    """SDF samples per shape (DeepSDF: 500,000)."""
    n_surface: int = 30_000
    """Surface points per shape kept for evaluation (DeepSDF's SurfaceSamples: 30,000)."""
    backend: str = "winding"
    """SDF back end: ``winding`` (libigl fast winding number + exact distance) or ``mesh_to_sdf``."""
    seed: int = 0
    """Base seed; each shape's generator is derived from it and the shape id."""
    max_faces: int = 2_000_000
    """Meshes with more faces are rejected as too large."""
    dataset_name: str = "dataset"
    """Name used in ``SdfSamples/<name>/`` and in the split files (DeepSDF layout)."""

    def __post_init__(self) -> None:
        if self.n_samples < 100:
            raise ValueError(f"n_samples must be at least 100, got {self.n_samples}")
        if self.n_surface < 1:
            raise ValueError(f"n_surface must be positive, got {self.n_surface}")


@dataclass
class PreprocessReport:
    """What a data set run did."""

    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok_count(self) -> int:
        return len(self.processed) + len(self.skipped)


def sample_path(out_dir: Path, config: PreprocessConfig, job: MeshJob) -> Path:
    """Where a shape's samples live: ``<out>/SdfSamples/<name>/<class>/<id>.npz``."""
    return Path(out_dir) / "SdfSamples" / config.dataset_name / job.class_name / f"{job.id}.npz"


def _shape_seed(base_seed: int, job: MeshJob) -> np.random.Generator:
    # A per-shape stream that does not depend on processing order, worker or shard.
    digest = hashlib.sha1(f"{job.class_name}/{job.id}".encode("utf-8")).digest()
    return np.random.default_rng([base_seed, int.from_bytes(digest[:8], "big")])


def preprocess_shape(job: MeshJob, config: PreprocessConfig, out_path: Path) -> dict[str, Any]:
    """Sample one mesh and write its ``.npz`` atomically.

    Returns
    -------
    dict
        Statistics that go into the manifest (counts, colour path, timings, ...).

    Raises
    ------
    ExplorerError
        The mesh cannot be used (the message names the file and the reason).
    """
    from core.mesh_io import load_mesh
    from core.normalization import normalize_mesh
    from core.sampling import sample_sdf_queries, sample_surface
    from core.sdf_backends import compute_sdf

    start = time.perf_counter()
    mesh = load_mesh(job.source)
    if len(mesh.faces) > config.max_faces:
        raise DataSetError(
            f"{job.source}: too large ({len(mesh.faces):,} faces > max_faces {config.max_faces:,}). "
            "Simplify the mesh or raise --max-faces."
        )
    mesh, normalization = normalize_mesh(mesh)
    rng = _shape_seed(config.seed, job)
    t_load = time.perf_counter()

    queries = sample_sdf_queries(mesh.vertices, mesh.faces, config.n_samples, rng)
    result = compute_sdf(mesh.vertices, mesh.faces, queries, backend=config.backend)
    sdf = np.asarray(result.sdf, dtype=np.float32)
    if not np.all(np.isfinite(sdf)):
        raise DataSetError(f"{job.source}: the SDF back end returned non-finite distances; the mesh is degenerate.")
    rgb = mesh.colours_at(result.closest_face, result.closest_barycentric).astype(np.float32)
    t_sdf = time.perf_counter()

    surface = sample_surface(mesh.vertices, mesh.faces, config.n_surface, rng)
    surface_rgb = mesh.colours_at(surface.face_index, surface.barycentric).astype(np.float32)

    samples = np.concatenate([queries.astype(np.float32), sdf[:, None]], axis=1)
    positive = sdf >= 0
    stats: dict[str, Any] = {
        "n_pos": int(positive.sum()),
        "n_neg": int((~positive).sum()),
        "n_vertices": int(len(mesh.vertices)),
        "n_faces": int(len(mesh.faces)),
        "colour_path": mesh.colour_path,
        "sdf_backend": result.backend,
        "seconds_load": round(t_load - start, 4),
        "seconds_sdf": round(t_sdf - t_load, 4),
    }
    if stats["n_neg"] == 0:
        raise DataSetError(
            f"{job.source}: no sample fell inside the mesh (open or inside-out surface?). "
            "Repair the mesh (close holes, fix normals) or use --backend mesh_to_sdf."
        )
    warnings = list(getattr(mesh, "warnings", []) or [])
    stats["warnings"] = warnings
    stats["seconds"] = round(time.perf_counter() - start, 4)
    atomic_save_npz(
        out_path,
        pos=samples[positive],
        neg=samples[~positive],
        pos_rgb=rgb[positive],
        neg_rgb=rgb[~positive],
        pos_view=np.asarray(result.view_dirs, dtype=np.float32)[positive],
        neg_view=np.asarray(result.view_dirs, dtype=np.float32)[~positive],
        surface_points=np.asarray(surface.points, dtype=np.float32),
        surface_normals=np.asarray(surface.normals, dtype=np.float32),
        surface_rgb=surface_rgb,
        offset=np.asarray(normalization.offset, dtype=np.float64),
        scale=np.asarray(normalization.scale, dtype=np.float64),
        colour_path=np.asarray(mesh.colour_path),
        sdf_backend=np.asarray(result.backend),
        stats_json=np.asarray(json.dumps(stats)),
    )
    return stats


def _read_stats(path: Path) -> dict[str, Any] | None:
    """Stats of a finished sample file, or ``None`` when it is missing or damaged."""
    try:
        with np.load(path) as data:
            if not all(k in data.files for k in REQUIRED_KEYS):
                return None
            return json.loads(str(data["stats_json"])) if "stats_json" in data.files else {}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError):
        return None


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` (0-based ``i``) → ``(i, N)``; ``None`` → ``(0, 1)``."""
    if not text:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as exc:
        raise ValueError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from exc
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return index, count


def _run_job(job: MeshJob, config: PreprocessConfig, out_path: Path) -> dict[str, Any]:
    # Workers are single-threaded numerical code; keep BLAS/OpenMP from oversubscribing.
    return preprocess_shape(job, config, out_path)


def _worker_init() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def preprocess_dataset(
    jobs: Iterable[MeshJob],
    out_dir: str | Path,
    config: PreprocessConfig,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    cancel: Callable[[], bool] | None = None,
) -> PreprocessReport:
    """Preprocess every job (of this shard) into ``out_dir``; write manifest, splits, failures.

    Parameters
    ----------
    jobs
        Meshes to process, from any source.
    out_dir
        Data set folder (created).
    workers
        Parallel worker processes (1 runs in this process).
    shard
        ``(i, N)``: this run takes every N-th job starting at i, for splitting a set over machines.
    cancel
        Called between shapes; returning True stops cleanly (finished shapes are kept).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_jobs = list(jobs)
    _check_unique(all_jobs)
    shard_index, shard_count = shard
    my_jobs = all_jobs[shard_index::shard_count]
    report = PreprocessReport()
    start = time.perf_counter()
    pending: list[MeshJob] = []
    for job in my_jobs:
        if _read_stats(sample_path(out_dir, config, job)) is not None:
            report.skipped.append(job.id)
        else:
            pending.append(job)

    bar = tqdm(total=len(my_jobs), initial=len(report.skipped), desc="preprocess", unit="shape", disable=not progress)

    def record_failure(job: MeshJob, exc: BaseException) -> None:
        reason = str(exc) if isinstance(exc, ExplorerError) else f"{job.source}: {type(exc).__name__}: {exc}"
        log.warning("skipping %s/%s: %s", job.class_name, job.id, reason)
        report.failed.append({"id": job.id, "class": job.class_name, "source": str(job.source), "reason": reason})

    try:
        if workers <= 1:
            for job in pending:
                if cancel and cancel():
                    break
                try:
                    preprocess_shape(job, config, sample_path(out_dir, config, job))
                    report.processed.append(job.id)
                except Exception as exc:  # one bad mesh never stops the batch
                    record_failure(job, exc)
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
                futures: dict[Future, MeshJob] = {}
                queue = list(pending)
                while queue or futures:
                    while queue and len(futures) < 2 * workers and not (cancel and cancel()):
                        job = queue.pop(0)
                        futures[pool.submit(_run_job, job, config, sample_path(out_dir, config, job))] = job
                    if cancel and cancel():
                        queue.clear()
                    if not futures:
                        break
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = futures.pop(future)
                        try:
                            future.result()
                            report.processed.append(job.id)
                        except Exception as exc:
                            record_failure(job, exc)
                        bar.update(1)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
        write_index_files(all_jobs, out_dir, config, report, shard)
    return report


def _check_unique(jobs: list[MeshJob]) -> None:
    seen: dict[tuple[str, str], Path] = {}
    for job in jobs:
        key = (job.class_name, job.id)
        if key in seen:
            raise DataSetError(
                f"{job.source}: shape id '{job.id}' in class '{job.class_name}' is also used by {seen[key]}. "
                "Rename one of the files."
            )
        seen[key] = job.source


def write_index_files(
    jobs: list[MeshJob],
    out_dir: Path,
    config: PreprocessConfig,
    report: PreprocessReport,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, Any]:
    """Write ``manifest.json``, ``splits/{train,test}.json`` and the failures file.

    The manifest lists every job whose sample file exists, whichever run or shard wrote it,
    so shards that finish in any order leave a complete manifest behind the last one.
    """
    records = []
    classes: list[str] = []
    splits: dict[str, dict[str, dict[str, list[str]]]] = {"train": {}, "test": {}}
    for job in jobs:
        path = sample_path(out_dir, config, job)
        stats = _read_stats(path)
        if stats is None:
            continue
        if job.class_name not in classes:
            classes.append(job.class_name)
        records.append(
            {
                "id": job.id,
                "class_name": job.class_name,
                "source": str(job.source),
                "text": job.text,
                "split": job.split,
                "file": path.relative_to(out_dir).as_posix(),
                "stats": stats,
                **({"extra": job.extra} if job.extra else {}),
            }
        )
        splits.setdefault(job.split, {}).setdefault(config.dataset_name, {}).setdefault(job.class_name, []).append(job.id)
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": config.dataset_name,
        "classes": sorted(classes),
        "preprocess": asdict(config),
        "shapes": records,
    }
    atomic_write_json(out_dir / "manifest.json", manifest)
    for split_name, split in splits.items():
        atomic_write_json(out_dir / "splits" / f"{split_name}.json", split or {config.dataset_name: {}})
    failures_name = "failures.json" if shard[1] == 1 else f"failures.shard-{shard[0]}-of-{shard[1]}.json"
    failures_path = out_dir / failures_name
    previous = []
    if failures_path.is_file():
        try:
            previous = json.loads(failures_path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = []
    done_now = set(report.processed) | set(report.skipped)
    failed_now = {(f["class"], f["id"]) for f in report.failed}
    merged = [f for f in previous if f.get("id") not in done_now and (f.get("class"), f.get("id")) not in failed_now]
    atomic_write_json(failures_path, merged + report.failed)
    return manifest
