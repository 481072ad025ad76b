"""Meshing benchmark: dense vs coarse-to-fine grids, scikit-image vs torch marching cubes.

The project's ``default`` preset decoder (6 x 128, weight norm, Fourier features, colour head)
is trained for a few hundred steps on an analytic sphere + thin rod
so that the surface it meshes is realistic; then, at each resolution, in one process:

* network evaluations dense vs coarse-to-fine (and the ratio),
* Chamfer between the two meshes' vertex sets, in voxels,
* median wall time of a coloured ``extract_mesh`` (grid + marching cubes + normals + colours),
* marching cubes time, scikit-image vs torch, on the same grid.

Run: ``python benchmarks/bench_meshing.py [--resolutions 64 128 256] [--dense-max 128]``.
Dense at 256^3 is 16.7 M network evaluations (minutes on a 2-core CPU), hence ``--dense-max``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.meshing.extract import extract_mesh, mesh_from_grid  # noqa: E402
from core.meshing.grid import evaluate_coarse_to_fine, evaluate_dense, resolve_device  # noqa: E402
from core.meshing.marching_cubes import marching_cubes_skimage, marching_cubes_torch  # noqa: E402


def target_sdf(p: torch.Tensor) -> torch.Tensor:
    sphere = (p - torch.tensor([0.25, 0.0, 0.0], device=p.device)).norm(dim=-1) - 0.45
    q = p - torch.tensor([0.0, 0.02, -0.01], device=p.device)
    d = torch.stack([torch.hypot(q[:, 1], q[:, 2]) - 0.025, q[:, 0].abs() - 0.75], -1)
    rod = d.clamp(min=0).norm(dim=-1) + d.max(-1).values.clamp(max=0)
    return torch.minimum(sphere, rod)


def fit_default_preset(steps: int, batch: int, device: torch.device):
    """The real ``default`` preset decoder, fitted for a few hundred steps to the analytic target
    (its latent and colour code fixed), so the surface it meshes has a realistic narrow band."""
    from core.model import untrained_model

    model = untrained_model("default", device)
    code, colour, cond = model.shape_codes[0], model.colour_codes[0], model.condition("a")
    opt = torch.optim.Adam(model.decoder.parameters(), lr=1e-3)
    g = torch.Generator(device="cpu").manual_seed(0)
    loss = torch.zeros(())
    for _ in range(steps):
        u = torch.rand(batch // 4, 3, generator=g) * 2 - 1
        s = torch.rand(batch, 3, generator=g) * 2 - 1
        with torch.no_grad():
            sd = target_sdf(s)
            grad = torch.func.vmap(torch.func.grad(lambda x: target_sdf(x[None])[0]))(s)
        near = s - sd[:, None] * grad + torch.randn(batch, 3, generator=g) * 0.02
        pts = torch.cat([u, near]).clamp(-1, 1).to(device)
        sdf, rgb = model.decode(pts, code, colour, cond)
        loss = (sdf - target_sdf(pts).clamp(-0.1, 0.1)).abs().mean() + 0.1 * (rgb - (pts + 1) / 2).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.decoder.eval()
    return model, model.sdf_fn(code, cond), model.colour_fn(code, colour, cond), float(loss.detach())


def vertex_chamfer_voxels(a: np.ndarray, b: np.ndarray, h: float) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    return float(0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / h)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--dense-max", type=int, default=128, help="largest resolution with a dense baseline")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--band-factor", type=float, default=1.5)
    ap.add_argument("--max-batch", type=int, default=None, help="points per network call (default: per device)")
    ap.add_argument("--device", default=None)
    args = ap.parse_args()

    device = resolve_device(args.device)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model, sdf_fn, colour_fn, loss = fit_default_preset(args.train_steps, 4096, device)
    print(f"device {device}, torch threads {torch.get_num_threads()}; default preset "
          f"({sum(p.numel() for p in model.decoder.parameters()):,} parameters) fitted "
          f"{args.train_steps} steps in {time.perf_counter() - t0:.1f} s (loss {loss:.4f})")

    kw = dict(device=device, max_batch=args.max_batch)
    print(f"{'res':>4} {'dense evals':>12} {'c2f evals':>10} {'ratio':>7} {'chamfer(vox)':>12} "
          f"{'dense grid s':>12} {'c2f grid s':>10} {'speedup':>7} {'c2f mesh+col s':>14} "
          f"{'mc skimage s':>12} {'mc torch s':>10} {'V':>7}")
    for res in args.resolutions:
        h = 2.0 / (res - 1)
        c2f = evaluate_coarse_to_fine(sdf_fn, res, band_factor=args.band_factor, **kw)
        t_c2f = c2f.stats["seconds"]
        mesh_c2f = mesh_from_grid(c2f, sdf_fn, None, max_batch=args.max_batch)
        if res <= args.dense_max:
            dense = evaluate_dense(sdf_fn, res, **kw)
            t_dense = dense.stats["seconds"]
            mesh_dense = mesh_from_grid(dense, sdf_fn, None, max_batch=args.max_batch)
            chamfer = vertex_chamfer_voxels(mesh_dense.vertices, mesh_c2f.vertices, h)
            dense_col = f"{t_dense:12.3f}"
            speed = f"{t_dense / t_c2f:7.1f}"
        else:
            chamfer, dense_col, speed = float("nan"), f"{'-':>12}", f"{'-':>7}"
        t_mesh = median_time(
            lambda: extract_mesh(sdf_fn, res, colour_fn, band_factor=args.band_factor, **kw),
            args.repeats if res <= 128 else 1,
        )
        t_sk = median_time(lambda: marching_cubes_skimage(c2f.values), 3)
        t_th = median_time(lambda: marching_cubes_torch(c2f.values), 3)
        n_dense = res**3
        print(f"{res:>4} {n_dense:>12,} {c2f.stats['n_evaluations']:>10,} {c2f.stats['ratio']:>7.2%} "
              f"{chamfer:>12.2e} {dense_col} {t_c2f:>10.3f} {speed} {t_mesh:>14.3f} "
              f"{t_sk:>12.3f} {t_th:>10.3f} {len(mesh_c2f.vertices):>7,}")


if __name__ == "__main__":
    main()
