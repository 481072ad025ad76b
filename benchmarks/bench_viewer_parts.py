"""The viewer's UI-thread costs, one part at a time, each against its baseline in this process.

Needs a display (``bash scripts/with_display.sh python -m benchmarks.bench_viewer_parts``).
On the demo model (else an untrained default-preset model):

* GIL hold of marching cubes: the longest gap of a 1 ms ticker thread while a 128³ grid is
  triangulated on another thread, scikit-image (baseline) against torch (what the worker uses);
* two scene changes in one event: ``plotter.render()`` after each (baseline) against
  :meth:`viewer.scene.Scene.request_render` after each (Qt merges them into one paint);
* FXAA: the refined mesh's frame with and without it;
* a full garbage collection with the window and model alive, the start-up objects frozen as
  :func:`viewer.app.application` does, against the same with nothing frozen (``gc.unfreeze``).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import threading
import time

import numpy as np

from benchmarks.bench_meshing import median_time


def longest_gil_hold(fn, repeats: int = 3) -> float:
    """Longest gap (s) of a 1 ms ticker in this thread while ``fn`` runs on another (median of repeats)."""
    holds = []
    for _ in range(repeats):
        done = threading.Event()
        worker = threading.Thread(target=lambda done=done: (fn(), done.set()))
        ticks = [time.perf_counter()]
        worker.start()
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)
        ticks.append(time.perf_counter())
        worker.join()
        holds.append(float(np.diff(ticks).max()))
    return statistics.median(holds)


def main() -> int:
    from PySide6.QtCore import QSettings

    from core.meshing.extract import marching_cubes_skimage, marching_cubes_torch
    from core.meshing.grid import evaluate_coarse_to_fine
    from core.model import load_trained_model, untrained_model
    from viewer.app import DEMO_CHECKPOINT, application
    from viewer.main_window import MainWindow
    from viewer.scene import is_software_gl

    app = application()  # as `main.py view` starts: start-up objects frozen out of gc, before any window
    frozen = gc.get_freeze_count()
    model = load_trained_model(DEMO_CHECKPOINT) if DEMO_CHECKPOINT.exists() else untrained_model("default")
    rows = []

    # -- marching cubes: GIL ---------------------------------------------------------------------
    first = model.shape_classes[0]
    grid = evaluate_coarse_to_fine(model.sdf_fn(model.shape_codes[0].cpu(), model.condition(first)), 128)
    values = grid.values
    sk = longest_gil_hold(lambda: marching_cubes_skimage(values, 0.0))
    th = longest_gil_hold(lambda: marching_cubes_torch(values, 0.0))
    sk_t = median_time(lambda: marching_cubes_skimage(values, 0.0), 3)
    th_t = median_time(lambda: marching_cubes_torch(values, 0.0), 3)
    rows.append(
        (
            "marching cubes 128³: longest GIL hold, skimage / torch",
            f"{sk * 1000:.0f} / {th * 1000:.0f} ms",
            f"{sk / th:.1f}x",
        )
    )
    rows.append(
        (
            "marching cubes 128³: time, skimage / torch",
            f"{sk_t * 1000:.0f} / {th_t * 1000:.0f} ms",
            f"{sk_t / th_t:.2f}x",
        )
    )

    # -- rendering -------------------------------------------------------------------------------
    win = MainWindow(settings=QSettings("/tmp/bench_viewer_parts.ini", QSettings.IniFormat))
    win.resize(1200, 800)
    win.show()
    win.state.set_model(model)
    end = time.perf_counter() + 120
    while not win.is_idle() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)

    def shown(update) -> float:
        def once():
            update()
            app.processEvents()

        for _ in range(2):
            once()
        return median_time(once, 9)

    plotter, scene = win.plotter, win.scene
    scene._set_fxaa(False)
    # Two changes in one event (a mesh and its camera, a slice and its clipping): rendering at
    # each (baseline) against asking for a repaint at each, which Qt merges into one paint.
    twice = shown(lambda: (plotter.render(), plotter.render()))
    merged = shown(lambda: (scene.request_render(), scene.request_render()))
    rows.append(
        (
            "two scene changes in one event: plotter.render() each / request_render() each",
            f"{twice * 1000:.0f} / {merged * 1000:.0f} ms",
            f"{twice / merged:.1f}x",
        )
    )
    single = shown(scene.request_render)
    scene._set_fxaa(True)
    with_fxaa = shown(scene.request_render)
    scene._set_fxaa(False)
    rows.append(
        (
            "refined-mesh frame with / without FXAA",
            f"{with_fxaa * 1000:.0f} / {single * 1000:.0f} ms",
            f"{with_fxaa / single:.1f}x",
        )
    )

    # -- garbage collection ----------------------------------------------------------------------
    full_frozen = median_time(lambda: gc.collect(2), 3)  # window and model alive, start-up frozen
    gc.unfreeze()
    full = median_time(lambda: gc.collect(2), 3)
    rows.append(
        (
            f"full garbage collection: nothing frozen / {frozen:,} start-up objects frozen",
            f"{full * 1000:.0f} / {full_frozen * 1000:.0f} ms",
            f"{full / full_frozen:.1f}x",
        )
    )

    print(
        f"model: {DEMO_CHECKPOINT if DEMO_CHECKPOINT.exists() else 'untrained default preset'}; "
        f"view {plotter.window_size[0]} x {plotter.window_size[1]} px, "
        f"{'software' if is_software_gl(plotter) else 'hardware'} OpenGL"
    )
    print("| part | baseline / ours | ratio |\n|---|---|---|")
    for name, value, ratio in rows:
        print(f"| {name} | {value} | {ratio} |")
    win.shutdown()
    win.close()
    win.deleteLater()
    app.processEvents()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # as bench_viewer.py: no interpreter finalisation with VTK/Qt wrappers around
