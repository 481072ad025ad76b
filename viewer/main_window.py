"""The main window: 3D view in the centre, panels in docks, menus, status bar.

It wires state → workers → scene: every change of the code selection submits a mesh request
(preview resolution while interacting, full resolution once the interaction pauses, after a
short debounce); the newest request wins, older pending ones are dropped. The window owns all
file dialogs and message boxes so panels stay testable without them.
"""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QWidget,
)
from pyvistaqt import QtInteractor

from core.meshing.export import EXPORT_FORMATS, export_mesh
from core.model import load_trained_model
from viewer.gui_gc import GuiThreadGarbageCollector
from viewer.panels.codes_panel import CodesPanel
from viewer.panels.display_panel import DisplayPanel
from viewer.panels.edit_panel import EditPanel
from viewer.panels.interpolation_panel import InterpolationPanel
from viewer.panels.latent_map_panel import LatentMapPanel
from viewer.panels.model_panel import ModelPanel
from viewer.panels.tto_panel import TTOPanel
from viewer.scene import CAMERA_PRESETS, Scene
from viewer.state import CodeSelection, ViewerState
from viewer.workers import LatestWinsWorker, displayed_mesh_job, mesh_job, run_task, slice_job, wait_for_tasks

__all__ = ["MainWindow", "APP_NAME", "write_sequence"]

APP_NAME = "DeepSDF Explorer"
RECENT_KEY = "recent_checkpoints"
MAX_RECENT = 8
REFINE_DELAY_MS = 300
"""Quiet time after the last interactive edit before the full-resolution mesh is requested."""
OPEN_HINT = (
    "Pick a bundled model in the Models menu, open a checkpoint (Ctrl+O) or a DeepSDF experiment, "
    "or drop a .pt file or experiment folder here."
)


class MainWindow(QMainWindow):
    mesh_shown = Signal(object)
    """MeshArrays now on screen."""
    model_loaded = Signal(object)
    model_failed = Signal(str)
    """The error message (a CheckpointError's names the file and the fix)."""
    show_error: Callable[[str, str], None]
    """Report an error (title, message): a modal message box; tests and headless mode put a collector here."""

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.show_error = self._error_dialog
        self.setWindowTitle(APP_NAME)
        self.resize(1440, 900)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings("deepsdf-explorer", "viewer")
        self.state = ViewerState()
        # auto_update=False: pyvistaqt would otherwise re-render 5 times a second whether or not
        # anything changed (on a software GL that alone eats most of the UI thread); every
        # change asks the scene for a render itself. FXAA instead of MSAA: a fraction of the
        # cost on software GL, indistinguishable on a GPU (Scene.set_refined says when).
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=1)
        self.plotter.interactor.setToolTip("")  # a tool tip over the 3D view would hide the shape
        self.setCentralWidget(self.plotter.interactor)
        self.scene = Scene(self.plotter)
        self.scene.set_hint(OPEN_HINT)
        self.current_mesh = None
        self._shown_request = 0
        self._first_request_of_model = 0
        self._fit_camera_next = False
        self._closed = False
        self.remember_recent = True
        """Add opened checkpoints to File ▸ Open recent (off for headless renders)."""
        self.model_device = "auto"
        """Where checkpoints load (``view --device``): auto (CUDA when present), cpu or cuda[:N]."""

        self.mesher = LatestWinsWorker("mesher", self)
        self.mesher.finished_job.connect(self._mesh_ready)
        self.mesher.failed_job.connect(self._mesh_failed)
        self.mesher.busy_changed.connect(lambda busy: self._busy(busy))
        self.mesher.start()
        self.slicer = LatestWinsWorker("slicer", self)
        self.slicer.finished_job.connect(self._slice_ready)
        self.slicer.failed_job.connect(lambda _id, msg: self.show_status(f"slice failed: {msg}"))
        self.slicer.start()
        # Garbage with Qt/VTK wrappers must never be freed on a worker thread.
        self.gui_gc = GuiThreadGarbageCollector(self)
        self.idle_timer = QTimer(self)
        self.idle_timer.setSingleShot(True)
        self.idle_timer.setInterval(REFINE_DELAY_MS)
        self.idle_timer.timeout.connect(self.state.finish_interaction)

        self._build_panels()
        self._build_status_bar()
        self._build_menus()
        self._connect()
        self.show_status("Pick a model to start (Models menu, File ▸ Open, or drop a .pt file on the window).")

    # -- construction --------------------------------------------------------------------------
    def _build_panels(self) -> None:
        self.model_panel = ModelPanel(self.state)
        self.codes_panel = CodesPanel(self.state)
        self.interp_panel = InterpolationPanel(self.state)
        self.map_panel = LatentMapPanel(self.state)
        self.tto_panel = TTOPanel(self.state)
        self.display_panel = DisplayPanel(self.state)
        self.edit_panel = EditPanel(self.state)
        # One tabbed group only: Qt 6.12 leaves a stray, visible tab bar over the window when
        # a second group is tabified (reproduced with bare QDockWidgets).
        docks = [
            ("Model", self.model_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Codes", self.codes_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Interpolation", self.interp_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Display", self.display_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Latent map", self.map_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Test-time optimisation", self.tto_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Edit", self.edit_panel, Qt.DockWidgetArea.RightDockWidgetArea),
        ]
        self.docks: dict[str, QDockWidget] = {}
        for title, widget, area in docks:
            dock = QDockWidget(title, self)
            dock.setObjectName(title)
            dock.setWidget(_scrollable(widget))
            dock.setToolTip(f"{title} panel (View menu to show or hide; drag the title to move it)")
            self.addDockWidget(area, dock)
            self.docks[title] = dock
        self.tabifyDockWidget(self.docks["Codes"], self.docks["Interpolation"])
        self.tabifyDockWidget(self.docks["Interpolation"], self.docks["Display"])
        self.docks["Codes"].raise_()
        self._docks_sized = False

    def _size_docks(self) -> None:
        """Narrow side columns and a short model summary, so the 3D view gets most of the window.

        Done when the window is first shown: before that Qt has no geometry to divide.
        """
        self.resizeDocks([self.docks["Model"], self.docks["Latent map"]], [290, 330], Qt.Orientation.Horizontal)
        height = max(400, self.height() - 80)
        self.resizeDocks([self.docks["Model"], self.docks["Codes"]], [200, height - 200], Qt.Orientation.Vertical)
        self.resizeDocks(
            [self.docks["Latent map"], self.docks["Test-time optimisation"]],
            [250, height - 250],
            Qt.Orientation.Vertical,
        )

    def showEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().showEvent(event)
        if not self._docks_sized:
            self._docks_sized = True
            self._size_docks()

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(140)
        self.progress.setRange(0, 0)
        self.progress.setToolTip("Background work in progress (meshing, loading, fitting)")
        self.progress.hide()
        self.timing = QLabel("")
        self.timing.setToolTip(
            "Resolution and time of the last mesh extraction (grid + marching cubes + normals + colours)"
        )
        self.statusBar().addPermanentWidget(self.timing)
        self.statusBar().addPermanentWidget(self.progress)

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work with the menu bar hidden (headless) too
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.setToolTipsVisible(True)
        self._action(
            file,
            "&Open checkpoint…",
            self.open_dialog,
            QKeySequence.StandardKey.Open,
            "Load a trained checkpoint (.pt)",
        )
        self._action(
            file,
            "Open DeepSDF &experiment…",
            self.open_experiment_dialog,
            None,
            "Open an experiment directory of the original DeepSDF code (specs.json, ModelParameters/, ...)",
        )
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.setToolTipsVisible(True)
        self._fill_recent()
        file.addSeparator()
        self._action(
            file,
            "Export &mesh…",
            self.export_mesh_dialog,
            "Ctrl+E",
            "Save the mesh on screen as PLY, OBJ or GLB with vertex colours",
        )
        self._action(
            file, "Export &codes…", self.export_codes_dialog, "Ctrl+Shift+E", "Save the codes on screen as JSON"
        )
        self._action(file, "&Load codes…", self.load_codes_dialog, "Ctrl+L", "Show codes saved as JSON")
        self._action(file, "Save camera…", self.save_camera_dialog, None, "Save the camera view as JSON")
        self._action(file, "Load camera…", self.load_camera_dialog, None, "Restore a camera view saved as JSON")
        self._action(
            file,
            "&Screenshot…",
            self.screenshot_from_panel,
            QKeySequence.StandardKey.Save,
            "Save the 3D view as PNG (scale and transparency from the Display panel)",
        )
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit, "Close the viewer")
        self.models_menu = bar.addMenu("&Models")
        self.models_menu.setToolTipsVisible(True)
        self._fill_models_menu()
        edit = bar.addMenu("&Edit")
        edit.setToolTipsVisible(True)
        self.undo_action = self._action(
            edit,
            "&Undo",
            self.undo,
            QKeySequence.StandardKey.Undo,
            "Undo the last code edit (pick, slider, map drag, fit)",
        )
        self.redo_action = self._action(edit, "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "Redo the undone edit")
        self._history_changed()
        codes = bar.addMenu("&Codes")
        codes.setToolTipsVisible(True)
        self._action(
            codes, "&Random code", self.codes_panel.pick_random, "N", "Codes drawn from the class's distribution"
        )
        self._action(codes, "Class &mean", self.codes_panel.pick_mean, "M", "The mean codes of the class")
        self._action(codes, "&Play interpolation", self.interp_panel.play.toggle, "P", "Loop the A → B blend")
        view = bar.addMenu("&View")
        view.setToolTipsVisible(True)
        self._action(view, "&Reset camera", lambda: self.scene.set_camera("iso"), "R", "Iso view framing the shape")
        presets = view.addMenu("Camera preset")
        for i, name in enumerate(CAMERA_PRESETS):
            self._action(
                presets,
                name,
                lambda _=False, n=name: self.scene.set_camera(n),
                f"{i + 1}",
                f"Look from the {name} preset",
            )
        self._action(view, "Toggle &colour", self.display_panel.colour.toggle, "C", "Per-vertex colours on/off")
        self._action(view, "Toggle &wireframe", self.display_panel.wire.toggle, "W", "Wireframe on/off")
        self._action(view, "Toggle &slice", self.display_panel.slice.toggle, "S", "SDF slice plane on/off")
        self._action(view, "Toggle &dark background", self.display_panel.dark.toggle, "D", "Light / dark background")
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        fit = bar.addMenu("F&it")
        fit.setToolTipsVisible(True)
        self._action(fit, "&Load scan…", self.tto_panel._choose_scan, "Ctrl+Shift+O", "Load a scan to fit")
        self._action(fit, "&Start fit", self.tto_panel.start_fit, "F5", "Start test-time optimisation")
        self._action(
            fit, "S&top fit", self.tto_panel.stop_fit, "Esc", "Stop test-time optimisation, keep the codes so far"
        )
        self._action(
            fit,
            "Use DeepSDF's reconstruct settings",
            self.use_deepsdf_fit_settings,
            None,
            "800 steps, learning rate 5e-3, 8000 samples per step: the original reconstruct.py",
        )

    def _connect(self) -> None:
        self.state.selection_changed.connect(self._selection_changed)
        self.state.display_changed.connect(self._display_changed)
        self.state.history_changed.connect(self._history_changed)
        self.state.status.connect(self.show_status)
        self.state.model_changed.connect(self._model_changed)
        self.model_panel.open_requested.connect(self.open_dialog)
        self.model_loaded.connect(lambda _model: self._sync_models_menu())
        self.interp_panel.export_requested.connect(self.export_sequence)
        self.display_panel.camera_requested.connect(self.scene.set_camera)
        self.display_panel.screenshot_requested.connect(self.screenshot_dialog)
        self.tto_panel.scan_loaded.connect(self._scan_loaded)
        self.tto_panel.compare_mesh.connect(self.scene.show_comparison)
        self.tto_panel.busy.connect(lambda text: self._busy(bool(text), text))
        self.edit_panel.attach_view(self.plotter.interactor, self.scene.pick, self.scene.point_on_view_plane)
        self.edit_panel.markers_changed.connect(lambda m: self.scene.show_edit_markers(*(m or (None, None))))
        self._last_display = self.state.display
        self._scan_points = None

    # -- recent files --------------------------------------------------------------------------
    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.recent()
        for path in paths:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.load_checkpoint(Path(p)))
        self.recent_menu.setEnabled(bool(paths))

    def recent(self) -> list[str]:
        """Recently opened checkpoints, newest first (QSettings)."""
        value = self.settings.value(RECENT_KEY, [])
        items = value if isinstance(value, list) else [value]
        return [str(v) for v in items if v]

    def _remember(self, path: Path) -> None:
        path_s = str(Path(path).resolve())
        items = [path_s] + [p for p in self.recent() if p != path_s]
        self.settings.setValue(RECENT_KEY, items[:MAX_RECENT])
        self.settings.sync()
        self._fill_recent()

    # -- bundled models ------------------------------------------------------------------------
    def _fill_models_menu(self) -> None:
        """One checkable entry per model shipped in resources/ (:mod:`core.model.bundled_models`), listed once
        at start."""
        from core.model.bundled_models import bundled_models

        self.models_menu.clear()
        self.bundled_models = bundled_models()
        self.model_actions: dict[str, QAction] = {}
        for bundled in self.bundled_models:
            action = self.models_menu.addAction(bundled.title)
            action.setCheckable(True)
            action.setToolTip(f"<p>{escape(bundled.description)}</p><p>Licence: {escape(bundled.licence)}</p>")
            action.setStatusTip(f"Open the bundled model {bundled.title} ({bundled.checkpoint})")
            action.triggered.connect(lambda _=False, m=bundled: self.load_bundled_model(m))
            self.model_actions[bundled.key] = action
        if not self.bundled_models:
            none = self.models_menu.addAction("No bundled models (a resources/<key>/ folder with model.json)")
            none.setEnabled(False)

    def load_bundled_model(self, bundled) -> None:
        """Open a :class:`core.model.bundled_models.BundledModel` as File ▸ Open would (in the background)."""
        self._sync_models_menu()  # the tick stays on the model on screen until the new one has loaded
        self.load_checkpoint(bundled.checkpoint)

    def _sync_models_menu(self) -> None:
        """Tick the bundled model on screen (none for another checkpoint); name it in the title bar."""
        path = self.state.model.path if self.state.model is not None else None
        shown = Path(path).resolve() if path else None
        for bundled in self.bundled_models:
            on = shown is not None and bundled.checkpoint.resolve() == shown
            self.model_actions[bundled.key].setChecked(on)
            if on:
                self.setWindowTitle(f"{APP_NAME} — {bundled.title}")

    # -- model ---------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = str(Path(self.recent()[0]).parent) if self.recent() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", start, "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.load_checkpoint(Path(path))

    def open_experiment_dialog(self) -> None:
        start = str(Path(self.recent()[0]).parent) if self.recent() else ""
        path = QFileDialog.getExistingDirectory(self, "Open DeepSDF experiment (the folder with specs.json)", start)
        if path:
            self.load_checkpoint(Path(path))

    def use_deepsdf_fit_settings(self) -> None:
        """The fit panel set to the original reconstruct.py (TTOConfig's defaults are its values: its
        losses too, so the thin-structure switches go off)."""
        from core.tto import TTOConfig

        deepsdf = TTOConfig()
        self.tto_panel.iterations.setValue(deepsdf.iterations)
        self.tto_panel.lr.setValue(deepsdf.lr)
        self.tto_panel.samples.setValue(deepsdf.n_samples)
        for key, box in self.tto_panel.switches.items():
            box.setChecked(bool(getattr(deepsdf, key)))

    def load_checkpoint(self, path: str | Path) -> None:
        """Load in the background; a bad file shows a message box and keeps the current model."""
        path = Path(path)
        self._busy(True, f"loading {path.name}…")
        device = self.model_device
        run_task(
            lambda: load_trained_model(path, device=device),
            lambda model: self._model_ready(path, model),
            lambda message: self._model_error(path, message),
        )

    def _model_ready(self, path: Path, model) -> None:
        if self._closed:
            return
        self._busy(False)
        self._fit_camera_next = True
        self._first_request_of_model = self.mesher.last_id + 1
        shown = Path(path).resolve()
        card = next((b for b in self.bundled_models if b.checkpoint.resolve() == shown), None)
        self.state.set_model(model, first_shape=card.first_shape if card is not None else None)
        if model.config.preset == "deepsdf":  # an imported DeepSDF experiment: fit as its own code does
            self.use_deepsdf_fit_settings()
        if self.remember_recent:
            self._remember(path)
        self.setWindowTitle(f"{APP_NAME} — {path.name}")
        self.scene.set_hint(None)
        self.model_loaded.emit(model)

    def _model_error(self, path: Path, message: str) -> None:
        if self._closed:
            return
        self._busy(False)
        if path.name not in message:  # an unexpected error: still say which file
            message = f"{path}: cannot be opened ({message}). Use a checkpoint written by `main.py train`."
        self.model_failed.emit(message)
        current = self.state.model
        kept = f"\n\nStill showing {current.path.name}." if current is not None and current.path else ""
        self.show_error("Cannot open checkpoint", message + kept)

    def _error_dialog(self, title: str, message: str) -> None:
        """The default :attr:`show_error`: the message's first line on the status bar and a modal message box."""
        self.show_status(message.splitlines()[0] if message else title)
        QMessageBox.critical(self, title, message)

    def _model_changed(self) -> None:
        m = self.state.require_model()
        self.show_status(f"loaded {len(m.shape_ids)} codes in {len(m.class_names)} classes: {', '.join(m.class_names)}")

    # -- meshing -------------------------------------------------------------------------------
    def _selection_changed(self, interactive: bool) -> None:
        sel, model = self.state.selection, self.state.model
        if sel is None or model is None:
            return
        d = self.state.display
        resolution = d.preview_resolution if interactive else d.full_resolution
        self.mesher.submit(displayed_mesh_job(mesh_job(model, sel, resolution)))
        if interactive:
            self.idle_timer.start()  # (re)start the debounce: refine once the interaction pauses
        else:
            self.idle_timer.stop()
        if d.slice_enabled:
            self.slicer.submit(slice_job(model, sel, d.slice_axis, d.slice_position))

    def _mesh_ready(self, request_id: int, result, seconds: float) -> None:
        if self._closed or request_id < max(self._shown_request, self._first_request_of_model):
            return  # an older result arriving late, or one of the previous model
        mesh, poly = result  # displayed_mesh_job: the mesh and its VTK surface, built on the mesher's thread
        self._shown_request = request_id
        self.current_mesh = mesh
        res = mesh.stats.get("resolution", "?")
        refined = res == self.state.display.full_resolution
        self.scene.set_refined(refined)
        self.scene.show_mesh(mesh, poly)
        if self._fit_camera_next and not mesh.is_empty:
            self._fit_camera_next = False
            self.scene.set_camera(self.scene.preset)
        if mesh.is_empty:
            self.show_status(f"no surface for this code ({mesh.stats.get('reason', 'empty')})")
        self.timing.setText(f"{res}³ mesh in {seconds * 1000:.0f} ms · {len(mesh.vertices):,} vertices")
        fit = self.tto_panel.unmeasured_selection
        if fit is not None and request_id == self.mesher.last_id and refined:
            # A finished fit is measured once its refined mesh is drawn (this one, if it is the
            # fit's): queued behind the repaint show_mesh has just posted, so the two do not share
            # the CPU.
            shown = mesh if self.state.selection is fit else None
            QTimer.singleShot(0, self, lambda: self._measure_fit(shown, fit))
        self.mesh_shown.emit(mesh)

    def _measure_fit(self, shown, fit) -> None:
        if not self._closed:
            self.tto_panel.measure_fit(shown, fit)

    def _mesh_failed(self, request_id: int, message: str) -> None:
        self.show_status(f"meshing failed: {message}")
        fit = self.tto_panel.unmeasured_selection
        if fit is not None and request_id == self.mesher.last_id:
            self._measure_fit(None, fit)  # the fit still gets its metrics (from its own extraction)

    def _slice_ready(self, _request_id: int, data: dict, _seconds: float) -> None:
        if not self._closed:
            self.scene.show_slice(data if self.state.display.slice_enabled else None)

    def is_idle(self) -> bool:
        """The full-resolution mesh of the current codes is on screen and nothing is queued."""
        return (
            self.current_mesh is not None
            and self.mesher.idle
            and not self.idle_timer.isActive()
            and self._shown_request >= self.mesher.last_id
            and self.current_mesh.stats.get("resolution") == self.state.display.full_resolution
        )

    def wait_idle(self, timeout_s: float = 120.0) -> bool:
        """Process events until :meth:`is_idle` (headless mode); False on time-out."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            QApplication.processEvents()
            if self.is_idle():
                return True
            time.sleep(0.005)
        return False

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
        if d.full_resolution != old.full_resolution and self.state.selection is not None:
            self.state.finish_interaction()

    def _scan_loaded(self, points) -> None:
        self._scan_points = points
        self.scene.show_scan(points, self.state.display.show_scan)

    def undo(self) -> None:
        """Undo the last code edit; during a running shape edit, cancel that edit instead (its one
        undo step is not closed yet, and stepping the history under it would tangle the two)."""
        if self.edit_panel.editing:
            self.edit_panel.cancel()
        else:
            self.state.undo()

    def redo(self) -> None:
        if self.edit_panel.editing:
            self.edit_panel.cancel()
        else:
            self.state.redo()

    def _history_changed(self) -> None:
        self.undo_action.setEnabled(self.state.can_undo())
        self.redo_action.setEnabled(self.state.can_redo())

    # -- files ---------------------------------------------------------------------------------
    def export_mesh_dialog(self) -> None:
        if self.current_mesh is None or self.current_mesh.is_empty:
            self.show_status("nothing to export yet")
            return
        filters = ";;".join(f"{fmt.upper()} (*.{fmt})" for fmt in EXPORT_FORMATS)
        path, _ = QFileDialog.getSaveFileName(self, "Export mesh", "shape.ply", filters)
        if path:
            self.export_mesh_to(Path(path))

    def export_mesh_to(self, path: Path) -> Path | None:
        """Write the mesh on screen (``core.meshing.export_mesh``: atomic, with vertex colours)."""
        if self.current_mesh is None:  # before the first mesh arrives
            self.show_status("nothing to export yet")
            return None
        try:
            out = export_mesh(self.current_mesh, path)
        except (OSError, ValueError) as exc:
            self.show_error("Export failed", f"{path}: {exc}")
            return None
        self.show_status(f"mesh written to {out}")
        return out

    def export_codes_dialog(self) -> None:
        if self.state.selection is None:
            self.show_status("no codes to export yet")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export codes", "codes.json", "JSON (*.json)")
        if path:
            self.export_codes_to(Path(path))

    def export_codes_to(self, path: Path) -> Path | None:
        """Write the codes on screen (and a fine-tuned decoder beside them) in the one codes format."""
        from core.model.codes_file import CodesFileError, SavedCodes, write_codes

        sel, model = self.state.selection, self.state.model
        if sel is None or model is None:  # before a model is open
            self.show_status("no codes to export yet")
            return None
        codes = SavedCodes(
            sel.shape_code,
            sel.colour_code,
            sel.class_name,
            condition=sel.condition,
            label=sel.label,
            checkpoint=str(model.path) if model.path else None,
            decoder_state=sel.decoder_override,
        )
        try:
            write_codes(Path(path), codes)
        except (CodesFileError, OSError) as exc:
            self.show_error("Export failed", str(exc))
            return None
        self.show_status(f"codes written to {path}")
        return Path(path)

    def load_codes_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load codes", "", "JSON (*.json)")
        if path:
            self.load_codes_from(Path(path))

    def load_codes_from(self, path: Path) -> bool:
        """Show codes from a JSON file written by :meth:`export_codes_to`; False (and a message) if unusable."""
        if self.state.model is None:
            self.show_error("No model", "Open a checkpoint before loading codes.")
            return False
        from core.model.codes_file import read_codes
        from core.utils.errors import ExplorerError

        model = self.state.model
        try:
            codes = read_codes(Path(path), model)
            condition = codes.condition_for(model)
        except ExplorerError as exc:
            self.show_error("Cannot load codes", str(exc))
            return False
        colour = codes.colour_code if model.colour_codes is not None else None
        self.state.select(
            CodeSelection(
                codes.shape_code,
                colour,
                condition,
                codes.label or Path(path).name,
                codes.class_name,
                codes.decoder_state,
            )
        )
        return True

    def save_camera_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save camera", "camera.json", "JSON (*.json)")
        if path:
            from core.utils.io_utils import atomic_write_json

            atomic_write_json(Path(path), self.scene.camera_json())

    def load_camera_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load camera", "", "JSON (*.json)")
        if path:
            try:
                self.scene.load_camera_json(json.loads(Path(path).read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                self.show_error("Cannot load camera", f"{path}: {exc}")

    def screenshot_from_panel(self) -> None:
        self.screenshot_dialog(self.display_panel.scale.value(), self.display_panel.transparent.isChecked())

    def screenshot_dialog(self, scale: int = 1, transparent: bool = False) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Screenshot", "screenshot.png", "Images (*.png *.jpg *.jpeg)")
        if path:
            from core.utils.errors import ExplorerError

            try:
                out = self.scene.screenshot(path, scale, transparent)
            except (ExplorerError, OSError) as exc:
                self.show_error("Screenshot failed", str(exc))
                return
            self.show_status(f"screenshot written to {out}")

    def export_sequence(self, frames: int) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export interpolation", "interpolation.gif", "GIF (*.gif);;PNG strip (*.png)"
        )
        if path:
            self.export_sequence_to(Path(path), frames)

    def export_sequence_to(self, path: Path, frames: int, on_done=None) -> None:
        """Meshes of the A → B blend computed on a worker, rendered here (UI thread), written as GIF / PNG strip."""
        model = self.state.model
        selections = [self.interp_panel.selection_at(t) for t in np.linspace(0, 1, frames)]
        if model is None or any(s is None for s in selections):
            self.show_status("pick A and B first")
            return
        resolution = self.state.display.full_resolution

        def compute():
            return [mesh_job(model, s, resolution)() for s in selections]

        def render(meshes) -> None:
            images = []
            for mesh in meshes:
                self.scene.show_mesh(mesh)
                images.append(self.scene.image())
            if self.current_mesh is not None:
                self.scene.show_mesh(self.current_mesh)  # back to what the state says is on screen
            self._busy(False)
            try:
                write_sequence(path, images)
            except (OSError, ValueError) as exc:
                self.show_error("Export failed", f"{path}: {exc}")
                return
            self.show_status(f"{len(images)} frames written to {path}")
            if on_done:
                on_done(path)

        def failed(message: str) -> None:
            self._busy(False)
            self.show_error("Export failed", message)

        self._busy(True, f"meshing {frames} frames…")
        run_task(compute, render, failed)

    # -- drag and drop -------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt name
        """A dropped .pt or folder (DeepSDF experiment, training run) opens as the model; a .json loads codes;
        anything else is loaded as a scan to fit."""
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in (".pt", ".pth") or path.is_dir():
                self.load_checkpoint(path)
            elif path.suffix.lower() == ".json":
                self.load_codes_from(path)
            else:
                self.tto_panel.load_scan(path)
                self.docks["Test-time optimisation"].raise_()
            event.acceptProposedAction()
            break

    # -- shutdown ------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)

    def window_image(self) -> QPixmap:
        """The whole window as on screen, 3D view included.

        ``QWidget.grab`` paints Qt's widgets only: the 3D view is a native window VTK draws
        into with OpenGL, so it would come out black. The view's own pixels are drawn over it.
        """
        pixmap = self.grab()
        view = self.plotter.interactor
        rgb = np.ascontiguousarray(self.scene.image()[..., :3])
        h, w = rgb.shape[:2]
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        image.setDevicePixelRatio(w / max(1, view.width()))  # VTK renders in device pixels
        painter = QPainter(pixmap)
        painter.drawImage(view.mapTo(self, view.rect().topLeft()), image)
        painter.end()
        return pixmap

    def shutdown(self) -> None:
        """Stop fits and workers, then release VTK (idempotent; tests call it in teardown)."""
        if self._closed:
            return
        self._closed = True
        self.idle_timer.stop()
        self.interp_panel.timer.stop()
        self.tto_panel.shutdown()
        self.edit_panel.shutdown()
        # Let one-off tasks finish while every object they report to still lives; a callback may
        # start another task (a fit's metrics), hence the loop.
        for _ in range(10):
            idle = wait_for_tasks(60.0)
            QApplication.processEvents()
            if idle and wait_for_tasks(0.0):
                break
        self.mesher.stop()
        self.slicer.stop()
        self.plotter.close()
        self.gui_gc.stop()


def _scrollable(panel: QWidget) -> QScrollArea:
    """The panel in a scroll area, so a dock can be smaller than the panel (small screens)."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    return scroll


def write_sequence(path: Path, images: list[np.ndarray]) -> None:
    """Frames as an animated GIF (looping) or, for ``.png``, one horizontal strip."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        from PIL import Image

        Image.fromarray(np.concatenate(images, axis=1)).save(path)
    elif path.suffix.lower() == ".gif":
        import imageio.v2 as imageio

        frames: list[ArrayLike] = list(images)  # mimsave's stub asks for a list of ArrayLike (invariant)
        imageio.mimsave(path, frames, duration=0.12, loop=0)
    else:
        raise ValueError(f"unknown sequence format {path.suffix!r}; use .gif or .png")
