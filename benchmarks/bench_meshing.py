"""Meshing benchmark: dense vs coarse-to-fine grids, scikit-image vs torch marching cubes.

The project's ``default`` preset decoder (6 x 128, weight norm, Fourier features, colour head)
is trained for a few hundred steps on an analytic sphere + thin rod
so that the surface it meshes is realistic; then, at each resolution, in one process:

* network evaluations dense vs coarse-to-fine (and the ratio),
* Chamfer between the two meshes' vertex sets, in voxels,
* median wall time of a coloured ``extract_mesh`` (grid + marching cubes + normals + colours),
* marching cubes time, scikit-image vs torch (on the device), on the same grid;

then marching cubes compared on each narrow-band grid: scikit-image (the CPU reference), the
project's torch path on the device, and warp-lang's ``warp.geometry.IsoSurfaceMarchingCubes``
when ``warp`` is importable and the device is CUDA (optional, never a dependency): time, vertex
count against scikit-image's and the vertex Chamfer distance to it in voxels; and last the
coloured mesh the viewer refines to (narrow-band grid + marching cubes + normals + colour head at
the vertices, ``extract_mesh``) for each ``--coloured-presets`` model at ``--coloured-resolutions``,
median of ``--coloured-repeats`` after a warm-up, with the time of each stage.

Run: ``python -m benchmarks.bench_meshing [--resolutions 64 128 256] [--dense-max 128] [--device cuda]``.
Dense at 256^3 is 16.7 M network evaluations (minutes on a 2-core CPU), hence ``--dense-max``.
On a GPU: ``--device cuda --coloured-resolutions 256 512`` measures issue 13's targets (H100:
256^3 coloured <= 50 ms default preset, <= 150 ms paper preset; 512^3 <= 0.5 s).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from typing import Iterator

import numpy as np
import torch
from scipy.spatial import cKDTree

from benchmarks.device_info import device_line, synchronize
from core.meshing.extract import extract_mesh, mesh_from_grid
from core.meshing.grid import evaluate_coarse_to_fine, evaluate_dense
from core.meshing.marching_cubes import marching_cubes_skimage, marching_cubes_torch
from core.utils.devices import resolve_device

# Issue 13's targets on one H100 for a coloured mesh (grid + marching cubes + colours), seconds.
TARGETS_H100 = {("default", 256): 0.050, ("paper", 256): 0.150, ("default", 512): 0.5, ("paper", 512): 0.5}


def target_sdf(p: torch.Tensor) -> torch.Tensor:
    sphere = (p - torch.tensor([0.25, 0.0, 0.0], device=p.device)).norm(dim=-1) - 0.45
    q = p - torch.tensor([0.0, 0.02, -0.01], device=p.device)
    d = torch.stack([torch.hypot(q[:, 1], q[:, 2]) - 0.025, q[:, 0].abs() - 0.75], -1)
    rod = d.clamp(min=0).norm(dim=-1) + d.max(-1).values.clamp(max=0)
    return torch.minimum(sphere, rod)


def fit_default_preset(steps: int, batch: int, device: torch.device, preset: str = "default"):
    """The real ``preset`` decoder (``default`` unless named), fitted for a few hundred steps to the
    analytic target (its latent and colour code fixed), so the surface it meshes has a realistic
    narrow band."""
    from core.model import untrained_model

    model = untrained_model(preset, device)
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


def median_time(fn, repeats: int, device: torch.device | None = None) -> float:
    """Median wall time of ``fn()``; on CUDA the queued work is waited for before and after."""
    times = []
    for _ in range(repeats):
        if device is not None:
            synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device is not None:
            synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def warp_available(device: torch.device) -> bool:
    """warp-lang's marching cubes runs only when ``warp`` is importable and the device is CUDA."""
    return device.type == "cuda" and importlib.util.find_spec("warp") is not None


def warp_marching_cubes(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """warp-lang's marching cubes on a CUDA grid: vertices (V, 3) float32 in index units, faces (F, 3).

    ``warp.geometry.IsoSurfaceMarchingCubes.extract`` (warp >= 1.18), else the older
    ``warp.MarchingCubes``. The grid is shared with torch, not copied.
    """
    import warp as wp

    wp.config.quiet = True
    torch.cuda.synchronize(values.device)  # warp launches on its own stream: the grid must be complete
    field = wp.from_torch(values.contiguous().float())
    try:
        import warp.geometry as wg

        verts, tris = wg.IsoSurfaceMarchingCubes.extract(field, 0.0)
    except (ImportError, AttributeError):
        nx, ny, nz = values.shape
        mc = wp.MarchingCubes(
            nx, ny, nz, max_verts=4 * nx * ny * nz // 8, max_tris=8 * nx * ny * nz // 8, device=str(values.device)
        )
        mc.surface(field, 0.0)
        verts, tris = mc.verts, mc.indices
    wp.synchronize()
    return wp.to_torch(verts).float(), wp.to_torch(tris).reshape(-1, 3).long()


def compare_marching_cubes(values: torch.Tensor, device: torch.device, repeats: int) -> list[str]:
    """Rows of the marching cubes comparison on one grid, scikit-image as the reference."""
    res = values.shape[0]
    ref_v, _ = marching_cubes_skimage(values)
    rows = []
    paths = [
        ("skimage (cpu)", lambda: marching_cubes_skimage(values), None),
        (f"torch ({device.type})", lambda: marching_cubes_torch(values), device),
    ]
    if warp_available(device):
        paths.append(("warp (cuda)", lambda: warp_marching_cubes(values), device))
    for name, fn, dev in paths:
        out_v, _ = fn()  # warm-up (warp compiles its kernels on the first call)
        seconds = median_time(fn, repeats, dev)
        verts = out_v.cpu().numpy() if isinstance(out_v, torch.Tensor) else out_v
        count_diff = (len(verts) - len(ref_v)) / max(1, len(ref_v))
        chamfer = vertex_chamfer_voxels(verts, ref_v, 1.0)  # index units: 1 = one voxel
        rows.append(
            f"{res:>4} {name:>14} {seconds * 1e3:>10.1f} {len(verts):>10,} {count_diff:>+9.3%} {chamfer:>12.2e}"
        )
    return rows


def coloured_mesh_rows(preset: str, resolutions: list[int], args, device: torch.device) -> Iterator[str]:
    """Median time of a coloured ``extract_mesh`` per resolution, with its stages, for one preset
    (each row as soon as it is measured; with ``--coloured-tf32`` each size again with TF32)."""
    t0 = time.perf_counter()
    _, sdf_fn, colour_fn, loss = fit_default_preset(args.train_steps, 4096, device, preset)
    yield f"# preset {preset}: fitted {args.train_steps} steps in {time.perf_counter() - t0:.1f} s (loss {loss:.4f})"
    precisions = ["highest", "high"] if args.coloured_tf32 and device.type == "cuda" else ["highest"]
    before = torch.get_float32_matmul_precision()
    for res, precision in [(r, p) for r in resolutions for p in precisions]:
        torch.set_float32_matmul_precision(precision)

        def run(res=res):
            return extract_mesh(
                sdf_fn, res, colour_fn, device=device, band_factor=args.band_factor, max_batch=args.max_batch
            )

        try:
            run()  # warm-up: allocations, kernels, the triangle table on the device
            meshes, times = [], []
            for _ in range(args.coloured_repeats):
                synchronize(device)
                tic = time.perf_counter()
                meshes.append(run())
                synchronize(device)
                times.append(time.perf_counter() - tic)
        finally:
            torch.set_float32_matmul_precision(before)
        stage = {
            k: statistics.median(m.stats.get(f"seconds_{k}", float("nan")) for m in meshes)
            for k in ("grid", "marching_cubes", "normals", "colours")
        }
        target = TARGETS_H100.get((preset, res))
        name = preset + ("+tf32" if precision == "high" else "")
        yield (
            f"{name:>12} {res:>4} {statistics.median(times) * 1e3:>9.1f} {stage['grid'] * 1e3:>8.1f} "
            f"{stage['marching_cubes'] * 1e3:>8.1f} {stage['normals'] * 1e3:>9.1f} "
            f"{stage['colours'] * 1e3:>9.1f} {meshes[-1].stats.get('n_evaluations', 0):>11,} "
            f"{len(meshes[-1].vertices):>9,} {'-' if target is None else f'{target * 1e3:.0f}':>11}"
            + (f"  (empty: {meshes[-1].stats.get('reason')}; fit more --train-steps)" if meshes[-1].is_empty else "")
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--dense-max", type=int, default=128, help="largest resolution with a dense baseline")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--band-factor", type=float, default=1.5)
    ap.add_argument("--max-batch", type=int, default=None, help="points per network call (default: per device)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    ap.add_argument("--mc-repeats", type=int, default=3, help="timed runs per marching cubes path (median)")
    ap.add_argument(
        "--coloured-presets",
        nargs="*",
        default=["default", "paper"],
        help="model presets of the coloured-mesh timing (none: skip it)",
    )
    ap.add_argument(
        "--coloured-resolutions",
        type=int,
        nargs="*",
        default=None,
        help="resolutions of the coloured-mesh timing (default: 256 512 on CUDA, 128 on the CPU)",
    )
    ap.add_argument("--coloured-repeats", type=int, default=5, help="timed coloured meshes per size (median)")
    ap.add_argument(
        "--coloured-tf32",
        action="store_true",
        help="on CUDA, time each coloured mesh again with TF32 matrix products allowed",
    )
    args = ap.parse_args()

    device = resolve_device(args.device)
    print(device_line(device))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model, sdf_fn, colour_fn, loss = fit_default_preset(args.train_steps, 4096, device)
    print(
        f"torch threads {torch.get_num_threads()}; default preset "
        f"({sum(p.numel() for p in model.decoder.parameters()):,} parameters) fitted "
        f"{args.train_steps} steps in {time.perf_counter() - t0:.1f} s (loss {loss:.4f})"
    )

    kw = dict(device=device, max_batch=args.max_batch)
    grids = {}
    print(
        f"{'res':>4} {'dense evals':>12} {'c2f evals':>10} {'ratio':>7} {'chamfer(vox)':>12} "
        f"{'dense grid s':>12} {'c2f grid s':>10} {'speedup':>7} {'c2f mesh+col s':>14} "
        f"{'mc skimage s':>12} {'mc torch s':>10} {'V':>7}"
    )
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
            lambda res=res: extract_mesh(sdf_fn, res, colour_fn, band_factor=args.band_factor, **kw),
            args.repeats if res <= 128 else 1,
            device,
        )
        t_sk = median_time(lambda v=c2f.values: marching_cubes_skimage(v), 3)
        t_th = median_time(lambda v=c2f.values: marching_cubes_torch(v), 3, device)
        grids[res] = c2f.values
        n_dense = res**3
        print(
            f"{res:>4} {n_dense:>12,} {c2f.stats['n_evaluations']:>10,} {c2f.stats['ratio']:>7.2%} "
            f"{chamfer:>12.2e} {dense_col} {t_c2f:>10.3f} {speed} {t_mesh:>14.3f} "
            f"{t_sk:>12.3f} {t_th:>10.3f} {len(mesh_c2f.vertices):>7,}"
        )

    print(
        f"\nmarching cubes on the narrow-band grids (warp-lang: "
        f"{'yes' if warp_available(device) else 'not run: needs CUDA and an importable warp'}); "
        "vertex count and Chamfer against scikit-image"
    )
    print(f"{'res':>4} {'path':>14} {'median ms':>10} {'vertices':>10} {'count diff':>9} {'chamfer(vox)':>12}")
    for values in grids.values():
        for row in compare_marching_cubes(values, device, args.mc_repeats):
            print(row)

    resolutions = args.coloured_resolutions
    if resolutions is None:
        resolutions = [256, 512] if device.type == "cuda" else [128]
    if args.coloured_presets and resolutions:
        print(
            "\ncoloured mesh (extract_mesh: narrow-band grid + marching cubes + normals + colour head at the "
            f"vertices), median of {args.coloured_repeats} after a warm-up, on {device}; target = issue 13's "
            "H100 target"
        )
        print(
            f"{'preset':>12} {'res':>4} {'total ms':>9} {'grid ms':>8} {'mc ms':>8} {'normal ms':>9} "
            f"{'colour ms':>9} {'evaluations':>11} {'vertices':>9} {'target ms':>11}"
        )
        for preset in args.coloured_presets:
            for row in coloured_mesh_rows(preset, resolutions, args, device):
                print(row, flush=True)


if __name__ == "__main__":
    main()
