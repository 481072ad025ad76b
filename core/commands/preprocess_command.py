"""``python main.py preprocess``: meshes from a source → a DeepSDF data set folder."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.errors import ExplorerError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=["synthetic", "objaverse", "folder"], default="synthetic",
                        help="where meshes come from (default: the built-in procedural set)")
    parser.add_argument("--out", type=Path, required=True, help="data set folder to write")
    parser.add_argument("--input", type=Path, help="folder source: root with one sub-folder per class")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--shard", default=None, help="i/N: process every N-th shape starting at i (0-based)")
    parser.add_argument("--backend", choices=["winding", "mesh_to_sdf"], default="winding",
                        help="SDF back end: fast winding numbers (default) or mesh-to-sdf's virtual scans")
    parser.add_argument("--samples", type=int, default=500_000, help="SDF samples per shape")
    parser.add_argument("--surface-samples", type=int, default=30_000, help="surface points per shape")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-faces", type=int, default=2_000_000, help="reject larger meshes")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="fraction of each class held out")
    parser.add_argument("--classes", nargs="*", default=None, help="restrict to these classes / LVIS categories")
    parser.add_argument("--shapes-per-class", type=int, default=20, help="synthetic: shapes per class")
    parser.add_argument("--per-class", type=int, default=80, help="objaverse: objects per class")
    parser.add_argument("--objaverse-root", type=Path, default=None, help="objaverse: local Objaverse 1.0 folder")
    parser.add_argument("--download", action="store_true", help="objaverse: download what is missing (network)")
    parser.add_argument("--name", default=None, help="data set name in SdfSamples/<name>/ and split files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _jobs(args: argparse.Namespace):
    if args.source == "synthetic":
        from core.datasets.sources import synthetic_jobs

        return synthetic_jobs(args.out / "meshes", shapes_per_class=args.shapes_per_class, seed=args.seed,
                              classes=tuple(args.classes) if args.classes else None,
                              test_fraction=args.test_fraction, progress=not args.no_progress)
    if args.source == "folder":
        from core.datasets.folder import folder_jobs

        if args.input is None:
            raise ExplorerError("--source folder needs --input ROOT (a folder with one sub-folder per class)")
        return folder_jobs(args.input, test_fraction=args.test_fraction, classes=args.classes)
    from core.datasets.objaverse import DEFAULT_ROOT, ObjaverseConfig, objaverse_jobs

    config = ObjaverseConfig(root=args.objaverse_root or DEFAULT_ROOT, per_class=args.per_class, seed=args.seed,
                             test_fraction=args.test_fraction, download=args.download)
    if args.classes:
        config.categories = tuple(args.classes)
    return objaverse_jobs(config)


def run(args: argparse.Namespace) -> int:
    from core.preprocess import PreprocessConfig, parse_shard, preprocess_dataset

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = PreprocessConfig(n_samples=args.samples, n_surface=args.surface_samples, backend=args.backend,
                                  seed=args.seed, max_faces=args.max_faces,
                                  dataset_name=args.name or args.source)
        shard = parse_shard(args.shard)
        jobs = _jobs(args)
    except (ExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = preprocess_dataset(jobs, args.out, config, workers=args.workers, shard=shard,
                                progress=not args.no_progress)
    print(f"{len(report.processed)} processed, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed in {report.seconds:.1f} s → {args.out}")
    for failure in report.failed[:10]:
        print(f"  failed: {failure['reason']}", file=sys.stderr)
    if report.failed:
        print(f"  (all failures: {args.out / 'failures.json'})", file=sys.stderr)
    return 0 if report.ok_count > 0 or not jobs else 1
