"""Render the application icon (resources/icons/deepsdf-explorer.png) from the demo model.

    bash scripts/with_display.sh python scripts/make_icon.py [CLASS] [--out PNG] [--resolution 128]

A shelf of the demo model (or the first training shape of CLASS), coloured by its colour head, on a
transparent background: the icon shows what the application does. Re-run after the demo model changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyvista as pv

from core.evaluation.figures import CAMERA, mesh_polydata
from core.meshing import extract_mesh
from core.model import load_trained_model

ROOT = Path(__file__).resolve().parents[1]
ICON = ROOT / "resources" / "icons" / "deepsdf-explorer.png"
DEMO = ROOT / "resources" / "demo" / "demo.pt"
SIZE = 256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "class_name", nargs="?", default="shelf", metavar="CLASS", help="a class of the demo model (default: shelf)"
    )
    parser.add_argument("--out", type=Path, default=ICON, help="PNG to write (default: the application's icon)")
    parser.add_argument("--resolution", type=int, default=128, help="meshing grid per side (default 128)")
    args = parser.parse_args(argv)
    model = load_trained_model(DEMO)
    if args.class_name not in model.class_names:
        parser.error(f"CLASS {args.class_name!r}: not a class of {DEMO} (classes: {', '.join(model.class_names)})")
    index = model.codes_of_class(args.class_name)[0]
    code, colour = model.shape_codes[index], model.colour_codes[index]
    cond = model.training_condition(index)
    mesh = extract_mesh(model.sdf_fn(code, cond), args.resolution, model.colour_fn(code, colour, cond))
    pl = pv.Plotter(off_screen=True, window_size=(SIZE, SIZE))
    pl.add_mesh(mesh_polydata(mesh.vertices, mesh.faces, mesh.colours), scalars="rgb", rgb=True, smooth_shading=True)
    pl.camera_position = CAMERA
    pl.reset_camera()
    pl.camera.zoom(1.25)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pl.screenshot(str(args.out), transparent_background=True)
    pl.close()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
