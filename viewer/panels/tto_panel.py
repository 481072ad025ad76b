"""Live test-time optimisation: load a scan, fit codes with the chosen losses, watch it converge.

The fit runs in :class:`viewer.workers.TTOWorker` (``core.tto.iterate_fit``); every N steps its
codes go through the state like any other edit, so the mesher shows the shape as it forms.
The whole fit is one undo step. Metrics (``core.tto.measure.measure_fit``) are measured on a worker at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.data.mesh_io import MESH_SUFFIXES
from core.tto import TTOConfig
from core.tto.config import (
    INTERACTIVE_ITERATIONS,
    INTERACTIVE_LOSSES,
    INTERACTIVE_LR,
    INTERACTIVE_SAMPLES,
    parse_losses,
)
from core.tto.scan import SCAN_DIRECTIONS
from viewer.panels.loss_plot import LossPlot
from viewer.state import CodeSelection, ViewerState
from viewer.workers import TTOWorker, mesh_job, run_task

if TYPE_CHECKING:
    from core.meshing.extract import MeshArrays
    from core.model.trained_model import TrainedModel
    from core.tto.observations import Observation

SCAN_FILTER = (
    "Scans (*.obj *.glb *.gltf *.ply *.stl *.off *.npz *.xyz *.txt *.pts *.npy);;"
    "Meshes (*.obj *.glb *.gltf *.ply *.stl *.off);;Samples (*.npz);;All files (*)"
)
DIRECTIONS = {
    "front (+z)": SCAN_DIRECTIONS["front"],
    "side (+x)": SCAN_DIRECTIONS["side"],
    "top (+y)": SCAN_DIRECTIONS["top"],
    "oblique": SCAN_DIRECTIONS["oblique"],
}
SWITCHES = (
    (
        "surface_term",
        "surface + normal terms",
        "|f| → 0 on the observed surface points and the SDF gradient aligned with their normals. Off by default:"
        " a prior that cannot hold the shape meets them by swelling it (real model, decoder frozen: F@1 73.6 →"
        " 61.4; fine-tuned: 91.7 → 85.4)",
    ),
    ("curriculum", "curriculum", "Curriculum DeepSDF: a shrinking error tolerance and hard-sample weighting"),
    ("coarse_to_fine", "coarse-to-fine", "The clamp distance shrinks and samples move towards the surface"),
    (
        "hard_draws",
        "hard draws",
        "Half of each step's samples are drawn where the fit is still wrong (each sample's last error), the rest "
        "uniformly: thin parts a few hundred samples describe are seen far more often",
    ),
    (
        "finetune_last_layers",
        "fine-tune last layers",
        "After the code fit, the decoder's last four layers (a private copy) are fitted too: 300 steps at 5e-4. "
        "Keeps the most thin parts (real furniture held out, these settings: F@1 73.6 → 93.8 %, thin F@1 24 → 96 %). "
        "On a partial scan the prior anchor keeps the prior's field where the camera saw nothing",
    ),
)
METRIC_KEYS = (
    ("chamfer", "Chamfer", 1e3, "×10⁻³"),
    ("fscore_1pct", "F@1%", 100, "%"),
    ("thin_fscore_1pct", "thin F@1%", 100, "%"),
    ("colour_psnr", "colour PSNR", 1, " dB"),
    ("colour_delta_e", "colour ΔE00", 1, ""),
)
METRIC_RESOLUTION = 128
"""Grid resolution of the mesh the metrics are measured on (the evaluation's own)."""


class TTOPanel(QWidget):
    scan_loaded = Signal(object)
    """(N, 3) observed surface points to draw."""
    compare_mesh = Signal(object)
    """MeshArrays of the baseline fit beside the result, or None to hide it."""
    busy = Signal(str)
    """Status text while working, "" when idle."""
    fit_finished = Signal(object)
    """core.tto.TTOResult of the main fit (cancelled ones included)."""
    metrics_ready = Signal(dict)

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.observation = None
        self.scan_points: np.ndarray | None = None
        self.scan_path: Path | None = None
        self.worker: TTOWorker | None = None
        self.baseline_worker: TTOWorker | None = None
        self.last_result = None
        self.last_metrics: dict = {}
        self.baseline_metrics: dict = {}
        self._first_report = True
        self._fit_model = None
        self._unmeasured: tuple | None = None
        """(selection, observation) of a finished fit whose metrics wait for its mesh."""
        self.metric_resolution = METRIC_RESOLUTION
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.load = QPushButton("Load scan…")
        self.load.setToolTip("A mesh, a point cloud (.ply/.xyz/.npy/.npz) or DeepSDF .npz samples to fit")
        self.direction = QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.direction.setToolTip("Camera direction of the single-view scan")
        self.partial = QPushButton("Partial scan")
        self.partial.setToolTip(
            "Replace the loaded mesh by a single-view depth scan of it from the chosen direction (shape completion)"
        )
        self.partial.setEnabled(False)
        row.addWidget(self.load)
        row.addWidget(self.direction, 1)
        row.addWidget(self.partial)
        layout.addLayout(row)
        self.scan_label = QLabel("no scan loaded")
        self.scan_label.setWordWrap(True)
        self.scan_label.setToolTip("What is being fitted")
        layout.addWidget(self.scan_label)
        form = QFormLayout()
        self.class_box = QComboBox()
        self.class_box.setToolTip(
            "Class to condition on, or infer it (a short fit under every class, lowest loss wins)"
        )
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 5000)
        self.iterations.setValue(INTERACTIVE_ITERATIONS)
        self.iterations.setToolTip("Optimisation steps (DeepSDF: 800)")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(4)
        self.lr.setRange(1e-4, 0.1)
        self.lr.setSingleStep(1e-3)
        self.lr.setValue(INTERACTIVE_LR)
        self.lr.setToolTip(
            "Code learning rate, divided by 10 after half the steps (DeepSDF: 5e-3 for its 800 steps; "
            "1e-2 gets further in 300)"
        )
        self.samples = QSpinBox()
        self.samples.setRange(100, 50000)
        self.samples.setSingleStep(500)
        self.samples.setValue(INTERACTIVE_SAMPLES)
        self.samples.setToolTip("SDF samples per step (DeepSDF: 8000)")
        self.every = QSpinBox()
        self.every.setRange(1, 500)
        self.every.setValue(20)
        self.every.setToolTip("Show the shape (and a loss point) every this many steps")
        form.addRow("class", self.class_box)
        form.addRow("iterations", self.iterations)
        form.addRow("learning rate", self.lr)
        form.addRow("samples/step", self.samples)
        form.addRow("refresh every", self.every)
        layout.addLayout(form)
        self.switches: dict[str, QCheckBox] = {}
        for key, text, tip in SWITCHES:
            box = QCheckBox(text)
            box.setToolTip(tip)
            self.switches[key] = box
            box.setChecked(key in parse_losses(INTERACTIVE_LOSSES))
            layout.addWidget(box)
        self.compare = QCheckBox("compare with baseline")
        self.compare.setToolTip("Also run plain DeepSDF TTO on the same scan and show it beside the result")
        layout.addWidget(self.compare)
        buttons = QHBoxLayout()
        self.start = QPushButton("Start")
        self.start.setToolTip("Start fitting (F5)")
        self.pause = QPushButton("Pause")
        self.pause.setCheckable(True)
        self.pause.setToolTip("Pause / resume the fit")
        self.stop = QPushButton("Stop")
        self.stop.setToolTip("Stop the fit and keep the codes reached so far (Esc)")
        for b in (self.start, self.pause, self.stop):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.plot = LossPlot()
        layout.addWidget(self.plot, 1)
        self.metrics = QLabel("")
        self.metrics.setWordWrap(True)
        self.metrics.setToolTip(
            "Metrics of the final mesh against the scan's surface points "
            "(Chamfer ×10⁻³, F-score at 1% of the object size, on thin parts too)"
        )
        layout.addWidget(self.metrics)
        self._set_running(False)

        state.model_changed.connect(self._on_model)
        self.load.clicked.connect(self._choose_scan)
        self.partial.clicked.connect(lambda: self.scan_path and self.load_scan(self.scan_path, partial=True))
        self.start.clicked.connect(self.start_fit)
        self.pause.toggled.connect(self._pause)
        self.stop.clicked.connect(self.stop_fit)

    def _on_model(self) -> None:
        self.stop_fit()
        self._unmeasured = None
        m = self.state.require_model()
        self.class_box.clear()
        self.class_box.addItem("(infer)", None)
        for c in m.class_names:
            self.class_box.addItem(c, c)
        self._set_running(self.worker is not None)

    def _set_running(self, running: bool) -> None:
        self.start.setEnabled(not running and self.observation is not None and self.state.model is not None)
        self.pause.setEnabled(running)
        self.stop.setEnabled(running)
        self.load.setEnabled(not running)
        self.partial.setEnabled(
            not running and self.scan_path is not None and self.scan_path.suffix.lower() in MESH_SUFFIXES
        )

    # -- scan ----------------------------------------------------------------------------------
    def _choose_scan(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load scan", "", SCAN_FILTER)
        if path:
            self.load_scan(Path(path))

    def load_scan(self, path: Path, partial: bool = False) -> None:
        """Build the observation on a worker (meshes are sampled like training data: seconds)."""
        from core.tto import load_observation

        path = Path(path)
        direction = DIRECTIONS[self.direction.currentText()] if partial else None
        what = f"scanning {path.name} from {self.direction.currentText()}" if partial else f"loading {path.name}"
        self.busy.emit(what + "…")
        self.scan_label.setText(what + "…")
        run_task(
            lambda: load_observation(path, n_samples=100_000, scan_direction=direction),
            lambda obs: self._scan_ready(path, obs),
            self._scan_failed,
        )

    def _scan_failed(self, message: str) -> None:
        self.busy.emit("")
        self.scan_label.setText(f"<span style='color:#b00'>could not load: {message}</span>")
        self.state.status.emit(message)

    def _scan_ready(self, path: Path, obs) -> None:
        self.busy.emit("")
        self.observation = obs
        self.scan_path = path
        if obs.has_surface:
            pts = obs.surface_points
        else:
            pts = obs.points[np.abs(obs.sdf) < 0.01]
        self.scan_points = np.asarray(pts, np.float32)
        n_surface = 0 if obs.surface_points is None else len(obs.surface_points)
        self.scan_label.setText(
            f"{path.name}: {obs.kind}, {len(obs.points):,} samples, {n_surface:,} surface points"
            + (f" (labelled {obs.class_name})" if obs.class_name else "")
        )
        if obs.class_name and self.class_box.findData(obs.class_name) >= 0:
            self.class_box.setCurrentIndex(self.class_box.findData(obs.class_name))
        if obs.kind == "scan" and self.switches["hard_draws"].isChecked():
            # measured: from the front they gave up more of the hidden side (docs/experiments/2026-12-05-hard-draws.md)
            self.switches["hard_draws"].setChecked(False)
            self.state.status.emit("partial scan: hard draws turned off (they trade the unseen side for the seen one)")
        if obs.kind == "scan" and self.switches["finetune_last_layers"].isChecked():
            self.state.status.emit("partial scan: the fine-tuning keeps the prior's unseen side (prior anchor)")
        self.scan_loaded.emit(self.scan_points)
        self._set_running(self.worker is not None)

    # -- fitting -------------------------------------------------------------------------------
    def config(self, baseline: bool = False) -> TTOConfig:
        """The fit's settings from the panel (``baseline``: the plain DeepSDF fit shown beside it). The prior
        anchor's weight stays automatic: the fit anchors a fine-tuned partial scan by itself
        (:func:`core.tto.config.for_observation`, docs/results.md "Partial scans")."""
        flags: dict[str, Any] = {} if baseline else {k: box.isChecked() for k, box in self.switches.items()}
        if flags.get("surface_term"):
            flags["normal_term"] = True
        losses = "baseline" if baseline else (",".join(k for k, on in flags.items() if on) or "baseline")
        return TTOConfig(
            iterations=self.iterations.value(),
            lr=self.lr.value(),
            n_samples=self.samples.value(),
            losses=losses,
            **flags,
        )

    def start_fit(self) -> None:
        m = self.state.model
        if m is None or self.observation is None or self.worker is not None:
            return
        self.plot.clear()
        self.metrics.setText("")
        self.last_metrics, self.baseline_metrics = {}, {}
        self.compare_mesh.emit(None)
        self.state.set_mark("TTO", None)
        self._first_report = True
        self._fit_model = m
        self._unmeasured = None
        class_name = self.class_box.currentData()
        self.worker = TTOWorker(m, self.observation, self.config(), class_name, every=self.every.value())
        self.worker.progress.connect(self._progress)
        self.worker.finished_fit.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.worker.finished.connect(self._thread_done)
        self._set_running(True)
        self.busy.emit("test-time optimisation…")
        self.worker.start()
        if self.compare.isChecked():
            self.baseline_worker = TTOWorker(
                m, self.observation, self.config(baseline=True), class_name, every=self.iterations.value()
            )
            self.baseline_worker.finished_fit.connect(self._baseline_finished)
            self.baseline_worker.finished.connect(self._baseline_done)
            self.baseline_worker.start()

    def _pause(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.pause(paused)
        if self.baseline_worker is not None:
            self.baseline_worker.pause(paused)
        self.pause.setText("Resume" if paused else "Pause")

    def stop_fit(self) -> None:
        for w in (self.worker, self.baseline_worker):
            if w is not None:
                w.stop()

    def _current(self) -> bool:
        """False for reports of a fit started on a model that has since been replaced."""
        return self.state.model is not None and self.state.model is self._fit_model

    def _progress(self, report) -> None:
        if report.done or not self._current():
            return  # the result (with the fine-tuned decoder, if any) comes through _finished
        self.plot.add(report.iteration, report.losses, report.stage)
        if report.stage.startswith("class:"):
            self.busy.emit(f"trying class {report.stage[6:]}…")
            return
        m = self.state.require_model()  # a fit runs on the model shown; a new model stops it
        cond = m.condition(class_name=report.class_name) if report.class_name else m.condition()
        sel = CodeSelection(
            report.shape_code,
            report.colour_code,
            None if cond is None else cond.detach().cpu(),
            f"TTO {report.stage} it {report.iteration}",
            report.class_name,
        )
        # The first report opens the fit's undo step; the others join it.
        self.state.select(sel, interactive=True, record=self._first_report)
        self._first_report = False
        self.state.set_mark("TTO", report.shape_code)
        loss = report.losses.get("total", float("nan"))
        self.busy.emit(f"test-time optimisation: step {report.iteration}, loss {loss:.4g}")

    def _selection_of(self, result) -> CodeSelection:
        m = self.state.require_model()
        if result.class_name or result.text:
            cond = m.condition(class_name=result.class_name, text=result.text)
        else:
            cond = m.condition()
        name = ", ".join(result.config.enabled()) if result.config is not None else ""
        return CodeSelection(
            result.shape_code,
            result.colour_code,
            None if cond is None else cond.detach().cpu(),
            f"TTO result ({name or 'baseline'}{', stopped' if result.cancelled else ''})",
            result.class_name,
            result.decoder_override,
        )

    def _finished(self, result) -> None:
        if not self._current():
            return
        sel = self._selection_of(result)
        self.last_result = result
        for report in result.history[-1:]:
            self.plot.add(
                int(report["iteration"]),
                {k: v for k, v in report.items() if k not in ("iteration", "stage", "lr")},
                "done",
            )
        self.state.select(sel, interactive=False, record=self._first_report)
        self.state.set_mark("TTO", result.shape_code)
        self.busy.emit("measuring the fit…")
        self.metrics.setText("measuring…")
        self._unmeasured = (sel, self.observation)
        self.fit_finished.emit(result)

    @property
    def unmeasured_selection(self) -> CodeSelection | None:
        """The finished fit's codes while its metrics wait for :meth:`measure_fit`."""
        return None if self._unmeasured is None else self._unmeasured[0]

    def measure_fit(self, shown, fit: CodeSelection) -> None:
        """Measure the finished fit against the scan, on a worker thread.

        The window calls this once the fit's refined mesh is on screen, and passes that mesh
        (``shown``, a MeshArrays of the fit's codes, else None) to be measured as it is when it has the
        metric resolution. Measuring while that mesh was still being extracted and drawn made
        the two compete for the 2 cores (the draw then stalled the UI thread 60 ms) and
        extracted the same mesh twice. ``fit``: the codes the caller saw waiting
        (:attr:`unmeasured_selection`); a call for another fit's codes does nothing.

        The viewer's meshes come from torch's marching cubes (:func:`viewer.workers.mesh_job`),
        which resolves ambiguous cubes unlike scikit-image's used by ``main.py evaluate`` on a
        CPU: metrics here can differ from the command's in the last digits on thin parts.
        """
        if self._unmeasured is None or self._unmeasured[0] is not fit or not self._current():
            return
        sel, obs = self._unmeasured
        self._unmeasured = None
        model, res = self.state.require_model(), self.metric_resolution
        if shown is not None and (shown.is_empty or shown.stats.get("resolution") != res):
            shown = None
        run_task(lambda: measure(model, sel, obs, res, mesh=shown), self._show_metrics, self._failed)

    def _show_metrics(self, metrics: dict) -> None:
        self.busy.emit("")
        self.last_metrics = metrics
        self._render_metrics()
        self.state.status.emit("fit measured: " + (_format_metrics(metrics) or "no surface points to compare with"))
        self.metrics_ready.emit(metrics)

    def _render_metrics(self) -> None:
        if not self.last_metrics:
            self.metrics.setText("the scan has no surface points: no metrics")
            return
        lines = ["<b>result</b> " + _format_metrics(self.last_metrics)]
        if self.baseline_metrics:
            lines.append("<b>baseline</b> " + _format_metrics(self.baseline_metrics))
        self.metrics.setText("<br>".join(lines))

    def _baseline_finished(self, result) -> None:
        if not self._current():
            return
        sel = self._selection_of(result)
        model, obs, resolution = self.state.model, self.observation, self.state.display.full_resolution

        def work():
            mesh = mesh_job(model, sel, resolution)()
            res = self.metric_resolution
            return mesh, measure(model, sel, obs, res, mesh=mesh if resolution == res else None)

        def done(out) -> None:
            mesh, metrics = out
            self.baseline_metrics = metrics
            self.compare_mesh.emit(mesh)
            if self.last_metrics:
                self._render_metrics()

        run_task(work, done, self._failed)

    def _failed(self, message: str) -> None:
        self.busy.emit("")
        self.metrics.setText(f"<span style='color:#b00'>{message}</span>")
        self.state.status.emit(f"TTO: {message}")

    def _thread_done(self) -> None:
        # ``finished`` is emitted from the thread just before it exits: wait for the exit, so the
        # QThread is never destroyed while running (Qt aborts then).
        if self.worker is not None:
            self.worker.wait()
            self.worker.deleteLater()
        self.worker = None
        self.pause.setChecked(False)
        self._set_running(False)

    def _baseline_done(self) -> None:
        if self.baseline_worker is not None:
            self.baseline_worker.wait()
            self.baseline_worker.deleteLater()
        self.baseline_worker = None

    def shutdown(self) -> None:
        for w in (self.worker, self.baseline_worker):
            if w is not None:
                w.stop()
                w.wait(30_000)


def _format_metrics(metrics: dict) -> str:
    return " · ".join(
        f"{name} {metrics[k] * f:.2f}{unit}"
        for k, name, f, unit in METRIC_KEYS
        if k in metrics and np.isfinite(metrics[k])
    )


def measure(
    model: TrainedModel,
    selection: CodeSelection,
    observation: Observation,
    resolution: int = METRIC_RESOLUTION,
    mesh: MeshArrays | None = None,
) -> dict:
    """Metrics of ``selection``'s mesh against the scan (:func:`core.tto.measure.measure_fit`), on a worker thread.

    ``mesh``: the selection's mesh at ``resolution`` when it is already there; else extracted as
    :func:`viewer.workers.mesh_job` does (torch marching cubes), so it is the mesh the view shows.
    """
    from core.tto.measure import measure_fit

    return measure_fit(
        model.with_decoder(selection.decoder_override),
        observation,
        selection.shape_code,
        selection.colour_code,
        selection.condition,
        resolution=resolution,
        mesh=mesh,
        mc_backend="torch",
    )
