"""How tight can the coarse-to-fine refinement margin be? Signs against the dense grid, per margin.

:func:`core.meshing.grid.evaluate_coarse_to_fine` refines a cell when its corner values say the surface
may pass, with a margin (``band_factor``) for a network that is only roughly 1-Lipschitz, and at the
last level certifies a point's sign from a coarse corner by the same margin. A smaller margin evaluates
fewer points; too small a margin gives a grid point the wrong sign (a thin part cut, a hole). This
script counts, for each bundled model, over training codes and midpoints of two (what the sliders
make), the grid points whose sign differs from the dense grid's and the network evaluations, per
margin. It measures correctness and work, not seconds (``bench_bundled_meshing --band-factors`` times
the margins):

    python -m benchmarks.bench_band_margin [--models demo real real_paper] [--shapes 40]
        [--resolutions 128 64] [--band-factors 1.5 1.2 1.1 1.0]
"""

from __future__ import annotations

import argparse
import sys

import torch

from benchmarks.device_info import device_line
from core.commands.cli_types import positive_float, positive_int, resolution
from core.meshing.grid import evaluate_coarse_to_fine, evaluate_dense
from core.model.bundled_models import bundled_models
from core.model.loading import load_trained_model
from core.utils.markdown import markdown_table


def shape_codes(model, count: int, seed: int) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
    """``count`` codes of ``model``: random training codes, every fourth replaced by the midpoint of it and
    the previous one (under the first one's condition)."""
    n = model.shape_codes.shape[0]
    picks = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count].tolist()
    out = []
    for k, i in enumerate(picks):
        code, name = model.shape_codes[i], model.shape_ids[i]
        if k % 4 == 3:
            j = picks[k - 1]
            code, name = 0.5 * (code + model.shape_codes[j]), f"{name} / {model.shape_ids[j]}"
        out.append((name, code, model.training_condition(i)))
    return out


def margin_rows(card, args) -> list[list[str]]:
    model = load_trained_model(card.checkpoint, "cpu")
    codes = shape_codes(model, args.shapes, args.seed)
    rows = []
    for res in args.resolutions:
        evaluations = {b: 0 for b in args.band_factors}
        mismatches = {b: 0 for b in args.band_factors}
        shapes_hit: dict[float, list[str]] = {b: [] for b in args.band_factors}
        for name, code, cond in codes:
            field = model.mesh_field(code, None, cond)
            dense_inside = evaluate_dense(field.sdf, res, "cpu").values > 0
            for band in args.band_factors:
                grid = evaluate_coarse_to_fine(field.sdf, res, "cpu", band_factor=band)
                wrong = int(((grid.values > 0) != dense_inside).sum())
                evaluations[band] += grid.stats["n_evaluations"]
                mismatches[band] += wrong
                if wrong:
                    shapes_hit[band].append(name)
        base = evaluations[args.band_factors[0]]
        for band in args.band_factors:
            rows.append(
                [
                    card.key,
                    str(res),
                    f"{band:g}",
                    f"{evaluations[band] / len(codes):,.0f}",
                    f"{evaluations[band] / base:.3f}x",
                    str(mismatches[band]),
                    f"{len(shapes_hit[band])}/{len(codes)}",
                    "; ".join(shapes_hit[band][:3]) or "-",
                ]
            )
            print("| " + " | ".join(rows[-1]) + " |", file=sys.stderr, flush=True)  # progress
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None, help="bundled model keys (default: all)")
    ap.add_argument("--shapes", type=positive_int, default=40, help="codes per model (default 40)")
    ap.add_argument("--resolutions", type=resolution, nargs="+", default=[128, 64])
    ap.add_argument("--band-factors", type=positive_float, nargs="+", default=[1.5, 1.2, 1.1, 1.0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    known = [card.key for card in bundled_models()]
    unknown = [m for m in args.models or [] if m not in known]
    if unknown:
        ap.error(f"--models: unknown {', '.join(unknown)}; the bundled models are {', '.join(known)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(device_line(torch.device("cpu")))
    print(f"{args.shapes} codes a model (every fourth a midpoint of two); the first margin is the ratios' base\n")
    rows = [
        row
        for card in bundled_models()
        if not args.models or card.key in args.models
        for row in margin_rows(card, args)
    ]
    print()
    print(
        markdown_table(
            [
                "model",
                "res",
                "margin",
                "evaluations a mesh",
                "x first",
                "grid points of the wrong sign",
                "meshes with any",
                "which",
            ],
            rows,
            align="lrrrrrrl",
        )
    )


if __name__ == "__main__":
    main()
