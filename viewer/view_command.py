"""``python main.py view [CKPT]``: open the viewer; with --screenshot(s), render headless and exit."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.pt"

__all__ = ["add_arguments", "run", "DEMO_CHECKPOINT"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ckpt", nargs="?", type=Path, default=None,
                        help="checkpoint to open (default: the bundled demo model, else the last one used)")
    parser.add_argument("--screenshot", type=Path, default=None, help="render one image to this PNG and exit")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="render a set (one per class, an interpolation, a slice) into this folder and exit")
    parser.add_argument("--class", dest="class_name", default=None, help="class of the code to show")
    parser.add_argument("--code", default=None, help="shape id of a training code to show")
    parser.add_argument("--interp", nargs=3, metavar=("A", "B", "T"), default=None,
                        help="show the blend of shape ids A and B at T in [0, 1]")
    parser.add_argument("--resolution", type=int, default=128, help="grid resolution of the rendered mesh")
    parser.add_argument("--size", default="1000x800", help="window size WxH for screenshots")


def _resolve_checkpoint(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg
    if DEMO_CHECKPOINT.exists():
        return DEMO_CHECKPOINT
    return None


def run(args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and "QT_QPA_PLATFORM" not in os.environ:
        print("error: no display. Run under Xvfb: `bash scripts/with_display.sh python main.py view ...` "
              "(make run does this).", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DeepSDF Explorer")
    from viewer.main_window import MainWindow

    window = MainWindow()
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size {args.size!r}: expected WxH, e.g. 1000x800", file=sys.stderr)
        return 2
    headless = args.screenshot is not None or args.screenshots is not None
    window.state.set_display(full_resolution=args.resolution)
    ckpt = _resolve_checkpoint(args.ckpt)
    if ckpt is None and not headless and window.recent():
        ckpt = Path(window.recent()[0])
    if not headless:
        window.show()
        if ckpt is not None:
            window.load_checkpoint(ckpt)
        return app.exec()

    from viewer.headless import render_screenshots

    window.resize(width, height)
    window.show()
    if ckpt is None:
        print("error: no checkpoint: pass one, or build the demo model (see README)", file=sys.stderr)
        window.shutdown()
        return 2
    try:
        written = render_screenshots(window, ckpt, args)
    finally:
        window.shutdown()
        window.close()
    for path in written:
        print(path)
    return 0 if written else 1
