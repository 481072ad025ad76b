"""Headless rendering for scripts and CI: load, pick codes, wait for the mesh, write PNGs."""
from __future__ import annotations

import argparse
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

from viewer.main_window import MainWindow


def _wait(window: MainWindow, signal, timeout_ms: int = 120_000) -> bool:
    loop = QEventLoop()
    fired = {"ok": False}

    def done(*_):
        fired["ok"] = True
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(done)
    return fired["ok"]


def _load(window: MainWindow, ckpt: Path) -> bool:
    loop = QEventLoop()
    window.model_loaded.connect(loop.quit)
    window.model_failed.connect(loop.quit)
    window.show_error = lambda title, message: print(f"error: {message}")  # no dialogs headless
    window.load_checkpoint(ckpt)
    QTimer.singleShot(120_000, loop.quit)
    loop.exec()
    return window.state.model is not None


def _show(window: MainWindow, select) -> None:
    """Run ``select`` and wait until its full-resolution mesh is on screen."""
    select()
    while True:
        if not _wait(window, window.mesh_shown):
            raise RuntimeError("timed out waiting for a mesh")
        if window.mesher._pending is None and window.current_mesh is not None:
            return


def render_screenshots(window: MainWindow, ckpt: Path, args: argparse.Namespace) -> list[Path]:
    if not _load(window, ckpt):
        return []
    # The mesh of the model's first code arrives after loading.
    _wait(window, window.mesh_shown)
    model = window.state.model
    written: list[Path] = []

    def pick_code(shape_id: str | None, class_name: str | None) -> None:
        if shape_id is not None:
            idx = model.index_of(shape_id)
        else:
            idx = model.codes_of_class(class_name)[0] if class_name else 0
        window.state.select(window.state.training_code(idx))

    def interp(a: str, b: str, t: float) -> None:
        panel = window.interp_panel
        panel.a_box.setCurrentIndex(model.index_of(a))
        panel.b_box.setCurrentIndex(model.index_of(b))
        panel.link.setChecked(True)
        window.state.select(panel.selection_at(t))

    if args.screenshot is not None:
        if args.interp:
            _show(window, lambda: interp(args.interp[0], args.interp[1], float(args.interp[2])))
        else:
            _show(window, lambda: pick_code(args.code, args.class_name))
        written.append(window.scene.screenshot(args.screenshot))
    if args.screenshots is not None:
        out = Path(args.screenshots)
        for cls in model.class_names:
            _show(window, lambda c=cls: pick_code(None, c))
            written.append(window.scene.screenshot(out / f"class_{cls}.png"))
        if len(model.class_names) > 1:
            a = model.shape_ids[model.codes_of_class(model.class_names[0])[0]]
            b = model.shape_ids[model.codes_of_class(model.class_names[1])[0]]
            _show(window, lambda: interp(a, b, 0.5))
            written.append(window.scene.screenshot(out / "interpolation_half.png"))
        window.state.set_display(slice_enabled=True, slice_axis=2, slice_position=0.0)
        _wait(window, window.slicer.finished_job, 60_000)
        written.append(window.scene.screenshot(out / "slice.png"))
        window.state.set_display(slice_enabled=False)
        window.grab().save(str(out / "window.png"))
        written.append(out / "window.png")
    return written
