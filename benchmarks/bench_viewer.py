"""Viewer benchmark: preview rate while dragging, and how long the UI thread stalls.

Runs the real main window (needs a display: ``xvfb-run -a python benchmarks/bench_viewer.py``)
on a checkpoint (default: the demo model; else an untrained default-preset model).

* preview rate: a simulated slider drag submits a new code every 15 ms for 3 s; we count the
  meshes shown per second (the latest-wins worker drops superseded requests);
* UI stall: the longest gap between ticks of a 10 ms QTimer while a full-resolution mesh is
  extracted by the worker, against the baseline of extracting it on the UI thread (the gap
  is then the whole extraction): the ratio is what the worker thread buys.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--preview", type=int, default=48)
    ap.add_argument("--full", type=int, default=128)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from core.model import load_trained_model, untrained_model
    from viewer.main_window import MainWindow
    from viewer.state import CodeSelection
    from viewer.view_command import DEMO_CHECKPOINT
    from viewer.workers import mesh_job

    ckpt = args.ckpt or (DEMO_CHECKPOINT if DEMO_CHECKPOINT.exists() else None)
    model = load_trained_model(ckpt) if ckpt else untrained_model("default")
    win = MainWindow(settings=QSettings("/tmp/bench_viewer.ini", QSettings.IniFormat))
    win.resize(1200, 800)
    win.show()
    win.state.set_display(preview_resolution=args.preview, full_resolution=args.full)
    win.state.set_model(model)

    def pump(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    def settle() -> None:
        end = time.perf_counter() + 60
        while time.perf_counter() < end:
            app.processEvents()
            if win.mesher._pending is None and not win.progress.isVisible() and not win.idle_timer.isActive():
                if win.current_mesh is not None and win.current_mesh.stats.get("resolution") == args.full:
                    return
            time.sleep(0.005)

    settle()
    a, b = model.shape_codes[0].cpu(), model.shape_codes[-1].cpu()
    cond = model.condition(model.shape_classes[0])
    cond = None if cond is None else cond.cpu()
    colour = None if model.colour_codes is None else model.colour_codes[0].cpu()

    # --- preview rate during a drag -----------------------------------------------------------
    shown = []
    win.mesh_shown.connect(lambda mesh: shown.append((time.perf_counter(), mesh.stats.get("resolution"))))
    duration = 1.5 if args.quick else 3.0
    start = time.perf_counter()
    superseded0 = win.mesher.superseded
    k = 0
    while time.perf_counter() - start < duration:
        t = 0.5 + 0.5 * np.sin(k * 0.2)
        win.state.select(CodeSelection(a + (b - a) * float(t), colour, cond, "drag", None), interactive=True)
        k += 1
        pump(0.015)
    drag_meshes = [s for s in shown if s[1] == args.preview and s[0] <= start + duration]
    rate = len(drag_meshes) / duration
    dropped = win.mesher.superseded - superseded0
    win.state.finish_interaction()
    settle()

    # --- UI stall: worker vs on the UI thread ---------------------------------------------------
    def max_gap(run) -> float:
        ticks = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start()
        pump(0.05)
        run()
        pump(0.05)
        timer.stop()
        return float(np.max(np.diff(ticks))) if len(ticks) > 1 else float("nan")

    repeats = 2 if args.quick else 4
    worker_gaps, ui_gaps = [], []
    for i in range(repeats):
        sel = CodeSelection(a + (b - a) * (0.3 + 0.1 * i), colour, cond, f"stall {i}", None)

        def in_worker():
            n = len(shown)
            win.state.select(sel)
            while len(shown) == n or shown[-1][1] != args.full:
                app.processEvents()
                time.sleep(0.001)

        def on_ui_thread():
            mesh = mesh_job(model, sel, args.full)()
            win.scene.show_mesh(mesh)

        worker_gaps.append(max_gap(in_worker))
        ui_gaps.append(max_gap(on_ui_thread))
    worker, ui = statistics.median(worker_gaps), statistics.median(ui_gaps)
    print(f"model: {ckpt or 'untrained default preset'}; preview {args.preview}^3, full {args.full}^3")
    print("| measure | value |\n|---|---|")
    print(f"| preview meshes shown per second while dragging | {rate:.1f} |")
    print(f"| drag requests superseded (not queued) | {dropped} of {k} |")
    print(f"| UI-thread stall, extraction in the worker (median max gap) | {worker * 1000:.0f} ms |")
    print(f"| UI-thread stall, extraction on the UI thread (baseline) | {ui * 1000:.0f} ms |")
    print(f"| ratio baseline / worker | {ui / worker:.1f}x |")
    win.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
