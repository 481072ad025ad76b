"""Shape editing on the demo model: drag, paint and graft quality and speed, against baselines.

    python -m benchmarks.bench_edit [--ckpt resources/demo/demo.pt] [--code chair/chair_003] [--quick]

Measures the targets of issue 14 on this CPU:

* drag: time until the handle is within one 64³ voxel of the surface (from the loss history:
  the first step with |SDF(target)| < one voxel), the whole drag's time, the target's distance to
  the 64³ mesh after it (voxels), and the mean Chamfer of the surface outside the radius of
  influence against the original (voxels); baseline: the same drag without the locality term;
* paint: mean CIELAB ΔE to the brush colour under the brush, and to the colours before
  elsewhere (fraction within ΔE 10 / ΔE 3), for the colour code alone (``detail=False``, the
  baseline), 200 steps on a copy of the colour head, and the default 400 head steps;
* graft: SDF error (clamped L1) against B inside the region and A outside; baselines: A's and
  B's own codes;
* UI stall during a drag-edit in the viewer (the Edit panel's live drag on a worker thread): the
  longest gap of a 5 ms UI-thread timer, with ``--ui`` (needs a display or scripts/with_display.sh).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from core.edit import (
    Brush,
    DragConfig,
    Handle,
    PaintConfig,
    Region,
    codes_of,
    delta_e,
    drag,
    graft,
    paint,
    take_snapshot,
)
from core.edit.measure import distance_to_surface, far_surface_shift
from core.meshing import extract_mesh
from core.model import load_trained_model
from core.utils.markdown import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def drag_cases(snapshot):
    """(name, source, offset): the top of the back up and back, a side outwards, a front leg forwards."""
    v = snapshot.mesh.vertices.astype(np.float64)
    top, side = v[np.argmax(v[:, 1])], v[np.argmax(v[:, 0])]
    low = v[v[:, 1] < v[:, 1].min() + 0.05]
    leg = low[np.argmax(low[:, 2])]
    return [
        ("back up 0.12", top, [0, 0.12, 0]),
        ("back backwards 0.12", top, [0, 0, -0.12]),
        ("side out 0.1", side, [0.1, 0, 0]),
        ("leg forward 0.08", leg, [0, 0, 0.08]),
    ]


def bench_drag(model, snapshot, quick: bool) -> None:
    voxel = snapshot.voxel
    print(f"\n## drag ({snapshot.codes.label}, radius of influence {DragConfig().radius}, voxel {voxel:.4f} at 64³)")
    table = []
    for name, source, offset in drag_cases(snapshot)[: 2 if quick else None]:
        target = source + np.asarray(offset)
        handle = [Handle(tuple(source), tuple(target))]
        rows = {}
        for label, cfg in (("edit", DragConfig()), ("baseline", DragConfig(locality_weight=0.0))):
            cpu = time.process_time()
            result = drag(model, snapshot, handle, config=cfg)
            cpu = time.process_time() - cpu
            mesh = extract_mesh(model.sdf_fn(result.shape_code, snapshot.codes.condition), 64)
            first = next((h for h in result.history if h["handle_max"] < voxel), None)
            reach = (first["seconds"], first["iteration"]) if first else (float("nan"), 0)
            shift = far_surface_shift(snapshot.mesh, mesh, source[None], cfg.radius)
            rows[label] = (
                result,
                reach,
                cpu,
                distance_to_surface(mesh, target[None])[0] / voxel,
                shift["chamfer"] / voxel,
                shift["p95"] / voxel,
            )
        r, (reach, steps), cpu, dist, far, p95 = rows["edit"]
        base_far = rows["baseline"][4]
        p = r.plausibility
        table.append(
            [
                name,
                steps,
                f"{reach:.3f}",
                f"{cpu * steps / max(r.iterations, 1):.3f}",
                r.iterations,
                f"{r.seconds:.3f}",
                f"{cpu:.3f}",
                f"{dist:.2f}",
                f"{far:.2f}",
                f"{p95:.2f}",
                f"{base_far:.2f}",
                f"{far / max(base_far, 1e-9):.2f}",
                f"{p.distance:.1f} ({p.train_max:.1f})",
            ]
        )
    print(
        markdown_table(
            [
                "drag",
                "steps to 1 voxel",
                "to 1 voxel (s)",
                "CPU s to 1 voxel",
                "steps",
                "whole drag (s)",
                "CPU s",
                "target→surface (voxels)",
                "far Chamfer (voxels)",
                "far p95 (voxels)",
                "no-locality far Chamfer",
                "ratio",
                "Mahalanobis (train max)",
            ],
            table,
        )
    )


PAINT_VARIANTS = (
    ("code only", PaintConfig(detail=False)),
    ("code + head 200", PaintConfig(detail_iterations=200)),
    ("code + head (default, 400)", PaintConfig()),
)
"""The colour code alone (before issue 14's fix), the default (colour code, then 200 steps on the colour
head), and twice the colour-head steps."""


def bench_paint(model, snapshot) -> None:
    v = snapshot.mesh.vertices.astype(np.float64)
    top = v[np.argmax(v[:, 1])]
    print(f"\n## paint ({snapshot.codes.label}, brush on the top of the back)")
    table = []
    surface = snapshot.surface.cpu().numpy()
    # Red on the (dark red) back, the seat's blue on it, and a green no chair of the data set has.
    for radius, colour in ((0.3, "#e01010"), (0.3, "#2040c0"), (0.2, "#10c020"), (0.15, "#10c020")):
        brush = Brush(tuple(top), radius, colour)
        for name, config in PAINT_VARIANTS:
            r = paint(model, snapshot, [brush], config)
            painted = model.with_decoder(r.decoder_override)  # the metrics' decoder: the fine-tuned head
            with torch.no_grad():
                rgb = painted.decode(snapshot.surface, r.shape_code, r.colour_code, snapshot.codes.condition)[1]
            de = delta_e(rgb, snapshot.colours)
            d = np.linalg.norm(surface - top, axis=1)
            m, p = r.metrics, r.plausibility
            table.append(
                [
                    f"r={radius} {colour}",
                    name,
                    f"{r.seconds:.2f}",
                    f"{m['delta_e_brush_before']:.1f}",
                    f"{m['delta_e_brush']:.1f}",
                    f"{m['brush_within_10']:.0%}",
                    f"{m['delta_e_rest']:.1f}",
                    f"{m['rest_within_3']:.0%}",
                    f"{np.median(de[d > radius]):.1f}",
                    f"{np.median(de[d > 0.6]):.1f}",
                    f"{p.distance:.1f} ({p.train_max:.1f})",
                ]
            )
    print(
        markdown_table(
            [
                "brush",
                "paint",
                "seconds",
                "ΔE brush before",
                "ΔE brush",
                "within ΔE 10",
                "ΔE rest",
                "rest within ΔE 3",
                "rest median ΔE",
                "far (>0.6) median ΔE",
                "Mahalanobis (train max)",
            ],
            table,
            align="llrrrrrrrrr",
        )
    )


def bench_graft(model, snap_a, code_b: str) -> None:
    snap_b = take_snapshot(model, codes_of(model, code_b))
    region = Region("box", (0.0, 0.5, 0.0), (0.6, 0.4, 0.6))
    r = graft(model, snap_a, snap_b, region)
    m = r.metrics
    print(
        f"\n## graft ({code_b} upper back onto {snap_a.codes.label}; box centre (0, 0.5, 0), "
        "half extents 0.6, 0.4, 0.6)"
    )
    print(
        markdown_table(
            [
                "seconds",
                "error vs B inside",
                "A's code there",
                "ratio",
                "error vs A outside",
                "B's code there",
                "ratio",
                "Mahalanobis (train max)",
            ],
            [
                [
                    f"{r.seconds:.2f}",
                    f"{m['inside_error']:.4f}",
                    f"{m['inside_error_code_a']:.4f}",
                    f"{m['inside_error'] / m['inside_error_code_a']:.2f}",
                    f"{m['outside_error']:.4f}",
                    f"{m['outside_error_code_b']:.4f}",
                    f"{m['outside_error'] / m['outside_error_code_b']:.2f}",
                    f"{r.plausibility.distance:.1f} ({r.plausibility.train_max:.1f})",
                ]
            ],
            align="r" * 8,
        )
    )


def bench_ui_stall(ckpt: Path, code: str) -> None:
    """Longest UI-thread gap while the Edit panel drags a handle live (preview meshes streaming)."""
    stats = measure_drag_stall(ckpt, code)
    print("\n## UI stall during a live drag (viewer, Edit panel)")
    print(
        markdown_table(
            [
                "moves",
                "previews shown",
                "longest UI gap (ms)",
                "99th percentile gap (ms)",
                "idle window's longest gap (ms)",
            ],
            [
                [
                    stats["moves"],
                    stats["previews"],
                    f"{stats['max_gap_ms']:.1f}",
                    f"{stats['p99_gap_ms']:.1f}",
                    f"{stats['idle_max_gap_ms']:.1f}",
                ]
            ],
            align="r" * 5,
        )
    )


def measure_drag_stall(ckpt: Path, code: str, moves: int = 20, move_ms: int = 40) -> dict:
    """Drag a handle through the Edit panel of a real window; a 5 ms UI timer records its gaps."""
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer

    from viewer.app import application
    from viewer.main_window import MainWindow

    app = application()
    win = MainWindow(settings=QSettings("/tmp/bench_edit_viewer.ini", QSettings.IniFormat))
    win.remember_recent = False
    win.resize(1100, 750)
    win.show()
    win.load_checkpoint(ckpt)
    while win.state.model is None:
        app.processEvents()
    model = win.state.model
    win.state.select(win.state.training_code(model.shape_ids.index(code.split("/")[-1])))
    win.wait_idle(300)
    source = take_snapshot(model, codes_of(model, code)).mesh.vertices
    source = source[np.argmax(source[:, 1])].astype(np.float64)
    clock, gaps, previews = QElapsedTimer(), [], []
    win.mesh_shown.connect(lambda mesh: previews.append(mesh.stats.get("resolution")))

    def tick() -> None:
        gaps.append(clock.restart())

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # baseline: the idle window
        app.processEvents()
        time.sleep(0.001)
    idle = list(gaps)
    gaps.clear()
    previews.clear()
    done = []
    win.edit_panel.edit_finished.connect(done.append)
    win.edit_panel.begin_drag(source)
    for i in range(1, moves + 1):
        win.edit_panel.move_drag(source + np.array([0.0, 0.0, -0.12 * i / moves]))
        end = time.monotonic() + move_ms / 1000
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.001)
    during = list(gaps)
    win.edit_panel.end_drag(source + np.array([0.0, 0.0, -0.12]))
    while not done:
        app.processEvents()
        time.sleep(0.001)
    win.wait_idle(300)
    release = list(gaps[len(during) :])
    timer.stop()
    win.shutdown()
    win.close()
    all_gaps = np.array(during + release, np.float64)
    return {
        "moves": moves,
        "previews": sum(1 for r in previews if r != win.state.display.full_resolution),
        "max_gap_ms": float(all_gaps.max()),
        "p99_gap_ms": float(np.percentile(all_gaps, 99)),
        "idle_max_gap_ms": float(max(idle)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, default=ROOT / "resources" / "demo" / "demo.pt")
    parser.add_argument("--code", default="chair/chair_003")
    parser.add_argument("--graft-from", default="chair/chair_000")
    parser.add_argument("--quick", action="store_true", help="two drags, no paint/graft repeats")
    parser.add_argument("--ui", action="store_true", help="also measure the viewer's UI stall (needs a display)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--parts", default="drag,paint,graft", help="comma list of drag, paint, graft")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_trained_model(args.ckpt, device="cpu")
    codes = codes_of(model, args.code)
    t0 = time.perf_counter()
    snapshot = take_snapshot(model, codes)
    print(
        f"load average {' / '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores; "
        f"model {args.ckpt.name}, CPU, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"snapshot of {codes.label} (64³ mesh + {len(snapshot.probes)} probes): {time.perf_counter() - t0:.2f} s"
    )
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # the first optimiser imports torch._dynamo: not timed
    parts = {p.strip() for p in args.parts.split(",")}
    if "drag" in parts:
        bench_drag(model, snapshot, args.quick)
    if "paint" in parts:
        bench_paint(model, snapshot)
    if "graft" in parts:
        bench_graft(model, snapshot, args.graft_from)
    if args.ui:
        bench_ui_stall(args.ckpt, args.code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
