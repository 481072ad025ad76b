"""Scripted rendering for the command line and CI: load, pick codes, wait for the mesh, write PNGs.

The same window, workers and scene as the interactive viewer are used (so this also checks
them); for a shot of the 3D view alone the docks and bars are hidden, so the view is exactly
the requested size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from viewer.main_window import MainWindow

__all__ = ["ShotRequest", "HeadlessError", "render_screenshots"]

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
    model = window.state.model
    if class_name is not None and class_name not in model.class_names:
        raise HeadlessError(f"unknown class {class_name!r}; this model knows: {', '.join(model.class_names)}")
    if shape_id is not None:
        idx = _index(model, shape_id)
    elif class_name is not None:
        idx = model.codes_of_class(class_name)[0]
    else:
        idx = model.codes_of_class(model.class_names[0])[0] if model.class_names else 0
    window.state.select(window.state.training_code(idx))


def _interp(window: MainWindow, a: str, b: str, t: float) -> None:
    model = window.state.model
    panel = window.interp_panel
    panel.set_endpoints(_index(model, a), _index(model, b))
    panel.link.setChecked(True)
    window.state.select(panel.selection_at(float(t)))


def _shoot(window: MainWindow, camera: str, path: Path) -> Path:
    _settle(window)
    window.scene.set_camera(camera)
    return window.scene.screenshot(path)


def render_screenshots(window: MainWindow, ckpt: Path, request: ShotRequest) -> list[Path]:
    """Render what ``request`` asks for; return the files written. Raises HeadlessError."""
    _load(window, ckpt)
    model = window.state.model
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
        for cls in model.class_names:
            _pick(window, None, cls)
            written.append(_shoot(window, request.camera, out / f"class_{cls}.png"))
        if len(model.class_names) > 1:
            a = model.shape_ids[model.codes_of_class(model.class_names[0])[0]]
            b = model.shape_ids[model.codes_of_class(model.class_names[1])[0]]
            for t in (0.0, 0.5, 1.0):
                _interp(window, a, b, t)
                _settle(window)
                window.scene.set_camera(request.camera)
                written.append(window.scene.screenshot(out / f"interpolation_{a}_{b}_{t:.2f}.png"))
        _pick(window, None, None)
        _settle(window)
        loop = QEventLoop()
        window.slicer.finished_job.connect(loop.quit)
        QTimer.singleShot(120_000, loop.quit)
        window.state.set_display(slice_enabled=True, slice_axis=2, slice_position=0.0)
        loop.exec()
        window.scene.set_camera(request.camera)
        written.append(window.scene.screenshot(out / "slice_z0.png"))
        window.state.set_display(slice_enabled=False)
        window.scene.set_camera(request.camera)
        _view_only(window, _screen_fit(UI_SIZE), False)
        window._size_docks()
        window.scene.set_camera(request.camera)
        _settle(window)
        ui = out / "window.png"
        window.window_image().save(str(ui))
        written.append(ui)
    return written


def _screen_fit(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` shrunk to the screen, so the whole window is drawn."""
    screen = QApplication.primaryScreen()
    if screen is None:
        return size
    geo = screen.availableGeometry()
    return min(size[0], geo.width()), min(size[1], geo.height())
