"""``python main.py view [CKPT]``: open the viewer; with --screenshot(s), render headless and exit.

    python main.py view                               the demo model (else the last one used)
    python main.py view run/checkpoints/latest.pt
    python main.py view ~/DeepSDF/examples/chairs      an experiment directory of the original DeepSDF code
    python main.py view CKPT --screenshot out.png --class chair --resolution 128 --size 1000x800
    python main.py view CKPT --screenshot out.png --interp chair_003 lamp_010 0.5
    python main.py view CKPT --screenshots shots/      one per class, an interpolation, a slice, the UI
    python main.py view --screenshots shots/           the same for every bundled model: the default (demo)
                                                      into shots/, each further one into shots/<key>/
    python main.py view out/chair/mesh.ply resources/scans/chair_thin.glb --screenshot cmp.png
                                                      meshes side by side (a reconstruction and its ground truth)

Without a display a private Xvfb is started (when installed), so the headless forms work on
servers; ``make run`` uses them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.commands.cli_types import resolution
from core.data.mesh_io import MESH_SUFFIXES, has_mesh_suffix
from viewer.scene import CAMERA_PRESETS

if TYPE_CHECKING:
    from core.model.bundled_models import BundledModel

__all__ = ["add_arguments", "run"]


def _split_inputs(inputs: list[Path]) -> tuple[Path | None, list[Path]]:
    """(checkpoint or None, mesh files); ValueError for a mix or several checkpoints.

    Inputs with a mesh suffix (:data:`core.data.mesh_io.MESH_SUFFIXES`) are drawn as meshes; anything else is
    taken for a checkpoint.
    """
    meshes = [p for p in inputs if has_mesh_suffix(p)]
    others = [p for p in inputs if not has_mesh_suffix(p)]
    if meshes and others:
        raise ValueError(f"give either one checkpoint or mesh files, not both ({others[0]} and {meshes[0]})")
    if len(others) > 1:
        raise ValueError(f"one checkpoint at a time; got {len(others)}: {', '.join(map(str, others))}")
    return (others[0] if others else None), meshes


def _check_outputs(args: argparse.Namespace, meshes: list[Path]) -> None:
    """Refuse bad requests and unwritable outputs before a display, a window or a model starts."""
    from viewer.image_files import check_image_path, check_output_folder

    if meshes:
        if args.screenshot is None or args.screenshots is not None:
            raise ValueError(
                "mesh files are rendered headless: give --screenshot OUT.png (not --screenshots); "
                "to explore a model in the window, open its checkpoint instead"
            )
        used = [
            flag
            for flag, value in (("--class", args.class_name), ("--code", args.code), ("--interp", args.interp))
            if value is not None
        ]
        if used:
            raise ValueError(f"{', '.join(used)} picks a checkpoint's codes; mesh files have none")
        missing = [p for p in meshes if not p.is_file()]
        if missing:
            raise ValueError(f"{missing[0]}: no such mesh file. Check the path.")
    if args.screenshot is not None:
        check_image_path(args.screenshot, "--screenshot")
    if args.screenshots is not None:
        check_output_folder(args.screenshots, "--screenshots")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1000x800") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"--size {text!r}: width and height must be between 64 and 8192")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.utils.config_io import arg_default
    from viewer.state import DisplayOptions

    parser.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        default=[],
        metavar="CKPT | MESH",
        help="checkpoint or DeepSDF experiment directory to open (default: the bundled demo, "
        "resources/demo/, else the last one used), or "
        f"mesh files ({', '.join(MESH_SUFFIXES)}) to render side by side with --screenshot",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="OUT.png",
        help="render one image of the 3D view to this file (PNG, JPEG, ... by its suffix) and exit (no window needed)",
    )
    parser.add_argument(
        "--screenshots",
        type=Path,
        default=None,
        metavar="DIR",
        help="render a set into DIR and exit: one per class, an interpolation, an SDF slice, the UI; "
        "without CKPT for every bundled model (the default one into DIR, others into DIR/KEY/)",
    )
    parser.add_argument("--class", dest="class_name", default=None, help="class whose first code is shown")
    parser.add_argument("--code", default=None, metavar="SHAPE_ID", help="shape id of the training code to show")
    parser.add_argument(
        "--interp",
        nargs=3,
        metavar=("A", "B", "T"),
        default=None,
        help="show the blend of shape ids A and B at T in [0, 1]",
    )
    parser.add_argument(
        "--resolution",
        type=resolution,
        **arg_default(DisplayOptions, "full_resolution", "grid resolution of the mesh, 16 … 2048"),
    )
    parser.add_argument(
        "--preview-resolution",
        type=resolution,
        **arg_default(DisplayOptions, "preview_resolution", "grid resolution while dragging"),
    )
    parser.add_argument("--size", type=_size, default=(1000, 800), help="image size WxH for --screenshot(s)")
    parser.add_argument("--camera", choices=list(CAMERA_PRESETS), default="iso", help="camera preset for screenshots")
    parser.add_argument(
        "--device", default="auto", help="where the model runs: auto (CUDA when present, else CPU), cpu or cuda[:N]"
    )


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
    from core.utils.devices import resolve_device
    from core.utils.errors import ExplorerError
    from viewer.app import application, default_settings, ensure_display, resolve_checkpoint

    headless = args.screenshot is not None or args.screenshots is not None
    try:
        ckpt_arg, meshes = _split_inputs(list(args.inputs))
        _check_outputs(args, meshes)
        interp = _interp(args.interp)
        device = resolve_device(args.device, what="--device")  # before a display or a window starts
    except (ValueError, ExplorerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not ensure_display():
        print(
            "error: no display and no Xvfb to start one. Install xvfb (scripts/setup.sh does), or run "
            "`bash scripts/with_display.sh python main.py view ...`.",
            file=sys.stderr,
        )
        return 2
    if meshes:
        return _render_meshes(args, meshes)
    settings = default_settings()
    bundled = _bundled_set(args) if ckpt_arg is None else []
    ckpt = bundled[0].checkpoint if bundled else resolve_checkpoint(ckpt_arg, None if headless else settings)
    if headless and ckpt is None:
        print(
            "error: no checkpoint given and no bundled model (a resources/<key>/ folder with a model.json card); "
            "pass one: python main.py view CKPT --screenshot out.png",
            file=sys.stderr,
        )
        return 2
    if ckpt is not None and not ckpt.exists():
        print(
            f"error: {ckpt}: no such checkpoint. Check the path (training writes <run>/checkpoints/latest.pt).",
            file=sys.stderr,
        )
        return 2

    app = application()
    if not headless:
        window = _window(args, settings, device)
        window.show()
        if ckpt is not None:
            window.load_checkpoint(ckpt)
        return app.exec()

    from viewer.headless import ShotRequest

    assert ckpt is not None  # headless without a checkpoint returned above
    request = ShotRequest(
        screenshot=args.screenshot,
        screenshots=args.screenshots,
        class_name=args.class_name,
        code=args.code,
        interp=interp,
        size=args.size,
        camera=args.camera,
    )
    # The default model's set keeps the plain names in DIR (as before bundled models); each further
    # bundled model's set goes into DIR/<key>/. A model that fails is reported and the others go on.
    jobs = [(ckpt, request)] + [
        (m.checkpoint, replace(request, screenshot=None, screenshots=args.screenshots / m.key)) for m in bundled[1:]
    ]
    return max(_render_headless(args, settings, device, job_ckpt, job_request) for job_ckpt, job_request in jobs)


def _bundled_set(args: argparse.Namespace) -> list[BundledModel]:
    """The bundled models ``--screenshots`` renders when no checkpoint is given (default first), else []."""
    if args.screenshots is None:
        return []
    from core.model.bundled_models import bundled_models

    return bundled_models()


def _window(args: argparse.Namespace, settings, device):
    from viewer.main_window import MainWindow

    window = MainWindow(settings=settings)
    window.model_device = str(device)
    window.state.set_display(full_resolution=args.resolution, preview_resolution=args.preview_resolution)
    return window


def _render_headless(args: argparse.Namespace, settings, device, ckpt: Path, request) -> int:
    """One model's screenshots in a window of its own; 0 written, 1 nothing written, 2 an error (printed)."""
    from core.utils.errors import ExplorerError
    from viewer.headless import HeadlessError, render_screenshots

    window = _window(args, settings, device)
    window.remember_recent = False
    window.resize(*args.size)
    window.show()
    try:
        written = render_screenshots(window, ckpt, request)
    except (HeadlessError, ExplorerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()
    for path in written:
        print(path)
    return 0 if written else 1


def _render_meshes(args: argparse.Namespace, meshes: list[Path]) -> int:
    from core.utils.errors import ExplorerError
    from viewer.headless import render_meshes

    try:
        out = render_meshes(meshes, args.screenshot, size=args.size, camera=args.camera)
    except (ExplorerError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0
