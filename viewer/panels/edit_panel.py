"""Edit panel: drag the surface, pin points, paint colour, graft a part of another shape.

Modes: **off** (the default: the mouse only turns the camera), **drag** (press on the surface,
drag, release; Shift moves along the surface normal instead of in the view plane), **pin** (click:
the point must stay on the surface during drags), **paint** (click: brush of the chosen radius and
colour), **graft** (click: the centre of a sphere or box region; that part of the chosen donor
shape is grafted onto the current one).

The optimisation (:mod:`core.edit`) runs on the panel's own latest-wins worker: while the mouse
moves each newer drag replaces the pending one, and each finished preview is shown as an
interactive selection (preview resolution); the release runs the full drag and its codes close
the edit. Paint and graft stream their progress the same way. A paint fine-tunes a copy of the
colour head after the colour code (:mod:`core.edit.paint`): its selection carries that decoder as
``decoder_override``, every later edit of the shape starts from it, and undo brings back the one
before (the undo stack holds whole selections). An edit is one undo step;
Cancel edit stops it and shows the codes from before it. The loss and the
plausibility of the edited code (Mahalanobis distance under the class Gaussian, with the
training range) are shown when an edit ends.

The panel knows no VTK: :meth:`attach_view` receives the 3D widget (for mouse events) and the
scene's ``pick`` and ``point_on_view_plane`` functions.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable, cast

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.edit import (
    Brush,
    DragConfig,
    EditResult,
    Handle,
    Pin,
    Region,
    ShapeCodes,
    codes_of,
    drag,
    graft,
    paint,
    take_snapshot,
)
from viewer.state import CodeSelection, ViewerState
from viewer.workers import LatestWinsWorker

__all__ = ["EditPanel", "MODES", "PREVIEW_DRAG"]

MODES = ("off", "drag", "pin", "paint", "graft")
"""``off`` (the default): the mouse only turns the camera, as without the panel."""
PREVIEW_DRAG = DragConfig(iterations=25, min_iterations=0)
"""While the mouse moves: enough steps to reach the target (~20), not to settle the rest."""


class EditPanel(QWidget):
    """Mode, parameters, Cancel, the last edit's loss and plausibility."""

    progress = Signal(object)
    """core.edit.EditProgress from the worker thread (queued to the UI thread)."""
    edit_finished = Signal(object)
    """core.edit.EditResult of a finished (or cancelled) edit."""
    markers_changed = Signal(object)
    """(K, 3) points to mark (handles, targets, pins) or None."""

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.worker = LatestWinsWorker("editor", self)
        self.worker.finished_job.connect(self._job_done)
        self.worker.failed_job.connect(self._job_failed)
        self.progress.connect(self._show_progress)
        self._cancel = threading.Event()
        self._snapshots: dict[int, object] = {}
        self._snapshot_lock = threading.Lock()
        self._final_id = 0
        self._generation = 0
        """Each edit's number: results, progress and failures of another edit are ignored."""
        self._first_request = 0
        self._final_pending = False
        self._step_opened = False
        self._edit_open = False
        self._source: np.ndarray | None = None
        self._normal: np.ndarray | None = None
        self._pressed = False
        self.pins: list[np.ndarray] = []
        self.last_result: EditResult | None = None
        self._pick: Callable | None = None
        self._on_plane: Callable | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip(
            "What a click or drag on the shape does (off: the mouse turns the camera; in the "
            "other modes it still does away from the shape)"
        )
        self.radius = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=1.5, singleStep=0.05, value=DragConfig.radius)
        self.radius.setToolTip("Drag: radius of influence; the surface farther than this keeps its place")
        self.brush = QDoubleSpinBox(decimals=2, minimum=0.02, maximum=1.0, singleStep=0.05, value=0.25)
        self.brush.setToolTip("Paint brush radius / graft region radius (unit-sphere frame)")
        self.colour_button = QPushButton()
        self.colour_button.setToolTip("Paint colour")
        self.colour_button.clicked.connect(self._choose_colour)
        self.set_brush_colour((0.88, 0.06, 0.06))
        self.region_kind = QComboBox()
        self.region_kind.addItems(["sphere", "box"])
        self.region_kind.setToolTip("Graft region: a sphere of the brush radius or a cube of that half size")
        self.donor = QComboBox()
        self.donor.setToolTip("Graft: the shape whose part inside the region is grafted on")
        form.addRow("Mode", self.mode)
        form.addRow("Radius of influence", self.radius)
        form.addRow("Brush / region size", self.brush)
        form.addRow("Paint colour", self.colour_button)
        form.addRow("Region", self.region_kind)
        form.addRow("Graft from", self.donor)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.clear_pins_button = QPushButton("Clear pins")
        self.clear_pins_button.setToolTip("Forget the pinned points")
        self.clear_pins_button.clicked.connect(self.clear_pins)
        self.cancel_button = QPushButton("Cancel edit")
        self.cancel_button.setToolTip("Stop the running edit and go back to the codes before it")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.clear_pins_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.loss_label = QLabel("")
        self.loss_label.setWordWrap(True)
        self.loss_label.setToolTip("Loss terms of the running or last edit")
        self.plausibility_label = QLabel("")
        self.plausibility_label.setWordWrap(True)
        self.plausibility_label.setToolTip(
            "Mahalanobis distance of the edited code under its class's code Gaussian, "
            "with the range of the class's training codes"
        )
        layout.addWidget(self.loss_label)
        layout.addWidget(self.plausibility_label)
        layout.addStretch(1)
        self.state.model_changed.connect(self._model_changed)
        self.worker.start()
        self.setEnabled(False)

    # -- set-up --------------------------------------------------------------------------------
    def attach_view(self, widget: QWidget, pick: Callable, on_plane: Callable) -> None:
        """Receive mouse events of the 3D ``widget``; ``pick(x, y)`` -> (point, normal) | None."""
        self._pick, self._on_plane = pick, on_plane
        widget.installEventFilter(self)

    def _model_changed(self) -> None:
        self._abandon()  # an edit of the previous model must not land on this one
        model = self.state.model
        self.setEnabled(model is not None)
        self.donor.clear()
        self._snapshots.clear()
        self.pins.clear()
        if model is not None:
            self.donor.addItems([f"{c}/{s}" for c, s in zip(model.shape_classes, model.shape_ids, strict=True)])

    def set_brush_colour(self, rgb: tuple[float, float, float]) -> None:
        self.brush_colour = (float(rgb[0]), float(rgb[1]), float(rgb[2]))
        self.colour_button.setStyleSheet("background-color: " + QColor.fromRgbF(*self.brush_colour).name())

    def _choose_colour(self) -> None:
        colour = QColorDialog.getColor(QColor.fromRgbF(*self.brush_colour), self, "Paint colour")
        if colour.isValid():
            self.set_brush_colour((colour.redF(), colour.greenF(), colour.blueF()))

    def shutdown(self) -> None:
        self._cancel.set()
        self.worker.stop()

    # -- snapshots: taken on the worker, once per selection --------------------------------------
    def _codes(self, selection: CodeSelection) -> ShapeCodes:
        return ShapeCodes(
            selection.shape_code, selection.colour_code, selection.condition, selection.class_name, selection.label
        )

    def _snapshot(self, model, selection: CodeSelection):
        """(model with the selection's decoder override, snapshot of the selection under it)."""
        with self._snapshot_lock:
            entry = self._snapshots.get(id(selection))
            if entry is None:
                self._snapshots.clear()  # one shape at a time; keeps memory flat
                shown = model.with_decoder(selection.decoder_override)  # an earlier paint's colour head
                entry = (shown, take_snapshot(shown, self._codes(selection)))
                self._snapshots[id(selection)] = entry
            return entry

    def _reporter(self) -> Callable:
        """A progress callback for the worker thread, stamped with this edit's number."""
        generation = self._generation
        return lambda progress: self.progress.emit((generation, progress))

    def _start_edit(self) -> None:
        """Open a new edit: a running one is cancelled first (its codes from before come back)."""
        if self._edit_open:
            self.cancel()
        self._generation += 1
        self._cancel = threading.Event()
        # Callers check for a selection, and cancelling an edit above shows its codes from before again.
        self._before = self.state.require_selection()
        self._final_pending = False
        self._step_opened = False
        self._edit_open = True
        self.cancel_button.setEnabled(True)

    def _abandon(self) -> None:
        """Stop the running edit without showing anything (the model it belongs to is gone)."""
        self._cancel.set()
        self._generation += 1
        self._edit_open = self._final_pending = self._step_opened = False
        self._source = None
        self.cancel_button.setEnabled(False)

    # -- edits (public: the mouse handlers and the tests call these) ---------------------------
    @property
    def editing(self) -> bool:
        """An edit is open: started and neither finished nor cancelled."""
        return self._edit_open

    @property
    def busy(self) -> bool:
        return self._edit_open or not self.worker.idle

    def begin_drag(self, source) -> None:
        """Mouse press on the surface at ``source`` (3,)."""
        if self.state.model is None or self.state.selection is None:
            return
        self._start_edit()
        self._source = np.asarray(source, np.float64)
        model, before, generation = self.state.require_model(), self._before, self._generation
        self._first_request = self.worker.submit(  # the snapshot is ready before the first move
            lambda: ("snapshot", generation, self._snapshot(model, before))
        )
        self._mark(self._source)

    def move_drag(self, target) -> None:
        """Mouse move: re-optimise from the shape at press time towards ``target`` (preview)."""
        if self._source is None:
            return
        self._submit_drag(self._source, np.asarray(target, np.float64), PREVIEW_DRAG, final=False)

    def end_drag(self, target) -> None:
        """Mouse release at ``target``: the full drag; its codes close the edit (one undo step)."""
        if self._source is None:
            return
        self._final_pending = True
        self._final_id = self._submit_drag(self._source, np.asarray(target, np.float64), DragConfig(), final=True)
        self._source = None

    def _submit_drag(self, source: np.ndarray, target: np.ndarray, config: DragConfig, final: bool) -> int:
        # A drag's edit was opened on a model (begin_drag); a new model abandons it (no source any more).
        model, before, cancel, generation = self.state.require_model(), self._before, self._cancel, self._generation
        report = self._reporter() if final else None
        handles = [Handle(tuple(source), tuple(target))]
        pins = [Pin(tuple(p)) for p in self.pins]
        config = replace(config, radius=self.radius.value())
        self._mark(source, target)

        def job():
            shown, snap = self._snapshot(model, before)
            return (
                "drag",
                generation,
                final,
                drag(shown, snap, handles, pins, config, cancel=cancel, callback=report, every=10),
            )

        return self.worker.submit(job)

    def paint_at(self, centre) -> int:
        """Paint a stroke of the current brush at ``centre`` (3,)."""
        brush = Brush(tuple(np.asarray(centre, float)), self.brush.value(), self.brush_colour)
        return self._submit_final(
            "paint",
            lambda model, snap, cancel, report: paint(model, snap, [brush], cancel=cancel, callback=report, every=10),
        )

    def graft_at(self, centre) -> int:
        """Graft the donor's part inside a region centred at ``centre`` (3,) onto the current shape."""
        model = self.state.model
        size = self.brush.value()
        region = Region(self.region_kind.currentText(), tuple(np.asarray(centre, float)), (size,))
        donor = codes_of(model, self.donor.currentText())

        def run(shown, snap, cancel, report):
            return graft(shown, snap, take_snapshot(model, donor), region, cancel=cancel, callback=report, every=10)

        return self._submit_final("graft", run)

    def _submit_final(self, kind: str, fn) -> int:
        if self.state.model is None or self.state.selection is None:
            return 0
        self._start_edit()
        model, before, generation = self.state.require_model(), self._before, self._generation
        cancel, report = self._cancel, self._reporter()  # this edit's own, not whatever is current later
        self._final_id = self._first_request = self.worker.submit(
            lambda: (kind, generation, True, fn(*self._snapshot(model, before), cancel, report))
        )
        return self._final_id

    def add_pin(self, point) -> None:
        self.pins.append(np.asarray(point, np.float64))
        self._mark()

    def clear_pins(self) -> None:
        self.pins.clear()
        self._mark()

    def cancel(self) -> None:
        """Stop the running edit and show the codes from before it."""
        if not self._edit_open:
            return
        self._cancel.set()
        self._edit_open = False
        self._final_pending = False
        self._source = None
        self.cancel_button.setEnabled(False)
        self._restore_before()
        self.loss_label.setText("edit cancelled")
        self._mark()

    # -- results -------------------------------------------------------------------------------
    def _selection_from(self, result: EditResult) -> CodeSelection:
        """A paint's fine-tuned decoder replaces the shape's override; drag and graft keep it."""
        before = self._before
        override = before.decoder_override if result.decoder_override is None else result.decoder_override
        return CodeSelection(
            result.shape_code,
            result.colour_code,
            before.condition,
            f"{before.label.split(' (')[0]} ({result.kind})",
            before.class_name,
            override,
        )

    def _job_done(self, request_id: int, payload, _seconds: float) -> None:
        if payload[0] == "snapshot" or not self._edit_open or payload[1] != self._generation:
            return
        _, _, final, result = payload
        if result.cancelled:
            return
        if not final:
            if not self._final_pending:  # previews stream until the release's drag is on its way
                self._show(self._selection_from(result), interactive=True)
            return
        if request_id != self._final_id:
            return
        self._edit_open = False
        self._final_pending = False
        self.cancel_button.setEnabled(False)
        self.last_result = result
        self._show(self._selection_from(result), interactive=False)
        losses = ", ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items() if k != "total")
        self.loss_label.setText(f"{result.kind}: {result.iterations} steps, {result.seconds:.2f} s; {losses}")
        if result.plausibility is not None:
            self.plausibility_label.setText(result.plausibility.text())
        self._mark()
        self.edit_finished.emit(result)

    def _job_failed(self, request_id: int, message: str) -> None:
        if request_id < self._first_request:
            return  # a job of an earlier edit, already closed
        self._source = None  # no further drags from a press whose drag fails
        if self._edit_open:
            self._edit_open = False
            self._final_pending = False
            self.cancel_button.setEnabled(False)
            self._restore_before()
        self.loss_label.setText(f"edit failed: {message}")
        self.state.status.emit(f"edit failed: {message}")

    def _show_progress(self, stamped) -> None:
        generation, progress = stamped
        if not self._edit_open or generation != self._generation:
            return
        terms = ", ".join(
            f"{k} {v:.4f}" for k, v in progress.losses.items() if k not in ("iteration", "seconds", "total")
        )
        self.loss_label.setText(f"{progress.kind} step {progress.iteration}: {terms}")
        before = self._before
        if progress.kind in ("paint", "paint-detail"):  # the detail stage also brings its colour head so far
            override = before.decoder_override if progress.decoder_override is None else progress.decoder_override
            sel = CodeSelection(
                before.shape_code, progress.code, before.condition, before.label, before.class_name, override
            )
        elif progress.kind == "graft-colour":
            return  # the graft's colour stage: its shape is on screen; the result brings the colours
        else:
            sel = CodeSelection(
                progress.code,
                before.colour_code,
                before.condition,
                before.label,
                before.class_name,
                before.decoder_override,
            )
        self._show(sel, interactive=True)

    def _show(self, selection: CodeSelection, interactive: bool) -> None:
        """Show an edit's codes; the edit's first selection opens its one undo step, the rest join it
        (also when the window's refine timer has closed the interaction between two previews)."""
        record = not self._step_opened
        self._step_opened = True
        self.state.select(selection, interactive=interactive, record=record)

    def _restore_before(self) -> None:
        if self._step_opened:
            self.state.cancel_interaction(self._before)
        self._step_opened = False

    def _mark(self, *extra) -> None:
        points = [p for p in [*extra, *self.pins] if p is not None]
        colours = [(0.1, 0.4, 1.0)] * len([p for p in extra if p is not None]) + [(1.0, 0.8, 0.0)] * len(self.pins)
        self.markers_changed.emit((np.array(points), np.array(colours)) if points else None)

    # -- mouse ---------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt name
        """Mouse on the 3D view: a press on the shape starts an edit (the camera does not move)."""
        if not self.isEnabled() or self._pick is None or self.mode.currentText() == "off":
            return False
        kind = event.type()
        mouse = cast(QMouseEvent, event)  # read only for the mouse event types below
        if kind == QEvent.Type.MouseButtonPress and mouse.button() == Qt.MouseButton.LeftButton:
            hit = self._pick(mouse.position().x(), mouse.position().y())
            if hit is None:
                return False
            point, normal = hit
            mode = self.mode.currentText()
            if mode == "drag":
                self._normal = normal
                self._pressed = True
                self.begin_drag(point)
            elif mode == "pin":
                self.add_pin(point)
            elif mode == "paint":
                self.paint_at(point)
            else:
                self.graft_at(point)
            return True
        if self._pressed and kind in (QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease):
            target = self._target(event)
            if kind == QEvent.Type.MouseMove:
                self.move_drag(target)
            else:
                self._pressed = False
                self.end_drag(target)
            return True
        return False

    def _target(self, event) -> np.ndarray:
        source = self._source if self._source is not None else np.zeros(3)
        assert self._on_plane is not None  # set with _pick (attach_view), which eventFilter checked
        target = self._on_plane(event.position().x(), event.position().y(), source)
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and self._normal is not None:
            n = self._normal / max(np.linalg.norm(self._normal), 1e-12)
            target = source + n * float((target - source) @ n)  # along the normal
        return np.clip(target, -1.2, 1.2)
