"""Live test-time optimisation: load a scan, fit codes with the chosen losses, watch it converge."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from core.tto import TTOConfig
from viewer.panels.loss_plot import LossPlot
from viewer.state import CodeSelection, ViewerState
from viewer.workers import TTOWorker, mesh_job, run_task

SCAN_FILTER = "Scans (*.obj *.glb *.gltf *.ply *.stl *.off *.npz *.xyz *.npy);;All files (*)"
DIRECTIONS = {"front (+z)": (0.0, 0.0, 1.0), "side (+x)": (1.0, 0.0, 0.0), "top (+y)": (0.0, 1.0, 0.0),
              "oblique": (0.6, 0.4, 0.7)}
SWITCHES = (("surface_term", "surface + normal terms", "|f| → 0 on observed surface points, SDF gradient aligned with normals"),
            ("curriculum", "curriculum", "Curriculum DeepSDF: hard-sample weighting and a shrinking error tolerance"),
            ("coarse_to_fine", "coarse-to-fine", "Clamp distance and sample set narrow over the iterations"),
            ("finetune_last_layers", "fine-tune last layers", "A few steps on the last layers with a small learning rate"))


class TTOPanel(QWidget):
    scan_loaded = Signal(object)  # (N, 3) points to draw, or None
    compare_mesh = Signal(object)  # MeshArrays of the baseline fit, or None
    busy = Signal(str)  # status text ("" when idle)

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.observation = None
        self.worker: TTOWorker | None = None
        self.baseline_worker: TTOWorker | None = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.load = QPushButton("Load scan…")
        self.load.setToolTip("A mesh, point cloud (.ply/.xyz/.npy) or DeepSDF .npz samples to fit")
        self.partial = QCheckBox("partial")
        self.partial.setToolTip("From a mesh, make a single-view depth scan (shape completion) instead of full samples")
        self.direction = QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.direction.setToolTip("Direction of the single-view scan camera")
        row.addWidget(self.load)
        row.addWidget(self.partial)
        row.addWidget(self.direction)
        layout.addLayout(row)
        self.scan_label = QLabel("no scan loaded")
        self.scan_label.setWordWrap(True)
        layout.addWidget(self.scan_label)
        form = QFormLayout()
        self.class_box = QComboBox()
        self.class_box.setToolTip("Class to condition on, or infer it (a short fit under every class)")
        self.iterations = QSpinBox()
        self.iterations.setRange(10, 5000)
        self.iterations.setValue(300)
        self.iterations.setToolTip("Optimisation steps (DeepSDF: 800)")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(4)
        self.lr.setRange(1e-4, 0.1)
        self.lr.setSingleStep(1e-3)
        self.lr.setValue(5e-3)
        self.lr.setToolTip("Code learning rate (DeepSDF: 5e-3, ×0.1 after half the steps)")
        self.samples = QSpinBox()
        self.samples.setRange(500, 50000)
        self.samples.setSingleStep(500)
        self.samples.setValue(4000)
        self.samples.setToolTip("SDF samples per step (DeepSDF: 8000)")
        self.every = QSpinBox()
        self.every.setRange(1, 200)
        self.every.setValue(20)
        self.every.setToolTip("Refresh the mesh every this many steps")
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
        layout.addWidget(self.plot)
        self.metrics = QLabel("")
        self.metrics.setWordWrap(True)
        self.metrics.setToolTip("Metrics of the final mesh against the scan's surface points")
        layout.addWidget(self.metrics)
        self._set_running(False)

        state.model_changed.connect(self._on_model)
        self.load.clicked.connect(self._choose_scan)
        self.start.clicked.connect(self.start_fit)
        self.pause.toggled.connect(lambda on: self.worker.pause(on) if self.worker else None)
        self.stop.clicked.connect(self.stop_fit)

    def _on_model(self) -> None:
        m = self.state.model
        self.class_box.clear()
        self.class_box.addItem("(infer)", None)
        for c in m.class_names:
            self.class_box.addItem(c, c)
        self.start.setEnabled(self.observation is not None)

    def _set_running(self, running: bool) -> None:
        self.start.setEnabled(not running and self.observation is not None and self.state.model is not None)
        self.pause.setEnabled(running)
        self.stop.setEnabled(running)
        self.load.setEnabled(not running)

    # -- scan ----------------------------------------------------------------------------------
    def _choose_scan(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load scan", "", SCAN_FILTER)
        if path:
            self.load_scan(Path(path))

    def load_scan(self, path: Path, partial: bool | None = None) -> None:
        from core.tto import load_observation

        partial = self.partial.isChecked() if partial is None else partial
        direction = DIRECTIONS[self.direction.currentText()] if partial else None
        self.busy.emit(f"loading {path.name}…")
        self.scan_label.setText(f"loading {path.name}…")
        run_task(lambda: load_observation(path, n_samples=100_000, scan_direction=direction),
                 lambda obs: self._scan_ready(path, obs), self._scan_failed)

    def _scan_failed(self, message: str) -> None:
        self.busy.emit("")
        self.scan_label.setText(f"<span style='color:#b00'>could not load: {message}</span>")
        self.state.status.emit(message)

    def _scan_ready(self, path: Path, obs) -> None:
        self.busy.emit("")
        self.observation = obs
        pts = obs.surface_points if obs.surface_points is not None else obs.points[np.abs(obs.sdf) < 0.01]
        self.scan_points = pts
        self.scan_label.setText(f"{path.name}: {obs.kind}, {len(obs.points):,} samples, "
                                f"{0 if obs.surface_points is None else len(obs.surface_points):,} surface points")
        self.scan_loaded.emit(pts)
        self._set_running(False)

    # -- fitting -------------------------------------------------------------------------------
    def config(self, baseline: bool = False) -> TTOConfig:
        flags = {} if baseline else {k: box.isChecked() for k, box in self.switches.items()}
        if flags.get("surface_term"):
            flags["normal_term"] = True
        return TTOConfig(iterations=self.iterations.value(), lr=self.lr.value(), n_samples=self.samples.value(), **flags)

    def start_fit(self) -> None:
        m = self.state.model
        if m is None or self.observation is None or self.worker is not None:
            return
        self.plot.clear()
        self.metrics.setText("")
        self.compare_mesh.emit(None)
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
            self.baseline_worker = TTOWorker(m, self.observation, self.config(baseline=True), class_name,
                                             every=self.iterations.value())
            self.baseline_worker.finished_fit.connect(self._baseline_finished)
            self.baseline_worker.start()

    def stop_fit(self) -> None:
        for w in (self.worker, self.baseline_worker):
            if w is not None:
                w.stop()

    def _progress(self, report) -> None:
        self.plot.add(report.iteration if report.stage != "finetune" else report.iteration, report.losses)
        if report.stage.startswith("class:"):
            return
        m = self.state.model
        cond = m.condition(class_name=report.class_name) if report.class_name else m.condition()
        sel = CodeSelection(report.shape_code, report.colour_code, None if cond is None else cond.detach().cpu(),
                            f"TTO {report.stage} it {report.iteration}", report.class_name)
        self.state.select(sel, interactive=not report.done)

    def _selection_of(self, result) -> CodeSelection:
        m = self.state.model
        cond = m.condition(class_name=result.class_name, text=result.text) if (result.class_name or result.text) else m.condition()
        return CodeSelection(result.shape_code, result.colour_code, None if cond is None else cond.detach().cpu(),
                             f"TTO result ({', '.join(result.config.enabled()) or 'baseline'})", result.class_name,
                             result.decoder_override)

    def _finished(self, result) -> None:
        sel = self._selection_of(result)
        self.last_result = result
        self.state.select(sel, interactive=False, record=False)
        self.busy.emit("measuring the fit…")
        model, obs = self.state.model, self.observation
        run_task(lambda: _measure(model, sel, obs), self._show_metrics, self._failed)

    def _show_metrics(self, metrics: dict) -> None:
        self.busy.emit("")
        self.last_metrics = metrics
        if not metrics:
            self.metrics.setText("no surface points in the scan: no metrics")
            return
        keys = [("chamfer", "Chamfer", 1e3, "×10⁻³"), ("fscore_1pct", "F@1%", 100, "%"),
                ("thin_fscore_1pct", "thin F@1%", 100, "%"), ("colour_psnr", "colour PSNR", 1, "dB")]
        self.metrics.setText(" · ".join(f"{name} {metrics[k] * f:.2f}{unit}" for k, name, f, unit in keys
                                        if k in metrics and np.isfinite(metrics[k])))

    def _baseline_finished(self, result) -> None:
        sel = self._selection_of(result)
        model = self.state.model
        run_task(mesh_job(model, sel, self.state.display.full_resolution), self.compare_mesh.emit, self._failed)

    def _failed(self, message: str) -> None:
        self.busy.emit("")
        self.state.status.emit(f"TTO: {message}")

    def _thread_done(self) -> None:
        self.worker = None
        self.pause.setChecked(False)
        self._set_running(False)
        if self.metrics.text() == "":
            self.busy.emit("")

    def shutdown(self) -> None:
        for w in (self.worker, self.baseline_worker):
            if w is not None:
                w.stop()
                w.wait(10_000)


def _measure(model, selection: CodeSelection, observation) -> dict:
    """Metrics of the fitted mesh against the scan's surface points (worker thread)."""
    from core.evaluation import approximate_thin_mask
    from core.metrics import evaluate_reconstruction

    if observation.surface_points is None or observation.surface_normals is None:
        return {}
    mesh = mesh_job(model, selection, 128, selection.decoder_override)()
    if mesh.is_empty:
        return {"chamfer": float("inf")}
    gt = {"surface_points": observation.surface_points, "surface_normals": observation.surface_normals}
    if observation.surface_colours is not None:
        gt["surface_rgb"] = observation.surface_colours
    mask = approximate_thin_mask(observation.surface_points, observation.surface_normals)
    return evaluate_reconstruction(gt, mesh, thin_mask=mask, n_points=10_000)
