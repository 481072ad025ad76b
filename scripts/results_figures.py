"""Pictures of docs/results.md (run under a display: `bash scripts/with_display.sh python scripts/results_figures.py`).

* docs/img/reconstructions.png: per thin class, ground truth | baseline TTO | all thin-structure losses;
* docs/img/interpolation.png: a coloured interpolation strip across classes with the demo model (the
  viewer's blend: codes linear, the class condition of the nearer end);
* docs/img/tto_sequence.png: TTO of a partial scan of a thin object (not in training) at a few iterations.

``python scripts/results_figures.py interpolation --img-dir /tmp/img --resolution 48`` draws one of them
elsewhere and coarser (a quick look; the smoke test's run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyvista as pv
import torch

from core.data.mesh_io import load_mesh
from core.data.normalization import normalize_mesh
from core.evaluation.figures import CAMERA, render_grid
from core.meshing import extract_mesh
from core.model import load_trained_model
from core.model.latent_ops import blend_condition, lerp

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
FIGURES = ("reconstructions", "interpolation", "tto")


def _gt(class_name: str, shape_id: str):
    mesh, _ = normalize_mesh(load_mesh(ROOT / "data" / "synthetic" / "meshes" / class_name / f"{shape_id}.glb"))
    fi = np.arange(len(mesh.faces))
    face_rgb = mesh.colours_at(fi, np.full((len(fi), 3), 1 / 3))
    poly_colours = np.zeros((len(mesh.vertices), 3), np.float32)
    counts = np.zeros(len(mesh.vertices))
    for k in range(3):
        np.add.at(poly_colours, mesh.faces[:, k], face_rgb)
        np.add.at(counts, mesh.faces[:, k], 1)
    return mesh.vertices, mesh.faces, poly_colours / np.maximum(counts, 1)[:, None]


def reconstructions(img: Path = IMG) -> None:
    import trimesh

    base = ROOT / "runs" / "demo" / "ablation_thin"
    rows, titles = [], ["ground truth", "baseline TTO", "all thin-structure losses"]
    for class_dir in sorted((base / "baseline" / "meshes").glob("*")):
        ply = sorted(class_dir.glob("*.ply"))[0]
        cells = [_gt(class_dir.name, ply.stem)]
        for losses in ("baseline", "all"):
            path = base / losses.replace(",", "+") / "meshes" / class_dir.name / ply.name
            if path.exists():
                m = trimesh.load(path, process=False)
                cells.append((m.vertices, m.faces, np.asarray(m.visual.vertex_colors)[:, :3] / 255.0))
            else:
                cells.append(None)
        rows.append(cells)
    if rows:
        render_grid(rows, titles, img / "reconstructions.png")


def interpolation(model, img: Path = IMG, resolution: int = 128) -> None:
    pairs = [("chair", "table"), ("lamp", "vase")]
    rows = []
    for a_cls, b_cls in pairs:
        a, b = model.codes_of_class(a_cls)[0], model.codes_of_class(b_cls)[0]
        ca, cb = model.training_condition(a), model.training_condition(b)  # the ends as trained
        row = []
        for t in np.linspace(0, 1, 6):
            code = lerp(model.shape_codes[a], model.shape_codes[b], t)
            colour = lerp(model.colour_codes[a], model.colour_codes[b], t)
            cond = blend_condition(ca, cb, t)  # the viewer's default: the nearer end's class
            mesh = extract_mesh(model.sdf_fn(code, cond), resolution, model.colour_fn(code, colour, cond))
            row.append(None if mesh.is_empty else (mesh.vertices, mesh.faces, mesh.colours))
        rows.append(row)
    render_grid(rows, [f"t = {t:.1f}" for t in np.linspace(0, 1, 6)], img / "interpolation.png", size=220)


def tto_sequence(model, img: Path = IMG, resolution: int = 96) -> None:
    from core.tto import TTOConfig, iterate_fit, load_observation

    obs = load_observation(ROOT / "resources" / "scans" / "chair_thin_partial.npz")
    rows = []
    for losses in ("baseline", "all"):
        config = TTOConfig.from_losses(losses, iterations=200, n_samples=4000)
        row = []
        for report in iterate_fit(model, obs, config, class_name="chair", every=50):
            if report.stage != "code" and not report.done:
                continue
            # Intermediate reports carry codes only; the final result may carry a fine-tuned decoder.
            used = model.with_decoder(report.result.decoder_override if report.result else None)
            cond = used.condition(class_name=report.class_name)
            mesh = extract_mesh(
                used.sdf_fn(report.shape_code, cond),
                resolution,
                used.colour_fn(report.shape_code, report.colour_code, cond),
            )
            row.append(None if mesh.is_empty else (mesh.vertices, mesh.faces, mesh.colours))
        rows.append(row[:5])
    n = min(len(r) for r in rows)
    rows = [r[:n] for r in rows]
    titles = [f"it {50 * (i + 1)}" for i in range(n - 1)] + ["final"]
    scan = obs.surface_points
    cloud = pv.PolyData(scan.astype(np.float32))
    render_grid(rows, titles, img / "tto_sequence.png", size=220)
    pl = pv.Plotter(off_screen=True, window_size=(300, 300))
    pl.set_background("white")
    pl.add_points(cloud, color="#d0302a", point_size=3)
    pl.camera_position = CAMERA
    pl.reset_camera(bounds=(-1, 1, -1, 1, -1, 1))
    pl.screenshot(str(img / "tto_scan.png"))
    pl.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "figures",
        nargs="*",
        choices=FIGURES,
        metavar="FIGURE",
        help=f"which pictures: {', '.join(FIGURES)} (default: all)",
    )
    parser.add_argument("--img-dir", type=Path, default=IMG, help="where the PNGs go (default: docs/img)")
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="meshing grid per side (default: 128 for the interpolation strip, 96 for the TTO fits)",
    )
    args = parser.parse_args(argv)
    which = args.figures or FIGURES
    torch.set_grad_enabled(True)
    model = load_trained_model(ROOT / "resources" / "demo" / "demo.pt", device="cpu")
    if "reconstructions" in which:
        reconstructions(args.img_dir)
    if "interpolation" in which:
        interpolation(model, args.img_dir, args.resolution or 128)
    if "tto" in which:
        tto_sequence(model, args.img_dir, args.resolution or 96)
    return 0


if __name__ == "__main__":
    sys.exit(main())
