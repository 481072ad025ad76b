"""Viewer benchmark: preview rate while dragging, and how long the UI thread stalls.

Runs the real main window (needs a display: ``xvfb-run -a python -m benchmarks.bench_viewer``)
on a checkpoint (default: the demo model; else an untrained default-preset model).

* preview rate: the interpolation slider is moved every 15 ms for 3 s (as a mouse drag moves
  it); we count the meshes shown per second (the latest-wins worker drops superseded
  requests) and time the UI thread with a 10 ms timer through the drag and the refinement
  after the release;
* UI stall: the longest gap between ticks of a 10 ms QTimer while a full-resolution mesh is
  extracted by the worker and drawn, against the baseline of extracting it on the UI thread (the
  gap is then the whole extraction): the ratio is what the worker thread buys; and the longest gap
  from the request to the worker's hand-over alone (the extraction, without VTK's drawing), the
  responsiveness the viewer tests no longer time (tests never assert this machine's speed);
* UI stall during live TTO: the same timer while a fit runs on a shipped partial scan with
  live mesh refreshes (ticks gaps: median, 95th percentile, max);
* memory over 1,000 slider steps: resident memory and the renderer's actor count after
  100 and after 1,000 drag steps (a leak of actors or meshes grows both), and the longest
  tick gap over the whole run (long enough for the garbage collector's rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


class ViewerBench:
    """The real main window on a model, and the UI-thread clock every measurement reads: a 10 ms QTimer."""

    def __init__(self, args: argparse.Namespace) -> None:
        from PySide6.QtCore import QSettings

        from viewer.app import application

        self.args = args
        self.app = application()  # as `main.py view` starts: optimiser machinery loaded, start-up frozen out of gc
        from core.model import load_trained_model, untrained_model
        from viewer.app import DEMO_CHECKPOINT
        from viewer.main_window import MainWindow

        self.ckpt = args.ckpt or (DEMO_CHECKPOINT if DEMO_CHECKPOINT.exists() else None)
        self.model = load_trained_model(self.ckpt) if self.ckpt else untrained_model("default")
        self.win = MainWindow(settings=QSettings("/tmp/bench_viewer.ini", QSettings.Format.IniFormat))
        self.win.resize(1200, 800)
        self.win.show()
        self.win.state.set_display(preview_resolution=args.preview, full_resolution=args.full)
        self.win.state.set_model(self.model)
        self.settle()
        model = self.model
        self.a, self.b = model.shape_codes[0].cpu(), model.shape_codes[-1].cpu()
        cond = model.condition(model.shape_classes[0])
        self.cond = None if cond is None else cond.cpu()
        self.colour = None if model.colour_codes is None else model.colour_codes[0].cpu()
        self.shown: list[tuple[float, int | None]] = []
        self.win.mesh_shown.connect(lambda mesh: self.shown.append((time.perf_counter(), mesh.stats.get("resolution"))))

    def pump(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.002)

    def wait_until(self, done, timeout_s: float) -> None:
        """Run the event loop until ``done()`` or the timeout."""
        end = time.perf_counter() + timeout_s
        while not done() and time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.002)

    def settle(self) -> None:
        win, full = self.win, self.args.full
        self.wait_until(
            lambda: (
                win.mesher._pending is None
                and not win.progress.isVisible()
                and not win.idle_timer.isActive()
                and win.current_mesh is not None
                and win.current_mesh.stats.get("resolution") == full
            ),
            60,
        )

    def tick_times(self, run) -> np.ndarray:
        """perf_counter() of each tick of a 10 ms timer on the UI thread while ``run()`` runs."""
        from PySide6.QtCore import QTimer

        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start()
        self.pump(0.05)
        run()
        self.pump(0.05)
        timer.stop()
        return np.asarray(ticks)

    def tick_gaps(self, run) -> np.ndarray:
        """Seconds between the ticks of a 10 ms timer on the UI thread while ``run()`` runs."""
        return np.diff(self.tick_times(run))

    def selection(self, t: float, name: str):
        from viewer.state import CodeSelection

        return CodeSelection(self.a + (self.b - self.a) * float(t), self.colour, self.cond, name, None)

    def drag(self) -> list[list[object]]:
        """Preview rate and UI stall while the interpolation slider is dragged, then released."""
        win, args = self.win, self.args
        win.docks["Interpolation"].raise_()
        win.interp_panel.set_endpoints(0, len(self.model.shape_codes) - 1)
        slider = win.interp_panel.shape_slider
        duration = 1.5 if args.quick else 3.0
        superseded0 = win.mesher.superseded
        steps: list[float] = []

        def drag() -> None:
            start = time.perf_counter()
            while time.perf_counter() - start < duration:
                slider.setValue(round(50 + 50 * np.sin(len(steps) * 0.2)))
                steps.append(time.perf_counter())
                self.pump(0.015)
            slider.setSliderDown(False)  # the release: emits sliderReleased, which refines
            self.settle()

        slider.setSliderDown(True)
        gaps = self.tick_gaps(drag) * 1000
        # Only this drag's previews: the list holds every mesh the window showed since it opened.
        meshes = [s for s in self.shown if s[1] == args.preview and steps[0] <= s[0] <= steps[0] + duration]
        win.docks["Codes"].raise_()
        self.settle()
        return [
            ["preview meshes shown per second while dragging", f"{len(meshes) / duration:.1f}"],
            ["drag requests superseded (not queued)", f"{win.mesher.superseded - superseded0} of {len(steps)}"],
            [
                "UI-thread stall during the drag and the refinement after it: tick gap median / p95 / max",
                f"{np.median(gaps):.0f} / {np.percentile(gaps, 95):.0f} / {gaps.max():.0f} ms",
            ],
        ]

    def stalls(self) -> list[list[object]]:
        """UI stall while a full mesh is extracted by the worker, against extracting it on the UI thread."""
        from PySide6.QtCore import Qt

        from viewer.workers import mesh_job

        win, args = self.win, self.args
        worker_gaps, ui_gaps, extraction_gaps, extraction_s = [], [], [], []
        requested: list[float] = []
        handed_over: list[float] = []
        # Direct: stamped on the worker thread the moment the result is handed over, before it queues.
        win.mesher.finished_job.connect(
            lambda *_: handed_over.append(time.perf_counter()), Qt.ConnectionType.DirectConnection
        )
        for i in range(2 if args.quick else 4):
            sel = self.selection(0.3 + 0.1 * i, f"stall {i}")

            def in_worker(sel=sel):
                n = len(self.shown)
                requested.append(time.perf_counter())
                win.state.select(sel)
                self.wait_until(lambda: len(self.shown) > n and self.shown[-1][1] == args.full, 120)

            def on_ui_thread(sel=sel):
                win.scene.show_mesh(mesh_job(self.model, sel, args.full)())

            ticks = self.tick_times(in_worker)
            worker_gaps.append(float(np.diff(ticks).max()))
            t0, t1 = requested[-1], handed_over[-1]
            during = ticks[(ticks > t0) & (ticks < t1)]
            extraction_gaps.append(float(np.diff(np.concatenate([[t0], during, [t1]])).max()))
            extraction_s.append(t1 - t0)
            gaps = self.tick_gaps(on_ui_thread)
            ui_gaps.append(float(gaps.max()) if len(gaps) else float("nan"))
        worker, ui = statistics.median(worker_gaps), statistics.median(ui_gaps)
        return [
            ["UI-thread stall, extraction in the worker (median max gap)", f"{worker * 1000:.0f} ms"],
            [
                f"of which from the request to the worker's hand-over ({statistics.median(extraction_s) * 1000:.0f}"
                " ms extraction, without drawing; median max gap)",
                f"{statistics.median(extraction_gaps) * 1000:.0f} ms",
            ],
            ["UI-thread stall, extraction on the UI thread (baseline)", f"{ui * 1000:.0f} ms"],
            ["ratio baseline / worker", f"{ui / worker:.1f}x"],
        ]

    def live_tto(self) -> list[object]:
        """UI stall while a live fit runs on the shipped partial chair scan (a chair model only)."""
        scan = Path(__file__).resolve().parents[1] / "resources" / "scans" / "chair_thin_partial.npz"
        panel = self.win.tto_panel
        if not scan.exists() or "chair" not in self.model.class_names:
            return ["UI-thread stall during live TTO", "not measured (no scan for this model)"]
        loaded: list[bool] = []
        panel.scan_loaded.connect(lambda *_: loaded.append(True))
        panel.load_scan(scan)
        self.wait_until(lambda: bool(loaded), 60)
        panel.iterations.setValue(60 if self.args.quick else 150)
        panel.every.setValue(10)
        panel.class_box.setCurrentText("chair")
        refreshes0 = len(self.shown)
        fit_seconds: list[float] = []
        measured: list[object] = []
        panel.metrics_ready.connect(lambda metrics: measured.append(metrics))

        def fit() -> None:
            """The fit, its refined mesh and its metrics against the scan."""
            t0 = time.perf_counter()
            panel.start_fit()
            self.wait_until(lambda: panel.worker is None, 300)
            fit_seconds.append(time.perf_counter() - t0)
            self.wait_until(lambda: bool(measured), 120)

        gaps = self.tick_gaps(fit) * 1000
        self.settle()
        return [
            f"UI-thread stall during live TTO ({panel.iterations.value()} it in {fit_seconds[0]:.1f} s, "
            f"{len(self.shown) - refreshes0} live meshes, then the refined mesh and the metrics): "
            "tick gap median / p95 / max",
            f"{np.median(gaps):.0f} / {np.percentile(gaps, 95):.0f} / {gaps.max():.0f} ms",
        ]

    def memory(self) -> list[list[object]]:
        """Resident memory and renderer actors over many slider steps (a leak grows both)."""
        win = self.win
        steps = 300 if self.args.quick else 1000
        marks: dict[int, tuple[float, int]] = {}

        def long_drag() -> None:
            for i in range(steps):
                win.state.select(self.selection(0.5 + 0.5 * np.sin(i * 0.05), "drag"), interactive=True)
                self.pump(0.004)
                if i + 1 in (100, steps):
                    self.wait_until(lambda: win.mesher.idle, 30)
                    self.pump(0.05)
                    marks[i + 1] = (_rss_mb(), win.scene.plotter.renderer.GetActors().GetNumberOfItems())

        gaps = self.tick_gaps(long_drag) * 1000  # long enough for the garbage collector's rounds
        win.state.finish_interaction()
        self.settle()
        (m100, a100), (m_end, a_end) = marks[100], marks[steps]
        return [
            [
                f"resident memory after 100 / {steps} slider steps",
                f"{m100:.0f} / {m_end:.0f} MB ({m_end - m100:+.0f} MB)",
            ],
            [f"renderer actors after 100 / {steps} slider steps", f"{a100} / {a_end}"],
            ["full garbage collections (UI thread) during the whole run", win.gui_gc.full_collections],
            [
                f"UI-thread stall over the {steps} slider steps ({len(gaps) / 100:.0f} s): tick gap p99 / max",
                f"{np.percentile(gaps, 99):.0f} / {gaps.max():.0f} ms",
            ],
        ]

    def close(self) -> None:
        self.win.shutdown()
        self.win.close()
        self.win.deleteLater()  # as `main.py view` does: Qt frees the window before Python finalises
        self.app.processEvents()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--preview", type=int, default=32)
    ap.add_argument("--full", type=int, default=128)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from core.utils.markdown import markdown_table

    bench = ViewerBench(args)
    rows = bench.drag() + bench.stalls() + [bench.live_tto()] + bench.memory()
    print(f"model: {bench.ckpt or 'untrained default preset'}; preview {args.preview}^3, full {args.full}^3")
    print(markdown_table(["measure", "value"], rows, align="ll"))
    bench.close()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation: with the window, a fitted model and pyvista objects still
    # referenced from this frame's closures, Python's final garbage collection can free VTK/Qt
    # wrappers in an order PySide6 does not survive ("none_dealloc"). `main.py view` does not
    # have this problem; the benchmark's results are printed by now.
    os._exit(code)
