"""Augmented copies of a data set's training shapes: small anisotropic scales and left-right mirrors.

Why: an auto-decoder learns one code per shape, and a real furniture class holds 16-44 items, so the
space its codes span is thin; a held-out table a little wider, or a cabinet a little taller, than any
training item is fitted from a code that never decoded such proportions (issue 27: held-out shapes
fitted with the decoder frozen come 8 points of F@1 below the training shapes). A table 20 % wider, or
a sofa mirrored left to right, is still real furniture.

Each copy is *resampled* from its source mesh, transformed: signed distances do not follow an
anisotropic scale (a distance shrinks or grows with the direction to the nearest surface), so scaling
the stored samples' coordinates would teach wrong distances. The copy is a new shape with its own
code (an auto-decoder's code is one shape), sampled with the data set's own preprocessing settings, in
the training split only: held-out shapes stay as they are. The originals are hard-linked (copied where
links are not possible) into the new folder, so the augmented set is a complete data set beside the
source and the source is never written to.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import shutil
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.data.manifest import check_record, load_manifest, manifest_path, write_index
from core.data.mesh_io import LoadedMesh
from core.utils.errors import ConfigError, DataSetError, ExplorerError
from core.utils.io_utils import atomic_write
from core.utils.names import path_component_problem

log = logging.getLogger(__name__)

__all__ = [
    "AugmentConfig",
    "AugmentReport",
    "augment_dataset",
    "augmented_id",
    "copy_factors",
    "transformed_mesh",
]

AUGMENT_SUFFIX = "_aug"
"""A copy's id is its source's id, this, and the copy's number (``oven_aug1``)."""


@dataclass
class AugmentConfig:
    """Which copies to make of every training shape."""

    copies: int = 1
    """Copies per training shape (each its own draw of the transform)."""
    max_scale: float = 1.25
    """Per-axis scale factors are drawn log-uniformly from [1 / max_scale, max_scale]; the copy is then
    normalised to the unit sphere like every shape, so only the ratios between axes remain."""
    mirror: bool = True
    """Mirror half the copies left to right (x -> -x; the up axis and depth are kept)."""
    seed: int = 0
    """Base seed of the draws; a copy's transform depends only on it, its class, its id and its number."""

    def __post_init__(self) -> None:
        if not isinstance(self.copies, int) or self.copies < 1:
            raise ConfigError(f"copies: {self.copies!r} must be a whole number of at least 1")
        if not 1.0 <= float(self.max_scale) <= 2.0:
            raise ConfigError(f"max_scale: {self.max_scale!r} must lie in [1, 2] (1: no scaling)")
        if self.seed < 0:
            raise ConfigError(f"seed: {self.seed!r} must be 0 or more")

    def record(self) -> dict[str, Any]:
        """What the augmented manifest records (and a resumed run must match)."""
        return dataclasses.asdict(self)


@dataclass
class AugmentReport:
    """What :func:`augment_dataset` did."""

    linked: int = 0
    """Original shapes (train and test) brought into the new folder."""
    made: int = 0
    """Copies sampled in this run."""
    reused: int = 0
    """Copies an earlier, interrupted run had finished."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(copy id, reason) of every copy that could not be made (logged and skipped)."""
    cancelled: bool = False


def augmented_id(shape_id: str, number: int) -> str:
    """The id of copy ``number`` (1-based) of ``shape_id``."""
    return f"{shape_id}{AUGMENT_SUFFIX}{number}"


def copy_factors(config: AugmentConfig, class_name: str, shape_id: str, number: int) -> np.ndarray:
    """(3,) per-axis factors of copy ``number`` of a shape (a negative x: mirrored).

    From a generator seeded by the config's seed and the copy's name only, so every run, order and
    worker makes the same copy.
    """
    digest = hashlib.sha1(f"augment/{class_name}/{shape_id}/{number}".encode("utf-8")).digest()
    rng = np.random.default_rng([config.seed, int.from_bytes(digest[:8], "big")])
    bound = float(np.log(config.max_scale))
    factors = np.exp(rng.uniform(-bound, bound, size=3))
    mirrored = config.mirror and bool(rng.integers(0, 2))
    if mirrored:
        factors[0] = -factors[0]
    return factors


def transformed_mesh(mesh: LoadedMesh, factors: np.ndarray) -> LoadedMesh:
    """``mesh`` with each axis multiplied by its factor; a mirror (an odd number of negative factors)
    also reverses every face's vertex order, so the faces keep facing outward (the winding-number
    sign of a closed mesh depends on it)."""
    factors = np.asarray(factors, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(factors)) or np.any(factors == 0):
        raise ValueError(f"transformed_mesh: factors {factors.tolist()} must be finite and non-zero")
    moved = mesh.transformed(mesh.vertices * factors)
    if np.prod(np.sign(factors)) < 0:
        moved = dataclasses.replace(moved, faces=np.ascontiguousarray(moved.faces[:, ::-1]))
    return moved


def _sample_copy(source: str, class_name: str, copy_id: str, factors: list[float], settings: dict, out: str) -> dict:
    """Worker: the copy sampled as preprocessing samples a shape, its mesh transformed first."""
    from core.data.preprocess import PreprocessConfig, preprocess_shape
    from core.data.sources.jobs import MeshJob

    transform = functools.partial(transformed_mesh, factors=np.asarray(factors))
    return preprocess_shape(
        MeshJob(copy_id, class_name, Path(source)), PreprocessConfig(**settings), Path(out), transform
    )


def _preprocess_settings(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's preprocessing settings as :class:`PreprocessConfig` arguments (so copies are
    sampled exactly like the shapes they sit beside)."""
    from core.data.preprocess import PreprocessConfig

    recorded = manifest.get("preprocess")
    if not isinstance(recorded, dict):
        raise DataSetError(
            f"{path}: no 'preprocess' settings, so copies could not be sampled like its shapes; "
            "preprocess the data set again with this program."
        )
    names = {f.name for f in dataclasses.fields(PreprocessConfig)}
    settings = {k: v for k, v in recorded.items() if k in names}
    try:
        PreprocessConfig(**settings)
    except (TypeError, ValueError) as exc:
        raise DataSetError(f"{path}: its 'preprocess' settings are not usable ({exc}).") from exc
    return settings


def _inside(root: Path, relative: str, what: str, path: Path, number: int) -> Path:
    """``root / relative``, refused when ``relative`` is absolute or climbs out of ``root``."""
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise DataSetError(f"{path}: shape {number}: {what} {relative!r} is not a path inside the data set.")
    return root / candidate


def _source_mesh(record: dict[str, Any]) -> Path | None:
    """The record's mesh file, or None when it is not there. Read as every reader of a manifest's ``source``
    reads it (evaluation, the ground-truth report): relative to where preprocessing ran, the project root."""
    source = record.get("source")
    return Path(source) if isinstance(source, str) and source and Path(source).is_file() else None


def _bring(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (no space used), copying where a link cannot be made."""
    if not src.is_file():
        raise DataSetError(
            f"{src}: missing, so the data set is incomplete; run its preprocess command again (it resumes) "
            "before augmenting it."
        )
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        if dst.stat().st_size == src.stat().st_size:
            return
        raise DataSetError(
            f"{dst}: already there and not {src}; augment into a new folder (--out) or remove the "
            "folder an earlier augmentation made."
        )
    try:
        os.link(src, dst)
    except OSError:
        with open(src, "rb") as handle:
            atomic_write(dst, lambda out: shutil.copyfileobj(handle, out))


LOCK_NAME = ".augment.lock"
"""Held in the new folder while a run writes it (a second run into it is refused)."""


def _check_out_dir(out_dir: Path, config: AugmentConfig, source_dir: Path) -> None:
    """Refuse an ``out_dir`` that is a file, holds something else, or an augmentation made otherwise."""
    path = manifest_path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataSetError(f"{out_dir}: a file, not a folder; give a new folder path for --out (it is created).")
    if not path.is_file():
        if out_dir.exists() and any(p.name != LOCK_NAME for p in out_dir.iterdir()):
            raise DataSetError(
                f"{out_dir}: not empty and not an augmented data set (no {path.name}); give a new --out folder."
            )
        return
    recorded = load_manifest(out_dir).get("preprocess", {}).get("augment")
    if not isinstance(recorded, dict) or recorded.get("source") != str(source_dir):
        raise DataSetError(
            f"{path}: {out_dir} holds another data set, not an augmentation of {source_dir}; give a new --out folder."
        )
    # copy k's transform does not depend on how many copies there are, so a run may ask for more (or fewer)
    previous = {k: v for k, v in (recorded.get("config") or {}).items() if k != "copies"}
    if previous != {k: v for k, v in config.record().items() if k != "copies"}:
        raise DataSetError(
            f"{path}: made with other augmentation settings ({recorded.get('config')}); give a new --out "
            "folder, or the same settings to resume it (--copies may differ)."
        )


@dataclass
class _Plan:
    """What a run writes: the index's records so far (originals, finished copies) and the copies to sample."""

    records: list[dict[str, Any]]
    jobs: list[tuple[dict[str, Any], Path | None]]
    """(the copy's record, its source mesh or None when it is not there)."""
    reused: int


def _plan(data_dir: Path, out_dir: Path, manifest: dict[str, Any], config: AugmentConfig) -> _Plan:
    """Check every record, then list the originals and each training shape's copies (finished or to do)."""
    from core.data.preprocess import sample_file_stats

    path = manifest_path(data_dir)
    for number, record in enumerate(manifest["shapes"], 1):
        check_record(path, number, record)
        if record.get("augment_of"):
            raise DataSetError(f"{path}: shape {number} is itself a copy; augment the original data set instead.")
        _inside(data_dir, record["file"], "file", path, number)
    _check_out_dir(out_dir, config, data_dir.resolve())
    taken = {(r["class_name"], r["id"]) for r in manifest["shapes"]}
    plan = _Plan(records=[], jobs=[], reused=0)
    for number, record in enumerate(manifest["shapes"], 1):
        plan.records.append(record)
        if record.get("split", "train") != "train":
            continue
        for k in range(1, config.copies + 1):
            copy_id = augmented_id(record["id"], k)
            problem = path_component_problem(copy_id)
            if problem:
                raise DataSetError(f"{path}: shape {number}: its copy's id {copy_id[:60]!r} {problem}.")
            if (record["class_name"], copy_id) in taken:
                raise DataSetError(f"{path}: shape {number}: a shape is already named {copy_id!r}; rename it first.")
            factors = copy_factors(config, record["class_name"], record["id"], k)
            copy = {
                **record,
                "id": copy_id,
                "file": str(Path(record["file"]).with_name(f"{copy_id}.npz")),
                "augment_of": record["id"],
                "augment": {"factors": [round(float(f), 6) for f in factors]},
            }
            # as preprocessing resumes: a finished copy is a readable sample file (written atomically)
            stats = sample_file_stats(out_dir / copy["file"])
            if stats is not None:
                plan.records.append({**copy, "stats": stats})
                plan.reused += 1
            else:
                plan.jobs.append((copy, _source_mesh(record)))
    return plan


def augment_dataset(
    data_dir: str | Path,
    out_dir: str | Path,
    config: AugmentConfig,
    workers: int = 1,
    cancel: Callable[[], bool] | None = None,
    progress: bool = True,
) -> AugmentReport:
    """Write ``out_dir``: every shape of ``data_dir`` plus ``config.copies`` transformed copies of each
    training shape.

    Resumable: a second run with the same settings keeps the copies the first one finished (their sample
    files, written atomically, are read back as preprocessing's resume does). A copy whose mesh is missing
    or fails to sample is logged, reported and skipped. Copies get ``augment_of`` (the source's id) and
    ``augment`` (the factors) in the manifest; training warm-started from a model of ``data_dir`` starts
    each copy at its source's code (:func:`core.training.trainer.warm_code_rows`).

    Raises
    ------
    DataSetError
        ``data_dir`` is not a data set, ``out_dir`` is ``data_dir`` or a file, holds something else or is
        being written by another run, or a record's file lies outside ``data_dir``.
    """
    from core.utils.folder_lock import FolderLock

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise DataSetError(f"{out_dir}: the augmented set must go to a new folder, not into {data_dir}.")
    manifest = load_manifest(data_dir)
    settings = _preprocess_settings(manifest_path(data_dir), manifest)
    plan = _plan(data_dir, out_dir, manifest, config)
    with FolderLock(out_dir / LOCK_NAME, "augment", "Wait for it to finish."):
        for record in manifest["shapes"]:
            _bring(data_dir / record["file"], out_dir / record["file"])
        # the preprocessing settings, and how the copies were made (what a resumed run must match)
        index_settings = {
            **manifest["preprocess"],
            "augment": {"source": str(data_dir.resolve()), "config": config.record()},
        }
        report = AugmentReport(linked=len(manifest["shapes"]), reused=plan.reused)

        def write() -> None:
            write_index(out_dir, str(manifest.get("name", "dataset")), index_settings, plan.records)

        write()  # the settings first: a run killed outright is resumed from its finished sample files
        try:
            _sample_copies(plan, out_dir, settings, workers, cancel, progress, report)
        finally:
            write()
    return report


def _sample_copies(
    plan: _Plan,
    out_dir: Path,
    settings: dict[str, Any],
    workers: int,
    cancel: Callable[[], bool] | None,
    progress: bool,
    report: AugmentReport,
) -> None:
    """Sample ``plan.jobs`` in a pool of ``workers`` processes, adding each finished copy to the index.

    A cancel stops the copies not yet started; the ones running finish and are kept.
    """
    from tqdm import tqdm

    with tqdm(total=len(plan.jobs), desc="augmented copies", unit="shape", disable=not progress) as bar:
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            futures: dict[Future, dict[str, Any]] = {}
            for copy, source in plan.jobs:
                if source is None:
                    _failed(
                        report,
                        copy,
                        f"its mesh {copy.get('source')!r} is not there (a manifest's mesh paths are relative to "
                        "where preprocessing ran: run augment from there)",
                    )
                    bar.update(1)
                    continue
                factors = [float(f) for f in copy["augment"]["factors"]]
                args = (str(source), copy["class_name"], copy["id"], factors, settings, str(out_dir / copy["file"]))
                futures[pool.submit(_sample_copy, *args)] = copy
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                copy = futures[future]
                try:
                    stats = future.result()
                except Exception as exc:  # a bad mesh (any library's error) is logged and skipped
                    reason = str(exc) if isinstance(exc, ExplorerError) else f"{type(exc).__name__}: {exc}"
                    _failed(report, copy, reason)
                else:
                    plan.records.append({**copy, "stats": stats})
                    report.made += 1
                bar.update(1)
                if cancel and cancel() and not report.cancelled:
                    report.cancelled = True
                    for pending in futures:
                        pending.cancel()


def _failed(report: AugmentReport, copy: dict[str, Any], reason: str) -> None:
    log.warning("skipping copy %s/%s: %s", copy["class_name"], copy["id"], reason)
    report.failures.append((copy["id"], reason))
