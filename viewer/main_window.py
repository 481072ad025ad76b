"""The main window: 3D view in the centre, panels in docks, menus, status bar.

It wires state → workers → scene: every change of the code selection submits a mesh request
(preview resolution while interacting, full resolution when idle); the newest request wins.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar)
from pyvistaqt import QtInteractor

from core.errors import CheckpointError
from core.meshing.export import export_mesh
from core.model import load_trained_model
from viewer.panels.codes_panel import CodesPanel
from viewer.panels.display_panel import DisplayPanel
from viewer.panels.interpolation_panel import InterpolationPanel
from viewer.panels.latent_map_panel import LatentMapPanel
from viewer.panels.model_panel import ModelPanel
from viewer.panels.tto_panel import TTOPanel
from viewer.scene import Scene
from viewer.state import CodeSelection, ViewerState
from viewer.workers import LatestWinsWorker, mesh_job, run_task, slice_job

APP_NAME = "DeepSDF Explorer"
RECENT_KEY = "recent_checkpoints"


class MainWindow(QMainWindow):
    mesh_shown = Signal(object)  # MeshArrays now on screen
    model_loaded = Signal(object)
    model_failed = Signal(str)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("deepsdf-explorer", "viewer")
        self.state = ViewerState()
        self.plotter = QtInteractor(self)
        self.setCentralWidget(self.plotter.interactor)
        self.scene = Scene(self.plotter)
        self.current_mesh = None
        self._shown_request = 0
        self._pending_full = False

        self.mesher = LatestWinsWorker("mesher", self)
        self.mesher.finished_job.connect(self._mesh_ready)
        self.mesher.failed_job.connect(lambda _id, msg: self.show_status(f"meshing failed: {msg}"))
        self.mesher.busy_changed.connect(self._busy)
        self.mesher.start()
        self.slicer = LatestWinsWorker("slicer", self)
        self.slicer.finished_job.connect(lambda _id, data, _s: self.scene.show_slice(data if self.state.display.slice_enabled else None))
        self.slicer.failed_job.connect(lambda _id, msg: self.show_status(f"slice failed: {msg}"))
        self.slicer.start()
        self.idle_timer = QTimer(self)
        self.idle_timer.setSingleShot(True)
        self.idle_timer.setInterval(350)
        self.idle_timer.timeout.connect(self._refine)

        self.model_panel = ModelPanel(self.state)
        self.codes_panel = CodesPanel(self.state)
        self.interp_panel = InterpolationPanel(self.state)
        self.map_panel = LatentMapPanel(self.state)
        self.tto_panel = TTOPanel(self.state)
        self.display_panel = DisplayPanel(self.state)
        docks = [("Model", self.model_panel, Qt.LeftDockWidgetArea), ("Codes", self.codes_panel, Qt.LeftDockWidgetArea),
                 ("Interpolation", self.interp_panel, Qt.LeftDockWidgetArea),
                 ("Latent map", self.map_panel, Qt.RightDockWidgetArea),
                 ("Test-time optimisation", self.tto_panel, Qt.RightDockWidgetArea),
                 ("Display", self.display_panel, Qt.RightDockWidgetArea)]
        self.docks: dict[str, QDockWidget] = {}
        for title, widget, area in docks:
            dock = QDockWidget(title, self)
            dock.setObjectName(title)
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[title] = dock
        self.tabifyDockWidget(self.docks["Codes"], self.docks["Interpolation"])
        self.docks["Codes"].raise_()
        self.tabifyDockWidget(self.docks["Test-time optimisation"], self.docks["Display"])
        self.docks["Test-time optimisation"].raise_()

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.timing = QLabel("")
        self.timing.setToolTip("Time of the last mesh extraction (grid + marching cubes + normals + colours)")
        self.statusBar().addPermanentWidget(self.timing)
        self.statusBar().addPermanentWidget(self.progress)
        self._build_menus()

        self.state.selection_changed.connect(self._selection_changed)
        self.state.display_changed.connect(self._display_changed)
        self.state.history_changed.connect(self._history_changed)
        self.state.status.connect(self.show_status)
        self.state.model_changed.connect(self._model_changed)
        self.model_panel.open_requested.connect(self.open_dialog)
        self.interp_panel.export_requested.connect(self.export_sequence)
        self.display_panel.camera_requested.connect(self.scene.set_camera)
        self.display_panel.screenshot_requested.connect(self.screenshot_dialog)
        self.tto_panel.scan_loaded.connect(self._scan_loaded)
        self.tto_panel.compare_mesh.connect(self.scene.show_comparison)
        self.tto_panel.busy.connect(lambda text: self._busy(bool(text), text))
        self._last_display = self.state.display
        self._scan_points = None
        self.show_status("Open a checkpoint to start (File ▸ Open, or drop a .pt file on the window).")

    # -- menus ---------------------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self._action(file, "&Open checkpoint…", self.open_dialog, QKeySequence.Open, "Load a trained checkpoint")
        self.recent_menu = file.addMenu("Open &recent")
        self._fill_recent()
        file.addSeparator()
        self._action(file, "Export &mesh…", self.export_mesh_dialog, "Ctrl+E", "Save the current mesh as PLY, OBJ or GLB")
        self._action(file, "Export &codes…", self.export_codes_dialog, "Ctrl+Shift+E", "Save the current codes as JSON")
        self._action(file, "&Load codes…", self.load_codes_dialog, "Ctrl+L", "Load codes saved as JSON")
        self._action(file, "Save camera…", self.save_camera_dialog, None, "Save the camera view as JSON")
        self._action(file, "Load camera…", self.load_camera_dialog, None, "Restore a camera view from JSON")
        self._action(file, "&Screenshot…", lambda: self.screenshot_dialog(1, False), QKeySequence.Save, "Save the 3D view as PNG")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.Quit)
        edit = self.menuBar().addMenu("&Edit")
        self.undo_action = self._action(edit, "&Undo", self.state.undo, QKeySequence.Undo, "Undo the last code edit")
        self.redo_action = self._action(edit, "&Redo", self.state.redo, "Ctrl+Shift+Z", "Redo")
        self._history_changed()
        view = self.menuBar().addMenu("&View")
        self._action(view, "Reset camera", lambda: self.scene.set_camera("iso"), "R", "Reset the camera (iso view)")
        self._action(view, "Toggle colour", lambda: self.display_panel.colour.toggle(), "C", "Colour on/off")
        self._action(view, "Toggle wireframe", lambda: self.display_panel.wire.toggle(), "W", "Wireframe on/off")
        self._action(view, "Random code", self.codes_panel.pick_random, "Space", "A random code of the class")
        tto = self.menuBar().addMenu("&Fit")
        self._action(tto, "Start fit", self.tto_panel.start_fit, "F5", "Start test-time optimisation")
        self._action(tto, "Stop fit", self.tto_panel.stop_fit, "Esc", "Stop test-time optimisation")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.load_checkpoint(Path(p)))

    def recent(self) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        return [v for v in (value if isinstance(value, list) else [value]) if v]

    def _remember(self, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent() if p != str(path)]
        self.settings.setValue(RECENT_KEY, items[:8])
        self._fill_recent()

    # -- model ---------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.load_checkpoint(Path(path))

    def load_checkpoint(self, path: Path) -> None:
        """Load in the background; a bad file shows a dialog and keeps the current model."""
        self._busy(True, f"loading {Path(path).name}…")
        run_task(lambda: load_trained_model(path), lambda model: self._model_ready(path, model),
                 lambda message: self._model_error(path, message))

    def _model_ready(self, path: Path, model) -> None:
        self._busy(False)
        self.state.set_model(model)
        self._remember(Path(path))
        self.setWindowTitle(f"{APP_NAME} — {Path(path).name}")
        self.model_loaded.emit(model)

    def _model_error(self, path: Path, message: str) -> None:
        self._busy(False)
        self.model_failed.emit(message)
        self.show_error("Cannot open checkpoint", message)

    def show_error(self, title: str, message: str) -> None:
        self.show_status(message)
        QMessageBox.critical(self, title, message)

    def _model_changed(self) -> None:
        self.show_status(f"loaded {len(self.state.model.shape_ids)} codes, classes: {', '.join(self.state.model.class_names)}")

    # -- meshing -------------------------------------------------------------------------------
    def _selection_changed(self, interactive: bool) -> None:
        sel, model = self.state.selection, self.state.model
        if sel is None or model is None:
            return
        d = self.state.display
        resolution = d.preview_resolution if interactive else d.full_resolution
        self._pending_full = not interactive
        self.mesher.submit(mesh_job(model, sel, resolution))
        if interactive:
            self.idle_timer.start()  # refine when the interaction pauses
        if d.slice_enabled:
            self.slicer.submit(slice_job(model, sel, d.slice_axis, d.slice_position))

    def _refine(self) -> None:
        sel, model = self.state.selection, self.state.model
        if sel is not None and model is not None:
            self._pending_full = True
            self.mesher.submit(mesh_job(model, sel, self.state.display.full_resolution))

    def _mesh_ready(self, request_id: int, mesh, seconds: float) -> None:
        if request_id < self._shown_request:
            return  # an older result arriving late
        self._shown_request = request_id
        self.current_mesh = mesh
        self.scene.show_mesh(mesh)
        res = mesh.stats.get("resolution", "?")
        if mesh.is_empty:
            self.show_status(f"no surface for this code ({mesh.stats.get('reason', 'empty')})")
        self.timing.setText(f"{res}³ mesh in {seconds * 1000:.0f} ms, {len(mesh.vertices):,} vertices")
        self.mesh_shown.emit(mesh)

    def _busy(self, busy: bool, text: str = "") -> None:
        self.progress.setVisible(busy)
        if text:
            self.statusBar().showMessage(text)

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)

    # -- display -------------------------------------------------------------------------------
    def _display_changed(self) -> None:
        d, old = self.state.display, self._last_display
        self._last_display = d
        if d.colour != old.colour:
            self.scene.set_colour(d.colour)
        if d.wireframe != old.wireframe:
            self.scene.set_wireframe(d.wireframe)
        if d.dark_background != old.dark_background:
            self.scene.set_background(d.dark_background)
        if d.show_scan != old.show_scan:
            self.scene.show_scan(self._scan_points, d.show_scan)
        if (d.slice_enabled, d.slice_axis, d.slice_position) != (old.slice_enabled, old.slice_axis, old.slice_position):
            if d.slice_enabled and self.state.selection is not None and self.state.model is not None:
                self.slicer.submit(slice_job(self.state.model, self.state.selection, d.slice_axis, d.slice_position))
            elif not d.slice_enabled:
                self.scene.show_slice(None)
        if d.full_resolution != old.full_resolution:
            self._refine()

    def _scan_loaded(self, points) -> None:
        self._scan_points = points
        self.scene.show_scan(points, self.state.display.show_scan)

    def _history_changed(self) -> None:
        self.undo_action.setEnabled(self.state.can_undo())
        self.redo_action.setEnabled(self.state.can_redo())

    # -- files ---------------------------------------------------------------------------------
    def export_mesh_dialog(self) -> None:
        if self.current_mesh is None or self.current_mesh.is_empty:
            self.show_status("nothing to export yet")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export mesh", "shape.ply", "PLY (*.ply);;OBJ (*.obj);;GLB (*.glb)")
        if path:
            self.export_mesh_to(Path(path))

    def export_mesh_to(self, path: Path) -> Path:
        try:
            out = export_mesh(self.current_mesh, path)
        except Exception as exc:
            self.show_error("Export failed", f"{path}: {exc}")
            raise
        self.show_status(f"mesh written to {out}")
        return out

    def export_codes_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export codes", "codes.json", "JSON (*.json)")
        if path:
            self.export_codes_to(Path(path))

    def export_codes_to(self, path: Path) -> Path:
        from core.io_utils import atomic_write_json

        sel = self.state.selection
        data = {"format": "deepsdf-explorer-codes", "version": 1, "checkpoint": str(self.state.model.path), **sel.to_json()}
        atomic_write_json(path, data)
        self.show_status(f"codes written to {path}")
        return path

    def load_codes_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load codes", "", "JSON (*.json)")
        if path:
            self.load_codes_from(Path(path))

    def load_codes_from(self, path: Path) -> bool:
        if self.state.model is None:
            self.show_error("No model", "Open a checkpoint before loading codes.")
            return False
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            selection = CodeSelection.from_json(data, self.state.model)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.show_error("Cannot load codes", f"{path}: {exc}. Use a file written by File ▸ Export codes with this model.")
            return False
        self.state.select(selection)
        return True

    def save_camera_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save camera", "camera.json", "JSON (*.json)")
        if path:
            from core.io_utils import atomic_write_json

            atomic_write_json(Path(path), self.scene.camera_json())

    def load_camera_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load camera", "", "JSON (*.json)")
        if path:
            try:
                self.scene.load_camera_json(json.loads(Path(path).read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                self.show_error("Cannot load camera", f"{path}: {exc}")

    def screenshot_dialog(self, scale: int = 1, transparent: bool = False) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Screenshot", "screenshot.png", "PNG (*.png)")
        if path:
            out = self.scene.screenshot(path, scale, transparent)
            self.show_status(f"screenshot written to {out}")

    def export_sequence(self, frames: int) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export interpolation", "interpolation.gif",
                                              "GIF (*.gif);;MP4 (*.mp4);;PNG strip (*.png)")
        if path:
            self.export_sequence_to(Path(path), frames)

    def export_sequence_to(self, path: Path, frames: int, on_done=None) -> None:
        """Meshes computed in the background, rendered here (UI thread), written as GIF/MP4/PNG strip."""
        model = self.state.model
        selections = [self.interp_panel.selection_at(t) for t in np.linspace(0, 1, frames)]
        resolution = self.state.display.full_resolution

        def compute():
            return [mesh_job(model, s, resolution)() for s in selections]

        def render(meshes):
            images = []
            for mesh in meshes:
                self.scene.show_mesh(mesh)
                images.append(self.scene.image())
            self._busy(False)
            _write_sequence(path, images)
            self.show_status(f"sequence written to {path}")
            if on_done:
                on_done(path)

        self._busy(True, f"rendering {frames} frames…")
        run_task(compute, render, lambda msg: (self._busy(False), self.show_error("Export failed", msg)))

    # -- drag and drop -------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in (".pt", ".pth"):
                self.load_checkpoint(path)
            else:
                self.tto_panel.load_scan(path)
            break

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop workers and release VTK (also called by tests)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.tto_panel.shutdown()
        # Let background tasks finish and deliver their results while every object still lives.
        from PySide6.QtCore import QThreadPool
        from PySide6.QtWidgets import QApplication

        QThreadPool.globalInstance().waitForDone(60_000)
        QApplication.processEvents()
        self.mesher.stop()
        self.slicer.stop()
        self.plotter.close()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Process events until no mesh request is pending (headless mode and tests)."""
        from PySide6.QtWidgets import QApplication

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            QApplication.processEvents()
            if not self.progress.isVisible() and self.mesher._pending is None and self.current_mesh is not None \
                    and not self.idle_timer.isActive() and self._pending_full and self.mesher.superseded >= 0:
                if self.current_mesh.stats.get("resolution") == self.state.display.full_resolution:
                    return True
            time.sleep(0.01)
        return False


def _write_sequence(path: Path, images: list[np.ndarray]) -> None:
    import imageio.v2 as imageio

    path = Path(path)
    if path.suffix.lower() == ".png":
        from PIL import Image

        Image.fromarray(np.concatenate(images, axis=1)).save(path)
    elif path.suffix.lower() == ".mp4":
        imageio.mimsave(path, images, fps=8)
    else:
        imageio.mimsave(path, images, duration=0.12, loop=0)



