"""Preprocessing seconds per mesh: the open-mesh field (``auto``) against the winding-number field.

Usage::

    python -m benchmarks.bench_open_mesh_sdf                                   # the tests' real meshes
    python -m benchmarks.bench_open_mesh_sdf --data data/sweethome3d --every 10 --samples 200000

Each mesh is sampled as preprocessing samples it (:func:`core.data.samples.sample_shape`: load, normalise,
DeepSDF's queries, signed distances, colours) once with ``--backend winding`` (the undilated field of
before) and once with ``auto``, alternating in one process, so the ratio compares like with like on a
noisy machine. Prints a row per mesh and the ratio of the summed seconds (the issue's "seconds per
mesh") and the median of the per-mesh ratios.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from core.data.manifest import load_manifest
from core.data.mesh_io import load_mesh
from core.data.samples import sample_shape, shape_rng
from core.data.sampling import SamplingConfig

ROOT = Path(__file__).resolve().parents[1]
TEST_MESHES = ROOT / "tests" / "data" / "meshes"


def meshes(data: Path | None, every: int) -> list[Path]:
    """The meshes to time: every ``every``-th source of a data set's manifest, or the tests' meshes."""
    if data is None:
        return sorted(p for p in TEST_MESHES.rglob("*") if p.suffix.lower() in (".obj", ".glb", ".ply", ".stl"))
    records = load_manifest(data)["shapes"]
    return [Path(r["source"]) for r in records[::every] if r.get("source") and Path(r["source"]).is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a preprocessed data set whose source meshes to time")
    parser.add_argument("--every", type=int, default=10, help="with --data: every N-th shape")
    parser.add_argument("--samples", type=int, default=200_000, help="SDF samples per mesh")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    rows = []
    print(f"{'mesh':40s} {'faces':>8s} {'winding s':>10s} {'auto s':>8s} {'ratio':>6s}  field")
    for path in meshes(args.data, args.every):
        try:
            mesh = load_mesh(path)
        except Exception as exc:  # a bad file is skipped, the rest is timed
            print(f"{path.name[:40]:40s} skipped: {exc}")
            continue
        seconds, field = {}, ""
        for backend in ("winding", "auto"):
            config = SamplingConfig(n_samples=args.samples, n_surface=30_000, backend=backend)
            start = time.perf_counter()
            try:
                samples = sample_shape(mesh, config, shape_rng(0, "bench", path.stem))
            except Exception as exc:  # the winding field finds no inside in some open meshes
                field = f"{backend} failed: {str(exc)[:60]}"
                break
            seconds[backend] = time.perf_counter() - start
            field = samples.stats["sdf_field"]["method"] if backend == "auto" else field
        if len(seconds) < 2:
            print(f"{path.parent.name[:40]:40s} {len(mesh.faces):8,d} {field}")
            continue
        rows.append((seconds["winding"], seconds["auto"]))
        print(
            f"{path.parent.name[:40]:40s} {len(mesh.faces):8,d} {seconds['winding']:10.2f} {seconds['auto']:8.2f} "
            f"{seconds['auto'] / seconds['winding']:6.2f}  {field}"
        )
    if not rows:
        print("no meshes")
        return 1
    times = np.array(rows)
    print(
        f"\n{len(rows)} meshes, {args.samples:,} samples each: winding {times[:, 0].sum():.1f} s, auto "
        f"{times[:, 1].sum():.1f} s; auto / winding = {times[:, 1].sum() / times[:, 0].sum():.2f} (sum), "
        f"{np.median(times[:, 1] / times[:, 0]):.2f} (median of the per-mesh ratios)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
