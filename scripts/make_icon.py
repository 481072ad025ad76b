"""Render the application icon (resources/icons/deepsdf-explorer.png) from the demo model.

    bash scripts/with_display.sh python scripts/make_icon.py

A shelf of the demo model, coloured by its colour head, on a transparent background: the icon
shows what the application does. Re-run after the demo model changes.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyvista as pv  # noqa: E402
from results_figures import CAMERA, _poly  # noqa: E402  (same folder: the figures' mesh and camera)

from core.meshing import extract_mesh  # noqa: E402
from core.model import load_trained_model  # noqa: E402

ICON = ROOT / "resources" / "icons" / "deepsdf-explorer.png"
SIZE = 256
CLASS = sys.argv[1] if len(sys.argv) > 1 else "shelf"


def main() -> int:
    model = load_trained_model(ROOT / "resources" / "demo" / "demo.pt")
    index = model.codes_of_class(CLASS)[0]
    code, colour = model.shape_codes[index], model.colour_codes[index]
    cond = model.training_condition(index)
    mesh = extract_mesh(model.sdf_fn(code, cond), 128, model.colour_fn(code, colour, cond))
    pl = pv.Plotter(off_screen=True, window_size=(SIZE, SIZE))
    pl.add_mesh(_poly(mesh.vertices, mesh.faces, mesh.colours), scalars="rgb", rgb=True, smooth_shading=True)
    pl.camera_position = CAMERA
    pl.reset_camera()
    pl.camera.zoom(1.25)
    ICON.parent.mkdir(parents=True, exist_ok=True)
    pl.screenshot(str(ICON), transparent_background=True)
    pl.close()
    print(ICON)
    return 0


if __name__ == "__main__":
    sys.exit(main())
