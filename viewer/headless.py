"""Scripted rendering for the command line and CI: load, pick codes, wait for the mesh, write images.

The same window, workers and scene as the interactive viewer are used (so this also checks
them); for a shot of the 3D view alone the docks and bars are hidden, so the view is exactly
the requested size. :func:`render_meshes` draws mesh files (a reconstruction beside its ground
truth) side by side without a window or a model. Images are written in the format their
suffix names (:mod:`viewer.image_files`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from core.data.sources.folder import safe_id
from viewer.image_files import save_image
from viewer.main_window import MainWindow

__all__ = ["ShotRequest", "HeadlessError", "render_screenshots", "render_meshes"]

LOAD_TIMEOUT_MS = 300_000
MESH_TIMEOUT_S = 600.0
UI_SIZE = (1440, 900)


class HeadlessError(RuntimeError):
    """A request the model cannot satisfy (unknown class or shape id, bad checkpoint)."""


@dataclass
class ShotRequest:
    """What the command line asked for."""

    screenshot: Path | None = None
    screenshots: Path | None = None
    class_name: str | None = None
    code: str | None = None
    interp: tuple[str, str, float] | None = None
    size: tuple[int, int] = (1000, 800)
    camera: str = "iso"


def _load(window: MainWindow, ckpt: Path) -> None:
    loop = QEventLoop()
    errors: list[str] = []
    window.show_error = lambda title, message: errors.append(message)  # no dialogs headless
    window.model_loaded.connect(loop.quit)
    window.model_failed.connect(loop.quit)
    QTimer.singleShot(LOAD_TIMEOUT_MS, loop.quit)
    window.load_checkpoint(ckpt)
    loop.exec()
    if window.state.model is None:
        raise HeadlessError(errors[-1] if errors else f"{ckpt}: loading timed out")


def _settle(window: MainWindow) -> None:
    """Wait for the full-resolution mesh of the current codes, then let Qt lay out and paint."""
    if not window.wait_idle(MESH_TIMEOUT_S):
        raise HeadlessError("timed out waiting for the mesh")
    for _ in range(3):
        QApplication.processEvents()
        time.sleep(0.02)


def _view_only(window: MainWindow, size: tuple[int, int], on: bool) -> None:
    """Hide (or restore) docks and bars so the 3D view fills a window of ``size``.

    The layout must drop the docks' minimum sizes before the resize, or Qt clamps it.
    """
    for dock in window.docks.values():
        dock.setVisible(not on)
    window.menuBar().setVisible(not on)
    window.statusBar().setVisible(not on)
    for _ in range(20):
        QApplication.processEvents()
        window.resize(*size)
        QApplication.processEvents()
        if not on or tuple(window.plotter.window_size) == tuple(size):
            break
        time.sleep(0.01)


def _index(model, shape_id: str) -> int:
    if shape_id not in model.shape_ids:
        some = ", ".join(model.shape_ids[:8]) + (", …" if len(model.shape_ids) > 8 else "")
        raise HeadlessError(f"unknown shape id {shape_id!r}; this model has {len(model.shape_ids)} codes: {some}")
    return model.shape_ids.index(shape_id)


def _pick(window: MainWindow, shape_id: str | None, class_name: str | None) -> None:
    model = window.state.require_model()
    if class_name is not None and class_name not in model.class_names:
        raise HeadlessError(f"unknown class {class_name!r}; this model knows: {', '.join(model.class_names)}")
    if shape_id is not None:
        idx = _index(model, shape_id)
    elif class_name is not None:
        idx = model.codes_of_class(class_name)[0]
    else:  # the code the model opened on (its card's first shape, else its first class's first code)
        idx = window.state.first_index
    window.state.select(window.state.training_code(idx))


def _interp(window: MainWindow, a: str, b: str, t: float) -> None:
    model = window.state.model
    panel = window.interp_panel
    panel.set_endpoints(_index(model, a), _index(model, b))
    panel.link.setChecked(True)
    selection = panel.selection_at(float(t))
    assert selection is not None  # set_endpoints has just set both ends
    window.state.select(selection)


def _shoot(window: MainWindow, camera: str, path: Path, settle: bool = True) -> Path:
    if settle:
        _settle(window)
    window.scene.set_camera(camera)
    return window.scene.screenshot(path)


def render_screenshots(window: MainWindow, ckpt: Path, request: ShotRequest) -> list[Path]:
    """Render what ``request`` asks for; return the files written. Raises HeadlessError."""
    _load(window, ckpt)
    model = window.state.require_model()  # _load raises when none loaded
    written: list[Path] = []
    _view_only(window, request.size, True)
    if request.screenshot is not None:
        if request.interp:
            _interp(window, *request.interp)
        else:
            _pick(window, request.code, request.class_name)
        written.append(_shoot(window, request.camera, request.screenshot))
    if request.screenshots is not None:
        out = Path(request.screenshots)
        for cls in model.class_names:  # names from the checkpoint (a DeepSDF split's keys): made file-name-safe
            _pick(window, None, cls)
            written.append(_shoot(window, request.camera, out / f"class_{safe_id(cls)}.png"))
        if len(model.class_names) > 1:
            a = model.shape_ids[model.codes_of_class(model.class_names[0])[0]]
            b = model.shape_ids[model.codes_of_class(model.class_names[1])[0]]
            for t in (0.0, 0.5, 1.0):
                _interp(window, a, b, t)
                written.append(
                    _shoot(window, request.camera, out / f"interpolation_{safe_id(a)}_{safe_id(b)}_{t:.2f}.png")
                )
        _pick(window, None, None)
        _settle(window)
        loop = QEventLoop()
        window.slicer.finished_job.connect(loop.quit)
        QTimer.singleShot(120_000, loop.quit)
        window.state.set_display(slice_enabled=True, slice_axis=2, slice_position=0.0)
        loop.exec()
        written.append(_shoot(window, request.camera, out / "slice_z0.png", settle=False))
        window.state.set_display(slice_enabled=False)
        window.scene.set_camera(request.camera)
        _view_only(window, _screen_fit(UI_SIZE), False)
        window._size_docks()
        window.scene.set_camera(request.camera)
        _settle(window)
        ui = out / "window.png"
        if not window.window_image().save(str(ui), "PNG"):
            raise HeadlessError(f"{ui}: the window image could not be written")
        written.append(ui)
    return written


def _screen_fit(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` shrunk to the screen, so the whole window is drawn."""
    screen = QApplication.primaryScreen()
    if screen is None:
        return size
    geo = screen.availableGeometry()
    return min(size[0], geo.width()), min(size[1], geo.height())


def _mesh_polydata(path: Path):
    """A pyvista PolyData of a mesh file with its colours per vertex (``rgb``), original frame."""
    import pyvista as pv

    from core.data.mesh_io import load_mesh
    from viewer.scene import polydata_faces

    mesh = load_mesh(path)
    faces = np.asarray(mesh.faces, np.int64)
    corners = np.tile(np.eye(3), (len(faces), 1))
    colours = mesh.colours_at(np.repeat(np.arange(len(faces)), 3), corners)  # (3F, 3), one per face corner
    rgb = np.zeros((len(mesh.vertices), 3), np.float32)
    rgb[faces.reshape(-1)] = colours
    poly = pv.PolyData(np.asarray(mesh.vertices, np.float32), polydata_faces(faces))
    poly.point_data["rgb"] = (np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
    return poly


def render_meshes(
    paths: list[Path], out: Path, size: tuple[int, int] = (1000, 800), camera: str = "iso", dark: bool = False
) -> Path:
    """Draw mesh files side by side, one panel of ``size`` each, into the image ``out``.

    Each panel shows its file's name and is framed on its own mesh from the ``camera`` preset,
    so a reconstruction in the unit-sphere frame and its ground truth in the original frame are
    both seen whole. Every file is loaded before anything is drawn: a bad one raises
    :class:`core.utils.errors.MeshLoadError` naming it, and nothing is written.
    """
    import pyvista as pv

    from viewer.scene import CAMERA_PRESETS, DARK_BG, LIGHT_BG

    polys = [_mesh_polydata(Path(p)) for p in paths]
    direction, up = (np.asarray(v, np.float64) for v in CAMERA_PRESETS[camera])
    direction /= np.linalg.norm(direction)
    width, height = size
    plotter = pv.Plotter(off_screen=True, shape=(1, len(polys)), window_size=[width * len(polys), height], border=False)
    try:
        for i, (path, poly) in enumerate(zip(paths, polys, strict=True)):
            plotter.subplot(0, i)
            # What Plotter.set_background does; its functools.wraps stub is not a bound method to mypy.
            plotter.renderers.set_background(DARK_BG if dark else LIGHT_BG)
            plotter.add_mesh(poly, scalars="rgb", rgb=True, smooth_shading=True, show_scalar_bar=False)
            plotter.add_text(Path(path).name, font_size=10, color="white" if dark else "black")
            centre = np.asarray(poly.center, np.float64)
            radius = max(float(np.linalg.norm(np.asarray(poly.points) - centre, axis=1).max()), 1e-6)
            view_angle = np.radians(plotter.camera.view_angle)
            fit_angle = min(view_angle, 2 * np.arctan(np.tan(view_angle / 2) * width / height))
            distance = 1.08 * radius / np.sin(fit_angle / 2)
            plotter.camera_position = [tuple(centre + distance * direction), tuple(centre), tuple(up)]
        plotter.enable_anti_aliasing("ssaa")
        image = plotter.screenshot(None, return_img=True)
        assert image is not None  # return_img=True returns the image
    finally:
        plotter.close()
    return save_image(out, image)
