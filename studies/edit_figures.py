"""Before/after pictures of each edit kind (docs/img/edit_*.png) for README.md and docs/editing.md.

    bash scripts/with_display.sh .venv/bin/python -m studies.edit_figures [--img-dir docs/img] [--resolution 128]

The same edits as ``main.py edit`` (core.edit), rendered off screen with one camera per row so
sizes compare across panels (the viewer's ``--screenshot`` of mesh files frames each panel on its
own mesh, which would hide a drag). Blue spheres: drag handles at their targets, the paint brush centre;
the box: the graft region.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyvista as pv

from core.edit import Brush, Handle, Region, codes_of, drag, graft, paint, take_snapshot
from core.edit.snapshot import ShapeCodes
from core.meshing import extract_mesh
from core.model import load_trained_model
from viewer.scene import CAMERA_PRESETS, LIGHT_BG, polydata_faces

ROOT = Path(__file__).resolve().parents[1]

IMG = ROOT / "docs" / "img"
RES = 128
PAINT = "#2040c0"
"""The seat's blue, painted on the red back: a colour of the class's palette."""


def mesh_of(model, codes: ShapeCodes, resolution: int = RES):
    return extract_mesh(
        model.sdf_fn(codes.shape_code, codes.condition),
        resolution,
        model.colour_fn(codes.shape_code, codes.colour_code, codes.condition),
    )


def render_row(panels, path: Path, camera: str, size=(360, 440)) -> None:
    """panels: (title, MeshArrays, marker points (K, 3) | None, Region | None); one camera for all."""
    direction, up = (np.asarray(v, np.float64) for v in CAMERA_PRESETS[camera])
    direction /= np.linalg.norm(direction)
    pts = np.concatenate([p[1].vertices for p in panels])
    centre = 0.5 * (pts.max(0) + pts.min(0))
    radius = float(np.linalg.norm(pts - centre, axis=1).max())
    pl = pv.Plotter(off_screen=True, shape=(1, len(panels)), window_size=(size[0] * len(panels), size[1]), border=False)
    for i, (title, mesh, markers, region) in enumerate(panels):
        pl.subplot(0, i)
        pl.set_background(LIGHT_BG)
        poly = pv.PolyData(mesh.vertices.astype(np.float32), polydata_faces(mesh.faces))
        poly.point_data["rgb"] = (np.clip(mesh.colours, 0, 1) * 255).astype(np.uint8)
        pl.add_mesh(poly, scalars="rgb", rgb=True, smooth_shading=True, show_scalar_bar=False)
        for point in [] if markers is None else np.asarray(markers, np.float64).reshape(-1, 3):
            pl.add_mesh(pv.Sphere(radius=0.025, center=point), color="#1f6fff")
        if region is not None:
            c, h = np.asarray(region.centre), np.asarray(region.size)
            pl.add_mesh(
                pv.Box(bounds=(c[0] - h[0], c[0] + h[0], c[1] - h[1], c[1] + h[1], c[2] - h[2], c[2] + h[2])),
                style="wireframe",
                color="#1f6fff",
                line_width=2,
            )
        pl.add_text(title, font_size=10, color="black")
        angle = np.radians(pl.camera.view_angle)
        distance = 1.05 * radius / np.sin(min(angle, 2 * np.arctan(np.tan(angle / 2) * size[0] / size[1])) / 2)
        pl.camera_position = [tuple(centre + distance * direction), tuple(centre), tuple(up)]
    pl.enable_anti_aliasing("ssaa")
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.screenshot(str(path))
    pl.close()
    print("wrote", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-dir", type=Path, default=IMG, help="where edit_drag/paint/graft.png go (docs/img)")
    parser.add_argument("--resolution", type=int, default=RES, help=f"meshing grid per side (default {RES})")
    args = parser.parse_args(argv)
    img, res = args.img_dir, args.resolution
    model = load_trained_model(ROOT / "resources" / "demo" / "demo.pt", device="cpu")
    a = codes_of(model, "chair/chair_003")
    snap = take_snapshot(model, a)
    v = snap.mesh.vertices.astype(np.float64)
    top = v[np.argmax(v[:, 1])]
    before = mesh_of(model, a, res)

    panels = [("before", before, top[None], None)]
    for dy in (0.05, 0.10, 0.15):
        target = top + [0.0, dy, 0.0]
        r = drag(model, snap, [Handle(tuple(top), tuple(target))])
        panels.append(
            (
                f"drag up {dy:.2f} ({r.plausibility.distance:.1f} Mah.)",
                mesh_of(model, ShapeCodes(r.shape_code, a.colour_code, a.condition), res),
                target[None],
                None,
            )
        )
    render_row(panels, img / "edit_drag.png", "side")

    r = paint(model, snap, [Brush(tuple(top), 0.3, PAINT)])
    painted = mesh_of(model.with_decoder(r.decoder_override), ShapeCodes(a.shape_code, r.colour_code, a.condition), res)
    render_row(
        [
            ("before", before, top[None], None),
            (
                f"painted {PAINT}: brush dE {r.metrics['delta_e_brush']:.1f}, rest dE {r.metrics['delta_e_rest']:.1f}",
                painted,
                top[None],
                None,
            ),
        ],
        img / "edit_paint.png",
        "iso",
    )

    b = codes_of(model, "chair/chair_000")
    region = Region("box", (0.0, 0.5, 0.0), (0.6, 0.4, 0.6))
    r = graft(model, snap, take_snapshot(model, b), region)
    grafted = mesh_of(model, ShapeCodes(r.shape_code, r.colour_code, r.condition), res)
    render_row(
        [
            ("A chair_003", before, None, None),
            ("B chair_000", mesh_of(model, b, res), None, region),
            ("A + upper back of B", grafted, None, region),
        ],
        img / "edit_graft.png",
        "iso",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
