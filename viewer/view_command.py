"""``python main.py view [CKPT]``: open the viewer; with --screenshot(s), render headless and exit.

    python main.py view                               the demo model (else the last one used)
    python main.py view run/checkpoints/latest.pt
    python main.py view CKPT --screenshot out.png --class chair --resolution 128 --size 1000x800
    python main.py view CKPT --screenshot out.png --interp chair_003 lamp_010 0.5
    python main.py view CKPT --screenshots shots/      one per class, an interpolation, a slice, the UI

Without a display a private Xvfb is started (when installed), so the headless forms work on
servers; ``make run`` uses them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from viewer.scene import CAMERA_PRESETS

__all__ = ["add_arguments", "run"]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1000x800") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"--size {text!r}: width and height must be between 64 and 8192")
    return w, h


def _resolution(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--resolution {text!r}: expected an integer such as 128") from None
    if not 16 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"--resolution {value}: use 16 … 1024 (128 is DeepSDF's default for viewing)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ckpt", nargs="?", type=Path, default=None,
                        help="checkpoint to open (default: resources/demo/demo.pt, else the last one used)")
    parser.add_argument("--screenshot", type=Path, default=None, metavar="OUT.png",
                        help="render one image of the 3D view to this PNG and exit (no window needed)")
    parser.add_argument("--screenshots", type=Path, default=None, metavar="DIR",
                        help="render a set into DIR and exit: one per class, an interpolation, an SDF slice, the UI")
    parser.add_argument("--class", dest="class_name", default=None, help="class whose first code is shown")
    parser.add_argument("--code", default=None, metavar="SHAPE_ID", help="shape id of the training code to show")
    parser.add_argument("--interp", nargs=3, metavar=("A", "B", "T"), default=None,
                        help="show the blend of shape ids A and B at T in [0, 1]")
    parser.add_argument("--resolution", type=_resolution, default=128, help="grid resolution of the mesh (default 128)")
    parser.add_argument("--preview-resolution", type=_resolution, default=48,
                        help="grid resolution while dragging in the window (default 48)")
    parser.add_argument("--size", type=_size, default=(1000, 800), help="image size WxH for --screenshot(s)")
    parser.add_argument("--camera", choices=list(CAMERA_PRESETS), default="iso", help="camera preset for screenshots")


def _interp(values: list[str] | None) -> tuple[str, str, float] | None:
    if values is None:
        return None
    a, b, t = values
    try:
        t_value = float(t)
    except ValueError:
        raise ValueError(f"--interp {a} {b} {t}: T must be a number in [0, 1]") from None
    if not 0.0 <= t_value <= 1.0:
        raise ValueError(f"--interp {a} {b} {t}: T must be in [0, 1]")
    return a, b, t_value


def run(args: argparse.Namespace) -> int:
    from viewer.app import application, default_settings, ensure_display, resolve_checkpoint

    headless = args.screenshot is not None or args.screenshots is not None
    try:
        interp = _interp(args.interp)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not ensure_display():
        print("error: no display and no Xvfb to start one. Install xvfb (scripts/setup.sh does), or run "
              "`bash scripts/with_display.sh python main.py view ...`.", file=sys.stderr)
        return 2
    settings = default_settings()
    ckpt = resolve_checkpoint(args.ckpt, None if headless else settings)
    if headless and ckpt is None:
        print("error: no checkpoint given and no demo model at resources/demo/demo.pt; "
              "pass one: python main.py view CKPT --screenshot out.png", file=sys.stderr)
        return 2
    if ckpt is not None and not ckpt.exists():
        print(f"error: {ckpt}: no such checkpoint. Check the path (training writes <run>/checkpoints/latest.pt).",
              file=sys.stderr)
        return 2

    app = application()
    from viewer.main_window import MainWindow

    window = MainWindow(settings=settings)
    window.state.set_display(full_resolution=args.resolution, preview_resolution=args.preview_resolution)
    if not headless:
        window.show()
        if ckpt is not None:
            window.load_checkpoint(ckpt)
        return app.exec()

    from viewer.headless import HeadlessError, ShotRequest, render_screenshots

    request = ShotRequest(screenshot=args.screenshot, screenshots=args.screenshots, class_name=args.class_name,
                          code=args.code, interp=interp, size=args.size, camera=args.camera)
    window.remember_recent = False
    window.resize(*args.size)
    window.show()
    try:
        written = render_screenshots(window, ckpt, request)
    except HeadlessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()
    for path in written:
        print(path)
    return 0 if written else 1
