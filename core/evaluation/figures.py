"""Figures of meshes: a grid of meshes rendered off screen to a PNG, and the labels around it.

The one renderer the result pictures share (scripts/results_figures.py, scripts/make_icon.py and the
studies' comparison, ground-truth and interpolation pictures), so every picture frames a shape the same
way: the unit-sphere frame seen from :data:`CAMERA`, white background, the model's colours.

pyvista (VTK) and PIL are imported inside the functions: importing this module costs nothing, and
nothing here touches Qt. Rendering needs a display (VTK renders off screen but opens one): run under
``scripts/with_display.sh`` where there is none.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = [
    "CAMERA",
    "MAIN_RGB",
    "FLOATER_RGB",
    "HEADER",
    "CAPTION",
    "LEFT",
    "FOOTER",
    "mesh_polydata",
    "render_grid",
    "floater_painted",
    "label_grid",
]

CAMERA = ((2.2, 1.6, 2.6), (0, 0, 0), (0, 1, 0))
"""(position, focal point, view up) of every cell: a three-quarter view from above of the unit-sphere frame."""
MAIN_RGB, FLOATER_RGB = (0.78, 0.78, 0.78), (0.86, 0.08, 0.08)
""":func:`floater_painted`: faces of the main components (grey) and of the floating fragments (red)."""
HEADER, CAPTION, LEFT, FOOTER = 48, 22, 170, 26
"""Pixel bands :func:`label_grid` adds around a rendered grid: column titles, one caption line under each
cell, row labels on the left, a footer line (e.g. per-column means) at the bottom."""


def mesh_polydata(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray | None) -> Any:
    """A ``pyvista.PolyData`` of a triangle mesh with its colours as uint8 ``rgb``.

    ``vertices`` (V, 3), ``faces`` (F, 3) int; ``colours`` in [0, 1], (V, 3) per vertex or (F, 3) per face
    (pyvista puts the array on the points or the cells by its length), or None for no colours.
    """
    import pyvista as pv

    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    poly = pv.PolyData(np.asarray(vertices, np.float32), np.hstack([np.full((len(faces), 1), 3), faces]).ravel())
    if colours is not None:
        poly["rgb"] = (np.clip(colours, 0, 1) * 255).astype(np.uint8)
    return poly


def render_grid(cells: Sequence[Sequence[tuple | None]], titles: Sequence[str], path: Path, size: int = 260) -> None:
    """Render a grid of meshes to the PNG ``path`` (``size`` pixels a square cell).

    ``cells``: rows of equal length, each cell a (vertices, faces, colours) tuple for
    :func:`mesh_polydata` or None (left white). Per-vertex colours are shaded smoothly, per-face colours
    flat, a mesh without colours is light grey. ``titles``: one per column, written on the first row
    (empty: none). Every cell shows the box [-1, 1]³ from :data:`CAMERA`, so sizes compare across cells.
    """
    import pyvista as pv

    rows, cols = len(cells), len(cells[0])
    pl = pv.Plotter(off_screen=True, shape=(rows, cols), window_size=[size * cols, size * rows], border=False)
    try:
        # Plotter.set_background / reset_camera are functools.wraps stubs mypy cannot call; these are what they call
        pl.renderers.set_background("white")
        for r, row in enumerate(cells):
            for c, item in enumerate(row):
                pl.subplot(r, c)
                if item is not None:
                    poly = mesh_polydata(*item)
                    if "rgb" in poly.point_data:
                        pl.add_mesh(poly, scalars="rgb", rgb=True, smooth_shading=True)
                    elif "rgb" in poly.cell_data:
                        pl.add_mesh(poly, scalars="rgb", rgb=True)
                    else:
                        pl.add_mesh(poly, color="#cccccc", smooth_shading=True)
                if r == 0 and titles:
                    pl.add_text(titles[c], font_size=9, color="black")
                pl.camera_position = CAMERA
                pl.renderer.reset_camera(bounds=(-1, 1, -1, 1, -1, 1))
                pl.camera.zoom(1.2)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pl.screenshot(str(path))
    finally:
        pl.close()


def floater_painted(mesh: tuple | None) -> tuple | None:
    """(vertices, faces, per-face colours (F, 3)): main components :data:`MAIN_RGB`, floaters :data:`FLOATER_RGB`.

    ``mesh``: (vertices, faces, ...) or None (returned as is). Main components by
    :func:`core.evaluation.metrics.main_component_faces` (the rule ``mesh_components`` counts floaters by).
    """
    if mesh is None:
        return None
    from core.evaluation.metrics import main_component_faces

    vertices, faces = mesh[0], mesh[1]
    main = main_component_faces(vertices, faces)
    return vertices, faces, np.where(main[:, None], MAIN_RGB, FLOATER_RGB).astype(np.float32)


def label_grid(
    grid_png: Path,
    titles: Sequence[str],
    row_labels: Sequence[str],
    captions: Sequence[Sequence[str]],
    footers: Sequence[str],
    note: str,
) -> bytes:
    """The PNG bytes of a rendered grid (:func:`render_grid`, no titles) with its labels around it.

    Adds column ``titles`` above (:data:`HEADER` pixels), ``row_labels`` on the left (:data:`LEFT`), one caption
    line under each cell (``captions[row][column]``, :data:`CAPTION`; a cell captioned "not trained" also gets
    the words in grey across it), a footer line ("mean", then ``footers`` per column, :data:`FOOTER`)
    and ``note`` (at most three wrapped lines) in the top-left corner. The cell size is the grid's width over
    the number of titles.
    """
    from PIL import Image, ImageDraw, ImageFont

    grid = Image.open(grid_png).convert("RGB")
    rows, cols = len(row_labels), len(titles)
    size = grid.width // cols
    width, height = LEFT + grid.width, HEADER + rows * (size + CAPTION) + FOOTER
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    for c, title in enumerate(titles):
        draw.text((LEFT + c * size + size // 2, HEADER // 2), title, fill="black", font=font, anchor="mm")
    draw.multiline_text((6, 4), "\n".join(textwrap.wrap(note, 26)[:3]), fill="#555555", font=small)
    for r, label in enumerate(row_labels):
        top = HEADER + r * (size + CAPTION)
        canvas.paste(grid.crop((0, r * size, grid.width, (r + 1) * size)), (LEFT, top))
        wrapped = "\n".join(textwrap.wrap(label, 22, break_on_hyphens=False)[:4])
        draw.multiline_text((8, top + size // 2), wrapped, fill="black", font=font, anchor="lm")
        for c, text in enumerate(captions[r]):
            x = LEFT + c * size + size // 2
            draw.text((x, top + size + CAPTION // 2), text, fill="black", font=small, anchor="mm")
            if text == "not trained":
                draw.text((x, top + size // 2), "not trained", fill="#999999", font=font, anchor="mm")
        draw.line([(0, top + size + CAPTION - 1), (width, top + size + CAPTION - 1)], fill="#dddddd")
    bottom = HEADER + rows * (size + CAPTION)
    draw.text((8, bottom + FOOTER // 2), "mean", fill="black", font=font, anchor="lm")
    for c, text in enumerate(footers):
        draw.text((LEFT + c * size + size // 2, bottom + FOOTER // 2), text, fill="black", font=small, anchor="mm")
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
