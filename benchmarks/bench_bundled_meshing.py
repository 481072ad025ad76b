"""Meshing speed of the bundled models: the plain path against the fast path, in one process.

For each bundled model (``resources/*/model.json``) and the shape the viewer opens it on, after a
warm-up, ``--repeats`` rounds of the three below one after the other (medians of the times; each
ratio is the median of the rounds' own ratios, steadier on a noisy machine):

* the baseline: one plain float32 decoder pass over 262,144 points (a 64^3 grid's worth), the
  unit the issue's ratios are stated in;
* the plain coloured mesh, as the viewer made it before: closures over the decoder, every point of
  every refined cell of the last level, autograd normals and a second network pass for colours;
* the fast coloured mesh the viewer makes now: :meth:`TrainedModel.mesh_field` (fused, bfloat16 on a
  CPU with native bfloat16 units), certified signs at the last level, normals from the grid;

with the fast mesh's time as a ratio to both, its Chamfer distance to the plain mesh in voxels (the
honesty check: < 0.1 voxel) and the stages. ``DEEPSDF_PRECISION=float32`` times the fast path
without bfloat16. ``--band-factors`` times the fast path at several refinement margins in the same
rounds (one row each; the plain mesh keeps the default margin).

    python -m benchmarks.bench_bundled_meshing [--resolutions 64 128] [--repeats 5] [--models demo real]
        [--band-factors 1.5 1.2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from benchmarks.device_info import device_line
from core.commands.cli_types import positive_float
from core.meshing.extract import extract_mesh
from core.meshing.grid import DEFAULT_BAND_FACTOR, evaluate_points
from core.model.bundled_models import bundled_models
from core.model.decoder_field import compute_dtype
from core.model.loading import load_trained_model
from core.utils.markdown import markdown_table

STAGES = ("grid", "marching_cubes", "normals", "colours")


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, list[float]], dict]:
    """Each callable once as a warm-up, then ``repeats`` rounds that run them one after the other.

    Interleaving puts every round's baseline and fast path in the same few seconds, so a ratio taken
    per round sees the same machine; the median of those ratios is steadier than a ratio of medians
    taken minutes apart on a shared, noisy machine. -> (seconds per callable, last result per callable).
    """
    results = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            tic = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - tic)
    return times, results


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=True))


def chamfer_voxels(a: np.ndarray, b: np.ndarray, resolution: int) -> float:
    if not len(a) or not len(b):
        return float("nan")
    d1, _ = cKDTree(b).query(a)
    d2, _ = cKDTree(a).query(b)
    return float((d1.mean() + d2.mean()) / 2 / (2.0 / (resolution - 1)))


def opening_shape(model, first_shape: str | None) -> int:
    if first_shape and first_shape in model.shape_ids:
        return model.index_of(first_shape)
    return 0


def model_rows(card, args, device: torch.device):
    """One table row (its cells) per resolution for the bundled model ``card``."""
    model = load_trained_model(card.checkpoint, device)
    index = opening_shape(model, card.first_shape)
    code, cond = model.shape_codes[index], model.training_condition(index)
    colour = model.colour_codes[index] if model.has_colour else None
    sdf_fn, colour_fn = model.sdf_fn(code, cond), model.colour_fn(code, colour, cond)
    points = torch.rand(262_144, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    bands = args.band_factors or [DEFAULT_BAND_FACTOR]
    for res in args.resolutions:
        stage_seconds: dict[float, dict[str, list[float]]] = {b: {k: [] for k in STAGES} for b in bands}

        def fast_mesh(band: float, res=res, stage_seconds=stage_seconds):
            mesh = extract_mesh(
                model.mesh_field(code, colour, cond), res, device=device, mc_backend="torch", band_factor=band
            )
            for k in STAGES:
                stage_seconds[band][k].append(mesh.stats.get(f"seconds_{k}", 0.0))
            return mesh

        fns: dict[str, Callable[[], object]] = {
            "pass": lambda: evaluate_points(sdf_fn, points),
            "plain": lambda res=res: extract_mesh(
                sdf_fn, res, colour_fn, device=device, mc_backend="torch", certify_signs=False
            ),
        }
        for band in bands:
            fns[f"fast@{band}"] = lambda band=band: fast_mesh(band)
        times, results = interleaved_times(fns, args.repeats)
        plain = results["plain"]
        t_pass, t_plain = (statistics.median(times[k]) for k in ("pass", "plain"))
        for band in bands:
            key = f"fast@{band}"
            fast = results[key]
            st = fast.stats
            stages = " / ".join(f"{1e3 * statistics.median(stage_seconds[band][k]):.0f}" for k in STAGES)
            yield [
                f"{card.key} ({model.shape_ids[index]})",
                str(res),
                f"{band:g}",
                f"{1e3 * t_pass:.0f}",
                f"{1e3 * t_plain:.0f}",
                f"{1e3 * statistics.median(times[key]):.0f}",
                f"{median_ratio(times[key], times['pass']):.3f}x",
                f"{median_ratio(times[key], times['plain']):.2f}x",
                f"{chamfer_voxels(plain.vertices, fast.vertices, res):.3f}",
                f"{plain.stats['n_evaluations']:,} / {st['n_evaluations']:,}",
                stages,
                f"{len(fast.vertices):,}",
            ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=None, help="bundled model keys (default: all)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument(
        "--band-factors",
        type=positive_float,
        nargs="+",
        default=None,
        help=f"the fast path's refinement margins to time (default: {DEFAULT_BAND_FACTOR}, the meshing default)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(device_line(device))
    print(f"fast path compute dtype: {compute_dtype(device)}; median of {args.repeats} after a warm-up")
    print()
    rows = [
        row
        for card in bundled_models()
        if not args.models or card.key in args.models
        for row in model_rows(card, args, device)
    ]
    print(
        markdown_table(
            [
                "model",
                "res",
                "band",
                "plain pass 262k ms",
                "plain mesh ms",
                "fast mesh ms",
                "fast / pass",
                "fast / plain",
                "Chamfer vox",
                "evaluations plain / fast",
                "grid / MC / normals / colours ms",
                "vertices",
            ],
            rows,
            align="lrrrrrrrrrlr",
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
