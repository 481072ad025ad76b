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

import contextlib
import json
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from core.data.manifest import MANIFEST_NAME, load_manifest, write_index
from core.data.samples import MAX_FACES, inspect_samples, sample_shape, shape_rng, write_samples
from core.data.sampling import SamplingConfig
from core.data.sources.jobs import MeshJob
from core.utils.errors import DataSetError, ExplorerError
from core.utils.folder_lock import FolderLock
from core.utils.io_utils import atomic_write_json, sha256_file
from core.utils.names import path_component_problem, plain_name_problem

if TYPE_CHECKING:
    from core.data.mesh_io import LoadedMesh

log = logging.getLogger(__name__)

SETTINGS = ("n_samples", "n_surface", "backend", "seed")
"""The settings a finished shape was made with; a resumed run must use the same ones."""
THIN_SETTINGS = {"near_allocation": "area", "thin_band_variance": 0.0, "balance_sign": False}
"""Thin-aware sampling settings and their defaults: recorded only when not the default (so a
default file stays byte for byte as before); a file without them was made with the defaults."""

__all__ = [
    "PreprocessConfig",
    "PreprocessReport",
    "preprocess_shape",
    "preprocess_dataset",
    "sample_path",
    "sample_file_stats",
    "parse_shard",
]


@dataclass
class PreprocessConfig:
    """How each shape is sampled."""

    n_samples: int = 500_000
    """SDF samples per shape (DeepSDF: 500,000)."""
    n_surface: int = 30_000
    """Surface points per shape kept for evaluation (DeepSDF's SurfaceSamples: 30,000)."""
    backend: str = "auto"
    """SDF back end (:mod:`core.data.sdf_backends`): ``auto`` (the surface dilated by ``ε`` so open sheets
    become slabs; per mesh the exact winding sign when it is closed, a flood fill of the outside when
    not), ``winding`` (undilated; torn on open meshes) or ``mesh_to_sdf``."""
    seed: int = 0
    """Base seed; each shape's generator is derived from it and the shape id."""
    max_faces: int = MAX_FACES
    """Meshes with more faces are rejected as too large."""
    dataset_name: str = "dataset"
    """Name used in ``SdfSamples/<name>/`` and in the split files (DeepSDF layout); one folder name."""
    near_allocation: str = "area"
    """Near-surface points by ``area`` (DeepSDF) or ``thickness`` (see :class:`SamplingConfig`)."""
    thin_band_variance: float = 0.0
    """Variance of the third, thin-part band of near-surface points; 0: none."""
    balance_sign: bool = False
    """Equal inside / outside sample counts per shape."""

    def __post_init__(self) -> None:
        if self.n_samples < 100:
            raise ValueError(f"--samples (n_samples) must be at least 100, got {self.n_samples}")
        if self.n_surface < 1:
            raise ValueError(f"--surface-samples (n_surface) must be positive, got {self.n_surface}")
        if self.max_faces < 1:
            raise ValueError(f"--max-faces (max_faces) must be positive, got {self.max_faces}")
        if self.seed < 0:  # numpy's generators refuse it, shape by shape, deep in the run
            raise ValueError(f"--seed (seed) must be 0 or more, got {self.seed}")
        problem = plain_name_problem(self.dataset_name)
        if problem:  # a name with '/' or '..' would write outside the data set folder
            raise ValueError(
                f"data set name {self.dataset_name!r} {problem}; use letters, digits, "
                "'_', '-' and '.' only (no '/', no leading '.'), e.g. --name chairs"
            )
        self.sampling()  # validates the back end and the thin-aware settings

    def sampling(self) -> SamplingConfig:
        """The sampling settings of :func:`core.data.samples.sample_shape` (DeepSDF's spread)."""
        return SamplingConfig(
            n_samples=self.n_samples,
            n_surface=self.n_surface,
            backend=self.backend,
            near_allocation=self.near_allocation,
            thin_band_variance=self.thin_band_variance,
            balance_sign=self.balance_sign,
        )

    def settings(self) -> dict[str, Any]:
        """What a finished shape records of how it was made (compared on resume).

        The thin-aware settings only when they differ from their defaults (:data:`THIN_SETTINGS`).
        """
        record = {key: getattr(self, key) for key in SETTINGS}
        record.update(
            {key: getattr(self, key) for key, default in THIN_SETTINGS.items() if getattr(self, key) != default}
        )
        return record


@dataclass
class PreprocessReport:
    """What a data set run did."""

    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    """Shapes made with a caveat (e.g. a missing texture replaced by a flat colour)."""
    seconds: float = 0.0
    done: set[tuple[str, str]] = field(default_factory=set)
    """(class, id) of every processed or skipped shape: ids repeat across classes."""
    fields: dict[str, int] = field(default_factory=dict)
    """Shapes of the whole data set (its manifest) by the signed-distance field they got (``udf_fill``,
    ``winding``, ...); filled when the index files are written."""

    @property
    def ok_count(self) -> int:
        return len(self.processed) + len(self.skipped)


def sample_path(out_dir: Path, config: PreprocessConfig, job: MeshJob) -> Path:
    """Where a shape's samples live: ``<out>/SdfSamples/<name>/<class>/<id>.npz``."""
    return Path(out_dir) / "SdfSamples" / config.dataset_name / job.class_name / f"{job.id}.npz"


def preprocess_shape(
    job: MeshJob,
    config: PreprocessConfig,
    out_path: Path,
    transform: Callable[[LoadedMesh], LoadedMesh] | None = None,
) -> dict[str, Any]:
    """Sample one mesh and write its ``.npz`` atomically.

    ``transform``: applied to the loaded mesh before it is sampled (:mod:`core.data.augment`'s scaled and
    mirrored copies; picklable for worker processes).

    Returns
    -------
    dict
        Statistics that go into the manifest (counts, colour path, settings, warnings, timings).

    Raises
    ------
    ExplorerError
        The mesh cannot be used (the message names the file and the reason).
    """
    from core.data.mesh_io import load_mesh

    start = time.perf_counter()
    digest = source_digest(job)
    mesh = load_mesh(job.source)
    if transform is not None:
        mesh = transform(mesh)
    t_load = time.perf_counter()
    rng = shape_rng(config.seed, job.class_name, job.id)
    samples = sample_shape(mesh, config.sampling(), rng, max_faces=config.max_faces)
    stats = samples.stats
    stats["settings"] = config.settings()
    if digest is not None:
        stats["source_digest"] = digest
    stats["seconds_load"] = round(t_load - start, 4)
    stats["seconds_sdf"] = round(time.perf_counter() - t_load, 4)
    stats["seconds"] = round(time.perf_counter() - start, 4)
    write_samples(out_path, samples)
    return stats


def source_digest(job: MeshJob) -> str | None:
    """What a shape's samples are made from: the source's fingerprint of the job (a Sweet Home 3D
    item's model, rotation and size; a synthetic shape's seed), else the SHA-256 of the mesh file.

    Recorded in each sample file, so a resume notices a mesh that changed since it was sampled
    instead of keeping samples of the old one under the new one's name. ``None``: unreadable
    (sampling then reports why).
    """
    if job.fingerprint:
        return job.fingerprint
    try:
        return sha256_file(job.source)
    except OSError:
        return None


def source_difference(stats: dict[str, Any], job: MeshJob) -> str | None:
    """How the mesh a finished shape was sampled from differs from the job's (None: the same, or not
    recorded: files written before the digest was recorded are judged by their settings alone)."""
    made = stats.get("source_digest")
    if not made:
        return None
    now = source_digest(job)
    if now is None or now == made:
        return None
    return f"its source mesh changed since it was sampled ({job.source})"


def sample_file_stats(path: Path) -> dict[str, Any] | None:
    """Stats of a finished sample file, or ``None`` when it is missing or damaged."""
    try:
        return _stats_with_counts(inspect_samples(path))
    except DataSetError:
        return None


def _stats_with_counts(info: Any) -> dict[str, Any]:
    stats = dict(info.stats)
    stats.setdefault("n_pos", info.shapes["pos"][0])
    stats.setdefault("n_neg", info.shapes["neg"][0])
    stats.setdefault("n_surface", info.n_surface)
    return stats


def settings_difference(stats: dict[str, Any], config: PreprocessConfig) -> str | None:
    """How the settings a shape was made with differ from ``config`` (None: they agree).

    Files written before the settings were recorded are judged by what they show: the sample
    and surface counts and the SDF back end.
    """
    made = dict(stats.get("settings") or {})
    if "n_samples" not in made and "n_pos" in stats and "n_neg" in stats:
        made["n_samples"] = int(stats["n_pos"]) + int(stats["n_neg"])
    if "n_surface" not in made and stats.get("n_surface"):
        made["n_surface"] = int(stats["n_surface"])
    if "backend" not in made and stats.get("sdf_backend"):
        made["backend"] = {"winding": "winding", "dilated_winding": "auto", "dilated_fill": "auto"}.get(
            stats["sdf_backend"], "mesh_to_sdf"
        )
    flags = {
        "n_samples": "--samples",
        "n_surface": "--surface-samples",
        "backend": "--backend",
        "seed": "--seed",
        "near_allocation": "--near-allocation",
        "thin_band_variance": "--thin-band-variance",
        "balance_sign": "--balance-sign",
    }
    wanted = config.settings()
    diffs = [f"{flags[k]} {made[k]} (now {wanted[k]})" for k in SETTINGS if k in made and made[k] != wanted[k]]
    for key, default in THIN_SETTINGS.items():  # absent: made (or wanted) with the default
        if made.get(key, default) != wanted.get(key, default):
            diffs.append(f"{flags[key]} {made.get(key, default)} (now {wanted.get(key, default)})")
    return ", ".join(diffs) or None


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
    return preprocess_shape(job, config, out_path)


def _worker_init() -> None:
    # Workers are single-threaded numerical code; keep BLAS/OpenMP from oversubscribing.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    logging.getLogger("trimesh").setLevel(logging.ERROR)


BUSY_FIX = "Wait for it to finish, or split the work between runs with --shard i/N."
"""What to do when another preprocess run holds the folder."""


def lock_path(out_dir: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    """The lock file a run of this shard holds while it writes ``out_dir``."""
    suffix = "" if shard[1] == 1 else f".shard-{shard[0]}-of-{shard[1]}"
    return Path(out_dir) / f".preprocess{suffix}.lock"


def preprocess_dataset(
    jobs: Iterable[MeshJob],
    out_dir: str | Path,
    config: PreprocessConfig,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    cancel: Callable[[], bool] | None = None,
    resample_changed: bool = False,
) -> PreprocessReport:
    """Preprocess every job (of this shard) into ``out_dir``; write manifest, splits, failures.

    Parameters
    ----------
    jobs
        Meshes to process, from any source. A second job with an id already taken in its class
        is recorded as failed (the batch goes on).
    out_dir
        Data set folder (created). Shapes of earlier runs into it (other classes, say) stay in
        the manifest as long as their files exist.
    workers
        Parallel worker processes (1 runs in this process).
    shard
        ``(i, N)``: this run takes every N-th job starting at i, for splitting a set over machines.
    cancel
        Called between shapes; returning True stops cleanly (finished shapes are kept).
    resample_changed
        Redo finished shapes made with other settings (``--samples``, ``--backend``, ...)
        instead of refusing to mix them into one data set.

    Raises
    ------
    DataSetError
        Before any work: the folder is being written by another run, or it holds shapes made
        with other settings (and ``resample_changed`` is off).
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataSetError(f"{out_dir}: exists and is not a folder. Give --out a folder path.")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = PreprocessReport()
    reporter = report if shard[0] == 0 else None  # one shard reports what every shard drops alike
    unique_jobs = _drop_duplicates(_drop_unsafe_names(list(jobs), reporter), reporter)
    shard_index, shard_count = shard
    my_jobs = unique_jobs[shard_index::shard_count]
    lock = FolderLock(lock_path(out_dir, shard), "preprocess", BUSY_FIX)
    with lock:
        _refuse_overlapping_runs(lock, out_dir, shard)
        _remove_stale_temporaries(out_dir, config, my_jobs, shard)
        pending = _pending_jobs(my_jobs, unique_jobs, out_dir, config, report, resample_changed)
        start = time.perf_counter()
        bar = tqdm(
            total=len(my_jobs), initial=len(report.skipped), desc="preprocess", unit="shape", disable=not progress
        )

        def record_done(job: MeshJob, stats: dict[str, Any]) -> None:
            report.processed.append(job.id)
            report.done.add((job.class_name, job.id))
            for text in stats.get("warnings") or []:
                log.warning("%s/%s: %s", job.class_name, job.id, text)
                report.warnings.append({"id": job.id, "class": job.class_name, "warning": str(text)})

        def record_failure(job: MeshJob, exc: BaseException) -> None:
            reason = str(exc) if isinstance(exc, ExplorerError) else f"{job.source}: {type(exc).__name__}: {exc}"
            log.warning("skipping %s/%s: %s", job.class_name, job.id, reason)
            report.failed.append({"id": job.id, "class": job.class_name, "source": str(job.source), "reason": reason})

        try:
            with logging_redirect_tqdm():  # log lines above the bar, not through it
                _run_jobs(pending, out_dir, config, workers, cancel, record_done, record_failure, bar)
        finally:
            bar.close()
            report.seconds = time.perf_counter() - start
            write_index_files(unique_jobs, out_dir, config, report, shard)
    return report


def _run_jobs(
    pending: list[MeshJob],
    out_dir: Path,
    config: PreprocessConfig,
    workers: int,
    cancel: Callable[[], bool] | None,
    record_done: Callable,
    record_failure: Callable,
    bar: Any,
) -> None:
    if workers <= 1:
        for job in pending:
            if cancel and cancel():
                break
            try:
                stats = preprocess_shape(job, config, sample_path(out_dir, config, job))
            except Exception as exc:  # one bad mesh never stops the batch
                record_failure(job, exc)
            else:
                record_done(job, stats)
            bar.update(1)
        return
    queue = list(pending)
    while queue:
        for job in _run_pool(queue, out_dir, config, workers, cancel, record_done, record_failure, bar):
            _run_alone(job, out_dir, config, record_done, record_failure, bar)


def _run_pool(
    queue: list[MeshJob],
    out_dir: Path,
    config: PreprocessConfig,
    workers: int,
    cancel: Callable[[], bool] | None,
    record_done: Callable,
    record_failure: Callable,
    bar: Any,
) -> list[MeshJob]:
    """Run ``queue`` (consumed) in a pool; return the jobs in flight if a worker process died.

    A worker killed outright (out of memory on a huge mesh, a crash in a native library) breaks
    the whole pool and fails every job it held, so those are returned to be run one by one
    instead of being blamed together; the rest of the queue goes on in a new pool.
    """
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        futures: dict[Future, MeshJob] = {}
        while queue or futures:
            while queue and len(futures) < 2 * workers and not (cancel and cancel()):
                job = queue.pop(0)
                try:
                    futures[pool.submit(_run_job, job, config, sample_path(out_dir, config, job))] = job
                except BrokenProcessPool:
                    return [*futures.values(), job]
            if cancel and cancel():
                queue.clear()
            if not futures:
                break
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                job = futures.pop(future)
                try:
                    stats = future.result()
                except BrokenProcessPool:
                    return [job, *futures.values()]
                except Exception as exc:
                    record_failure(job, exc)
                else:
                    record_done(job, stats)
                bar.update(1)
    return []


def _run_alone(
    job: MeshJob, out_dir: Path, config: PreprocessConfig, record_done: Callable, record_failure: Callable, bar: Any
) -> None:
    """One job in a pool of its own: if its worker dies again, this job is the one that kills it."""
    with ProcessPoolExecutor(max_workers=1, initializer=_worker_init) as pool:
        future = pool.submit(_run_job, job, config, sample_path(out_dir, config, job))
        try:
            stats = future.result()
        except BrokenProcessPool:
            record_failure(
                job,
                DataSetError(
                    f"{job.source}: the worker process died while sampling it (out of memory or a crash in a "
                    "native library). Simplify the mesh (fewer faces) or lower --max-faces to skip such meshes."
                ),
            )
        except Exception as exc:
            record_failure(job, exc)
        else:
            record_done(job, stats)
    bar.update(1)


def _pending_jobs(
    my_jobs: list[MeshJob],
    all_jobs: list[MeshJob],
    out_dir: Path,
    config: PreprocessConfig,
    report: PreprocessReport,
    resample_changed: bool,
) -> list[MeshJob]:
    """Jobs still to do; finished ones go to ``report.skipped``.

    Refuses (before any work) to mix settings in one data set: a finished shape of this run, or
    a shape an earlier run left in the manifest, made with other settings.
    """
    pending: list[MeshJob] = []
    changed: list[str] = []
    for job in my_jobs:
        stats = sample_file_stats(sample_path(out_dir, config, job))
        if stats is None:
            pending.append(job)
            continue
        difference = settings_difference(stats, config) or source_difference(stats, job)
        if difference is None:
            report.skipped.append(job.id)
            report.done.add((job.class_name, job.id))
        elif resample_changed:
            log.info("%s/%s: made with %s; sampling it again", job.class_name, job.id, difference)
            pending.append(job)
        else:
            changed.append(f"{job.class_name}/{job.id}: {difference}")
    if changed:
        raise DataSetError(
            f"{out_dir}: {len(changed)} finished shape(s) were sampled with other settings or from a mesh that "
            f"changed since, e.g. {changed[0]}. One data set needs one setting and current meshes: resume with "
            "the same settings, write to a new --out, or pass --resample-changed to sample those shapes again."
        )
    others = [
        r for r in _previous_records(out_dir, all_jobs) if settings_difference(r.get("stats") or {}, config) is not None
    ]
    if others:
        record = others[0]
        raise DataSetError(
            f"{out_dir}: holds {len(others)} shape(s) of an earlier run made with other settings, e.g. "
            f"{record['class_name']}/{record['id']}: {settings_difference(record.get('stats') or {}, config)}. "
            "One data set needs one setting: use the same settings as that run, or write to a new --out."
        )
    return pending


def _refuse_overlapping_runs(lock: FolderLock, out_dir: Path, shard: tuple[int, int]) -> None:
    """A whole-set run and a shard run would do the same shapes: only one kind at a time."""
    if shard[1] == 1:
        others = sorted(out_dir.glob(".preprocess.shard-*.lock"))
    else:
        others = [
            p
            for p in sorted(out_dir.glob(".preprocess*.lock"))
            if p != lock.path and (p == lock_path(out_dir) or not p.name.endswith(f"-of-{shard[1]}.lock"))
        ]
    for path in others:
        holder = lock.other_holder(path)
        if holder is not None:
            raise DataSetError(
                f"{out_dir}: another preprocess run (pid {holder.get('pid')} on {holder.get('host')}, lock "
                f"{path.name}) is writing shapes this run would do too. Wait for it, or run the same --shard "
                f"split (i/N with one N) in every process. If no such run is active, delete {path}."
            )


def _drop_job(job: MeshJob, reason: str, report: PreprocessReport | None) -> None:
    """Log a job that is not run and record it as failed (the batch goes on)."""
    log.warning("skipping %s/%s: %s", job.class_name, job.id, reason)
    if report is not None:
        report.failed.append({"id": job.id, "class": job.class_name, "source": str(job.source), "reason": reason})


def _drop_unsafe_names(jobs: list[MeshJob], report: PreprocessReport | None) -> list[MeshJob]:
    """The jobs whose class and id can each be one folder / file name; the others are recorded as failed.

    Every source makes safe names, but they come from data (folder names, catalogues, index files):
    checked here once more, so no source can make ``sample_path`` leave the data set folder.
    """
    kept = []
    for job in jobs:
        problems = [
            f"{what} {value!r} {problem}"
            for what, value in (("class", job.class_name), ("id", job.id))
            if (problem := path_component_problem(value))
        ]
        if problems:
            _drop_job(
                job,
                f"{job.source}: {'; '.join(problems)}, so it cannot name a file under --out. "
                "Rename the class or the file in the source.",
                report,
            )
        else:
            kept.append(job)
    return kept


def _drop_duplicates(jobs: list[MeshJob], report: PreprocessReport | None) -> list[MeshJob]:
    """The jobs with the first of each (class, id); later ones are recorded as failures."""
    seen: dict[tuple[str, str], Path] = {}
    unique: list[MeshJob] = []
    for job in jobs:
        key = (job.class_name, job.id)
        if key not in seen:
            seen[key] = job.source
            unique.append(job)
        elif seen[key] == job.source:  # the same mesh twice: sampled once, nothing lost
            log.warning("%s: listed twice by the source as %s/%s; sampled once", job.source, job.class_name, job.id)
        else:
            _drop_job(
                job,
                f"{job.source}: shape id '{job.id}' in class '{job.class_name}' is also used by "
                f"{seen[key]}. Rename one of the files.",
                report,
            )
    return unique


def _remove_stale_temporaries(
    out_dir: Path, config: PreprocessConfig, my_jobs: list[MeshJob], shard: tuple[int, int]
) -> None:
    """Delete the half-written files (``.NAME.XXXX.tmp``) a killed run left behind.

    Only files this run owns: the sample files of its own shapes, and the index files when no
    other shard's run holds a lock on the folder (its temporaries may be in use right now).
    """
    removed = 0
    folders: dict[Path, set[str]] = {}
    for job in my_jobs:
        path = sample_path(out_dir, config, job)
        folders.setdefault(path.parent, set()).add(path.name)
    others_running = any(p != lock_path(out_dir, shard) for p in out_dir.glob(".preprocess*.lock"))
    if not others_running:
        folders.setdefault(out_dir, set()).add(MANIFEST_NAME)
        folders.setdefault(out_dir / "splits", set()).update(("train.json", "test.json"))
    for folder, names in folders.items():
        if not folder.is_dir():
            continue
        for tmp in folder.glob(".*.tmp"):
            owner = tmp.name[1:].rsplit(".", 2)[0]  # ".a.npz.k3j_x.tmp" -> "a.npz"
            if owner in names or (folder == out_dir and owner.startswith("failures") and not others_running):
                tmp.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("removed %d half-written file(s) of an earlier, interrupted run", removed)


def _previous_records(out_dir: Path, jobs: list[MeshJob]) -> list[dict[str, Any]]:
    """Records of the existing manifest that this run's jobs do not cover and whose file still exists."""
    try:
        records = load_manifest(out_dir)["shapes"]
    except DataSetError:  # none yet, or damaged: this run's index replaces it
        return []
    covered = {(job.class_name, job.id) for job in jobs}
    kept = []
    for record in records if isinstance(records, list) else []:
        try:
            key = (record["class_name"], record["id"])
            file = out_dir / record["file"]
        except (KeyError, TypeError):
            continue
        if key not in covered and file.is_file():
            kept.append(record)
    return kept


def field_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Manifest records counted by the signed-distance field of their samples (most common first)."""
    counts: dict[str, int] = {}
    for record in records:
        stats = record.get("stats") or {}
        method = (stats.get("sdf_field") or {}).get("method") or stats.get("sdf_backend") or "unknown"
        counts[method] = counts.get(method, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def write_index_files(
    jobs: list[MeshJob],
    out_dir: Path,
    config: PreprocessConfig,
    report: PreprocessReport,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, Any]:
    """Write ``manifest.json``, ``splits/{train,test}.json`` and the failures file.

    The manifest lists every job whose sample file exists, whichever run or shard wrote it,
    so shards that finish in any order leave a complete manifest behind the last one. Shapes
    an earlier run put in the manifest (other classes, another source) stay while their files
    exist: a second run into one folder adds to the data set, it never hides what is there.
    """
    with _index_lock(out_dir):  # shards finishing together must not overwrite each other's view
        return _write_index_files(jobs, out_dir, config, report, shard)


@contextlib.contextmanager
def _index_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``<out>/.index.lock`` (an advisory kernel lock, released if the process dies) while the
    index files are rebuilt: each writer looks at the sample files and writes inside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".index.lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: shards on one folder are not guarded there
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_index_files(
    jobs: list[MeshJob], out_dir: Path, config: PreprocessConfig, report: PreprocessReport, shard: tuple[int, int]
) -> dict[str, Any]:
    records = []
    for job in jobs:
        path = sample_path(out_dir, config, job)
        stats = sample_file_stats(path)
        if stats is None:
            continue
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
    records.extend(_previous_records(out_dir, jobs))
    report.fields = field_counts(records)
    manifest = write_index(out_dir, config.dataset_name, asdict(config), records)
    failures_name = "failures.json" if shard[1] == 1 else f"failures.shard-{shard[0]}-of-{shard[1]}.json"
    failures_path = out_dir / failures_name
    previous = []
    if failures_path.is_file():
        try:
            previous = json.loads(failures_path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = []
    settled = report.done | {(f["class"], f["id"]) for f in report.failed}
    merged = [f for f in previous if (f.get("class"), f.get("id")) not in settled]
    atomic_write_json(failures_path, merged + report.failed)
    return manifest
