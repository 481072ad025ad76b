"""``python main.py preprocess``: meshes from a source → a DeepSDF data set folder."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.commands.cli_types import non_negative_int
from core.utils.errors import ExplorerError

__all__ = ["add_arguments", "run"]

FIELD_NAMES = {
    "dilated_fill": "open (sheets as slabs, sign by a flood fill of the outside)",
    "dilated_winding": "closed (exact winding-number sign)",
    "winding": "undilated winding-number sign",
}
"""How the preprocess summary names each signed-distance field."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.data.preprocess import PreprocessConfig
    from core.data.sampling import SamplingConfig
    from core.data.sdf_backends import BACKEND_NAMES
    from core.utils.config_io import arg_default

    parser.add_argument(
        "--source",
        choices=["synthetic", "objaverse", "folder", "sweethome3d"],
        default="synthetic",
        help="where meshes come from (default: the built-in procedural set; sweethome3d: Debian's "
        "furniture libraries, real coloured objects)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="data set folder to write; a second run into it adds shapes (other classes) and resumes unfinished ones",
    )
    parser.add_argument(
        "--input",
        type=Path,
        help="folder source: root with one sub-folder per class (symbolic links to class "
        "folders, sub-folders and mesh files are followed)",
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--shard", default=None, help="i/N: process every N-th shape starting at i (0-based)")
    parser.add_argument(
        "--backend",
        choices=list(BACKEND_NAMES),
        **arg_default(
            PreprocessConfig,
            "backend",
            "SDF back end: auto (the exact distance to the surface dilated by a voxel, "
            "so open sheets become slabs; closed meshes keep the exact winding sign, "
            "open ones are signed by a flood fill of the outside), winding (undilated: "
            "open sheets tear), or mesh-to-sdf's virtual scans",
        ),
    )
    parser.add_argument("--samples", type=int, **arg_default(PreprocessConfig, "n_samples", "SDF samples per shape"))
    parser.add_argument(
        "--surface-samples", type=int, **arg_default(PreprocessConfig, "n_surface", "surface points per shape")
    )
    parser.add_argument(
        "--seed", type=non_negative_int, **arg_default(PreprocessConfig, "seed", "base seed of the sampling")
    )
    parser.add_argument("--max-faces", type=int, **arg_default(PreprocessConfig, "max_faces", "reject larger meshes"))
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="fraction of each class held out as the test split, in [0, 1) (default: 0.2, "
        "i.e. 20%% of the shapes are NOT trained on; give 0 to train on all)",
    )
    parser.add_argument("--classes", nargs="*", default=None, help="restrict to these classes / LVIS categories")
    parser.add_argument("--shapes-per-class", type=int, default=20, help="synthetic: shapes per class")
    parser.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="objaverse: objects per class (default 80); sweethome3d: items per class (default: every unreserved item)",
    )
    parser.add_argument(
        "--library-dir",
        type=Path,
        default=None,
        help="sweethome3d: folder of .sh3f libraries (default /usr/share/sweethome3d/furniture)",
    )
    parser.add_argument(
        "--class-map",
        type=Path,
        default=None,
        help="sweethome3d: TOML class map (default resources/sweethome3d/class_map.toml)",
    )
    parser.add_argument(
        "--exclude-hashes",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="skip every mesh whose file bytes hash (SHA-256) to a digest listed in FILE "
        "(one per line; repeatable). sweethome3d always skips the reserved models.",
    )
    parser.add_argument("--objaverse-root", type=Path, default=None, help="objaverse: local Objaverse 1.0 folder")
    parser.add_argument("--download", action="store_true", help="objaverse: download what is missing (network)")
    parser.add_argument(
        "--name",
        default=None,
        help="data set name in SdfSamples/<name>/ and split files: a plain folder name (default: the source's name)",
    )
    parser.add_argument(
        "--near-allocation",
        choices=["area", "thickness"],
        **arg_default(
            SamplingConfig,
            "near_allocation",
            "near-surface samples around area-uniform surface points (DeepSDF) or "
            "weighted toward thin parts by local thickness, half by area",
        ),
    )
    parser.add_argument(
        "--thin-band-variance",
        type=float,
        metavar="V",
        **arg_default(
            SamplingConfig,
            "thin_band_variance",
            "variance of a third, tighter band of near-surface samples around thin parts "
            "(legs, rods, handles), taking 20% of the near samples; 0: none; e.g. 5e-5",
        ),
    )
    parser.add_argument(
        "--balance-sign",
        action="store_true",
        help="equal inside/outside sample counts per shape at the same total (more queries "
        "are drawn until the rarer side has half, then each side is subsampled)",
    )
    parser.add_argument(
        "--resample-changed",
        action="store_true",
        help="on resume, sample again the finished shapes made with other --samples / "
        "--surface-samples / --backend / --seed / sampling flags "
        "(default: refuse to mix settings)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--ground-truth-report",
        type=int,
        nargs="+",
        metavar="RES",
        default=None,
        help="afterwards, mesh every shape's field on these grids (e.g. 96 128) and measure it "
        "against its source mesh: pieces torn beyond the source's parts, parts missing, "
        "Chamfer (OUT/ground_truth.json; core/evaluation/ground_truth_quality.py)",
    )


def _jobs(args: argparse.Namespace):
    if args.source == "synthetic":
        from core.data.sources.synthetic_jobs import synthetic_jobs

        return synthetic_jobs(
            args.out / "meshes",
            shapes_per_class=args.shapes_per_class,
            seed=args.seed,
            classes=tuple(args.classes) if args.classes else None,
            test_fraction=args.test_fraction,
            progress=not args.no_progress,
        )
    if args.source == "folder":
        from core.data.sources.folder import folder_jobs

        if args.input is None:
            raise ExplorerError("--source folder needs --input ROOT (a folder with one sub-folder per class)")
        return folder_jobs(args.input, test_fraction=args.test_fraction, classes=args.classes)
    if args.source == "sweethome3d":
        return _sweethome3d_jobs(args)
    from core.data.sources.objaverse import DEFAULT_ROOT, ObjaverseConfig, objaverse_jobs

    config = ObjaverseConfig(
        root=args.objaverse_root or DEFAULT_ROOT,
        per_class=80 if args.per_class is None else args.per_class,
        seed=args.seed,
        test_fraction=args.test_fraction,
        download=args.download,
    )
    if args.classes:
        config.categories = tuple(args.classes)
    return objaverse_jobs(config)


def _sweethome3d_jobs(args: argparse.Namespace):
    """Jobs of the Sweet Home 3D libraries; their report is written once the run has the folder."""
    from core.data.sources import sweethome3d as sh3d

    config = sh3d.SweetHome3DConfig(
        cache_dir=args.out / "meshes" / "sweethome3d",
        library_dir=args.library_dir or sh3d.DEFAULT_LIBRARY_DIR,
        classes=tuple(args.classes) if args.classes else None,
        per_class=args.per_class or 0,
        seed=args.seed,
        test_fraction=args.test_fraction,
        class_map=args.class_map or sh3d.DEFAULT_CLASS_MAP,
        exclude_hashes=tuple(args.exclude_hashes),
    )
    jobs, report = sh3d.sweethome3d_jobs(config)
    path = args.out / "sweethome3d_report.json"
    sh3d.write_report(report, path)  # now: the reasons must survive a run that samples nothing
    print(report.summary_line() + f" (report: {path})")
    if not jobs and report.failures:
        first = report.failures[0]["reason"]
        raise ExplorerError(
            f"--source sweethome3d: no item could be used; {len(report.failures)} unreadable, "
            f"e.g. {first} (every reason: {path})"
        )
    return jobs


def _write_attribution(args: argparse.Namespace) -> None:
    """After the run: ATTRIBUTION.md for every Sweet Home 3D shape the folder holds (earlier runs' classes
    included), from the manifest, as CC-BY asks."""
    from core.data.manifest import load_manifest
    from core.data.sources import sweethome3d as sh3d
    from core.utils.io_utils import atomic_write_bytes

    extras = [r["extra"] for r in load_manifest(args.out)["shapes"] if r.get("extra", {}).get("library")]
    attribution = (
        "# Models and their creators\n\nFrom Debian's sweethome3d-furniture libraries; CC-BY items "
        "require this attribution.\n\n" + sh3d.attribution_markdown(extras)
    )
    atomic_write_bytes(args.out / "ATTRIBUTION.md", attribution.encode("utf-8"))


def _exclude_by_hash(jobs: list, digests: set[str]) -> list:
    """Drop the jobs whose mesh file's bytes hash to a listed digest (a user's hold-out list)."""
    from core.utils.io_utils import sha256_file

    def digest(job) -> str | None:
        try:
            return sha256_file(job.source)
        except OSError:  # unreadable: preprocessing reports it with its reason
            return None

    kept = [job for job in jobs if digest(job) not in digests]
    print(f"{len(jobs) - len(kept)} meshes skipped by --exclude-hashes")
    return kept


def _check_arguments(args: argparse.Namespace, shard: tuple[int, int]) -> None:
    """Refuse impossible settings, and a folder another run is writing, before any mesh is generated,
    extracted, downloaded or sampled (preprocess_dataset takes the lock itself later)."""
    from core.data.preprocess import BUSY_FIX, lock_path
    from core.utils.folder_lock import FolderLock

    if args.out.exists() and not args.out.is_dir():
        raise ExplorerError(f"--out {args.out}: exists and is not a folder. Give a folder path for the data set.")
    lock = FolderLock(lock_path(args.out, shard), "preprocess", BUSY_FIX)
    holder = lock.other_holder(lock.path)
    if holder is not None:
        raise ExplorerError(
            f"{args.out}: another preprocess run (pid {holder.get('pid')} on {holder.get('host')}) "
            f"is writing this folder. {BUSY_FIX} If no such run is active, delete {lock.path}."
        )
    if not 0.0 <= args.test_fraction < 1.0:
        raise ExplorerError(
            f"--test-fraction {args.test_fraction}: must be in [0, 1) (0.2 holds out 20 % "
            "of each class as test shapes; 0 trains on all)."
        )
    for resolution in args.ground_truth_report or ():
        if not 16 <= resolution <= 512:
            raise ExplorerError(
                f"--ground-truth-report {resolution}: grids of 16 to 512 samples a side (96 and "
                "128 are the evaluation's)."
            )
    for flag, value in (
        ("--shapes-per-class", args.shapes_per_class),
        ("--per-class", args.per_class),
        ("--workers", args.workers),
    ):
        if value is not None and value < 1:
            raise ExplorerError(f"{flag} {value}: must be at least 1.")


def _ground_truth_report(args: argparse.Namespace) -> None:
    """``--ground-truth-report``: every shape's field meshed and measured against its source (one line a grid)."""
    from core.evaluation.ground_truth_quality import ground_truth_report

    report = ground_truth_report(
        args.out, tuple(args.ground_truth_report), workers=args.workers, progress=not args.no_progress
    )
    for resolution, s in report["summary"].items():
        print(
            f"ground truth at {resolution}³ ({s['shapes']} shapes): {s['torn_share_pct']:.1f} % with pieces torn "
            f"beyond the source's parts, {s['missing_share_pct']:.1f} % missing a part "
            f"({s['cavity_share_pct']:.1f} % with air sealed inside, not counted as torn); Chamfer-L1 "
            f"{s['chamfer_l1']:.4f} ({s['chamfer_l1_deflated']:.4f} stepped back by ε), F@1 {s['fscore_1pct']:.1f} % "
            f"({s['fscore_1pct_deflated']:.1f} %) → {args.out / 'ground_truth.json'}"
        )


def run(args: argparse.Namespace) -> int:
    from core.data.preprocess import PreprocessConfig, parse_shard, preprocess_dataset

    # our progress and warnings at INFO; other libraries' chatter (trimesh: "triangulating
    # faces" for every quad mesh) only when it is an error
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("trimesh").setLevel(logging.ERROR)
    try:
        config = PreprocessConfig(
            n_samples=args.samples,
            n_surface=args.surface_samples,
            backend=args.backend,
            seed=args.seed,
            max_faces=args.max_faces,
            dataset_name=args.name or args.source,
            near_allocation=args.near_allocation,
            thin_band_variance=args.thin_band_variance,
            balance_sign=args.balance_sign,
        )
        shard = parse_shard(args.shard)
        _check_arguments(args, shard)
        holdout = None
        if args.exclude_hashes and args.source != "sweethome3d":  # the source reads them itself
            from core.data.sources.sweethome3d import read_digests

            holdout = read_digests(args.exclude_hashes)  # before any mesh is generated or downloaded
        jobs = _jobs(args)
        if holdout is not None:
            jobs = _exclude_by_hash(jobs, holdout)
        if not jobs:
            raise ExplorerError(
                f"--source {args.source}: no shapes to preprocess"
                + (f" for --classes {' '.join(args.classes)}" if args.classes else "")
                + ". Check the source and the class names."
            )
        if not jobs[shard[0] :: shard[1]]:
            raise ExplorerError(
                f"--shard {args.shard}: this shard has no shapes ({len(jobs)} in all); use fewer shards."
            )
        report = preprocess_dataset(
            jobs,
            args.out,
            config,
            workers=args.workers,
            shard=shard,
            progress=not args.no_progress,
            resample_changed=args.resample_changed,
        )
        if args.source == "sweethome3d":
            _write_attribution(args)
    except (ExplorerError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{len(report.processed)} processed, {len(report.skipped)} already done, "
        f"{len(report.failed)} failed, {len(report.warnings)} with warnings in {report.seconds:.1f} s → {args.out}"
    )
    if args.ground_truth_report:
        _ground_truth_report(args)
    if report.fields:
        print(
            "signed distances: "
            + ", ".join(f"{n} {FIELD_NAMES.get(m, m)}" for m, n in report.fields.items())
            + " (each shape's field and why: manifest.json, stats.sdf_field)"
        )
    for warning in report.warnings[:10]:
        print(f"  warning: {warning['class']}/{warning['id']}: {warning['warning']}", file=sys.stderr)
    for failure in report.failed[:10]:
        print(f"  failed: {failure['reason']}", file=sys.stderr)
    if report.failed:
        print(f"  (all failures: {args.out / 'failures.json'})", file=sys.stderr)
    return 0 if report.ok_count > 0 else 1
