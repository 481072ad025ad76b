"""Time the two SDF back ends on the same meshes and compare their signs.

Usage::

    python -m benchmarks.bench_sdf_backends
    python -m benchmarks.bench_sdf_backends --n-winding 100000 --n-mesh-to-sdf 10000 --meshes chair sphere

Each back end runs twice per mesh, on a small and on a large query set (DeepSDF's
distribution from ``core.data.sampling``). A straight line through the two timings separates
the per-shape cost (mesh_to_sdf's 100 virtual scans, libigl's trees) from the per-sample
cost, and gives the time for ``--n-target`` samples (DeepSDF: 500,000) per shape. Signs and
distances are compared on the queries both back ends saw.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh

from core.data.sampling import sample_sdf_queries
from core.data.sdf_backends import SdfResult, compute_sdf

ROOT = Path(__file__).resolve().parents[1]
CHAIR_OBJ = ROOT / "tests" / "data" / "meshes" / "obj_mtl_tex_chair_cc0" / "chair2.obj"


def _unit_sphere(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """DeepSDF normalisation (docs/architecture.md): bbox centre to origin, radius 1/1.03."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    vertices = vertices - (vertices.max(axis=0) + vertices.min(axis=0)) / 2
    vertices = vertices / (1.03 * np.linalg.norm(vertices, axis=1).max())
    return vertices, np.asarray(mesh.faces, dtype=np.int64)


def primitive_chair() -> trimesh.Trimesh:
    """A chair of overlapping boxes, cylinders and a torus: closed parts, self-intersecting union."""
    move = trimesh.transformations.translation_matrix
    parts = [trimesh.creation.box(extents=(1.0, 1.0, 0.1), transform=move((0, 0, 0.5)))]
    for x in (-0.42, 0.42):
        for y in (-0.42, 0.42):
            parts.append(trimesh.creation.cylinder(radius=0.05, height=1.0, sections=48, transform=move((x, y, 0))))
    parts.append(trimesh.creation.box(extents=(1.0, 0.1, 0.9), transform=move((0, 0.45, 1.0))))
    upright = move((0, 0.45, 1.0)) @ trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0))
    parts.append(trimesh.creation.torus(0.25, 0.04, major_sections=96, minor_sections=24, transform=upright))
    return trimesh.util.concatenate(parts)


def _synthetic(class_name: str) -> Callable[[], trimesh.Trimesh]:
    """A shape of the built-in data set (index 0, seed 0), its parts merged into one mesh."""

    def build() -> trimesh.Trimesh:
        from core.data.sources.synthetic import build_shape

        scene, _ = build_shape(class_name, 0, seed=0)
        return trimesh.util.concatenate([g for g in scene.dump() if isinstance(g, trimesh.Trimesh)])

    return build


MESHES: dict[str, Callable[[], trimesh.Trimesh]] = {
    "synthetic_chair": _synthetic("chair"),
    "synthetic_lamp": _synthetic("lamp"),
    "synthetic_mug": _synthetic("mug"),
    "primitive_chair": primitive_chair,
    "sphere": lambda: trimesh.creation.icosphere(subdivisions=5),
    "torus": lambda: trimesh.creation.torus(0.6, 0.25, major_sections=256, minor_sections=128),
    "chair": lambda: trimesh.load(CHAIR_OBJ, force="mesh", process=False),
}


@dataclass
class Timing:
    """Linear cost model of one back end on one mesh."""

    backend: str
    """Method actually used (SdfResult.backend)."""
    fixed_s: float
    """Per-shape cost (intercept), seconds."""
    per_sample_s: float
    """Cost per query point (slope), seconds."""

    def seconds_for(self, n: int) -> float:
        return self.fixed_s + self.per_sample_s * n


def _timed(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, backend: str, **options: object
) -> tuple[float, SdfResult]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = compute_sdf(vertices, faces, points, backend=backend, **options)
    return time.perf_counter() - start, result


def measure(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, n_small: int, backend: str, **options: object
) -> tuple[Timing, SdfResult]:
    """Fit fixed + per-sample cost from runs on ``n_small`` and ``len(points)`` queries."""
    t_small, _ = _timed(vertices, faces, points[:n_small], backend, **options)
    t_large, result = _timed(vertices, faces, points, backend, **options)
    slope = max(t_large - t_small, 0.0) / max(len(points) - n_small, 1)
    fixed = max(t_large - slope * len(points), 0.0)
    return Timing(result.backend, fixed, slope), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meshes", nargs="+", default=list(MESHES), choices=list(MESHES), help="meshes to time")
    parser.add_argument("--n-winding", type=int, default=250_000, help="queries for the winding back end")
    parser.add_argument("--n-mesh-to-sdf", type=int, default=25_000, help="queries for mesh_to_sdf (slow)")
    parser.add_argument("--n-small", type=int, default=1_000, help="queries of the small run (fixed cost)")
    parser.add_argument("--n-target", type=int, default=500_000, help="samples per shape to report")
    parser.add_argument("--scan-count", type=int, default=100, help="mesh_to_sdf virtual scans")
    parser.add_argument("--scan-resolution", type=int, default=400, help="mesh_to_sdf scan resolution")
    parser.add_argument("--skip-mesh-to-sdf", action="store_true", help="time the winding back end only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    header = (
        f"{'mesh':16s} {'faces':>7s} {'backend':20s} {'fixed s':>8s} {'us/sample':>9s} "
        f"{'s/shape':>8s} {'shapes/min':>10s}"
    )
    print(
        f"samples per shape: {args.n_target:,}; winding on {args.n_winding:,} queries, "
        f"mesh_to_sdf on {args.n_mesh_to_sdf:,}"
    )
    print(header)
    summary = []
    for name in args.meshes:
        if name == "chair" and not CHAIR_OBJ.exists():
            print(f"{name:16s} skipped: {CHAIR_OBJ} missing")
            continue
        vertices, faces = _unit_sphere(MESHES[name]())
        points = sample_sdf_queries(vertices, faces, args.n_winding, rng)
        rows = []
        timing, winding = measure(vertices, faces, points, args.n_small, "winding")
        rows.append(timing)
        if not args.skip_mesh_to_sdf:
            subset = rng.permutation(len(points))[: args.n_mesh_to_sdf]
            timing_m, m2s = measure(
                vertices,
                faces,
                points[subset],
                args.n_small,
                "mesh_to_sdf",
                scan_count=args.scan_count,
                scan_resolution=args.scan_resolution,
            )
            rows.append(timing_m)
        for row in rows:
            seconds = row.seconds_for(args.n_target)
            print(
                f"{name:16s} {len(faces):7d} {row.backend:20s} {row.fixed_s:8.2f} "
                f"{row.per_sample_s * 1e6:9.2f} {seconds:8.2f} {60 / seconds:10.2f}"
            )
        if not args.skip_mesh_to_sdf:
            ratio = rows[1].seconds_for(args.n_target) / rows[0].seconds_for(args.n_target)
            agree = float(np.mean(np.sign(winding.sdf[subset]) == np.sign(m2s.sdf)))
            gap = np.abs(np.abs(winding.sdf[subset]) - np.abs(m2s.sdf))
            print(
                f"{'':16s} winding/mesh_to_sdf throughput {ratio:.1f}x; sign agreement {agree:.2%}; "
                f"|d| gap median {np.median(gap):.1e}, p99 {np.quantile(gap, 0.99):.1e}"
            )
            summary.append(ratio)
    if summary:
        print(f"throughput ratio winding/mesh_to_sdf: {np.min(summary):.1f}x to {np.max(summary):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
