"""Application start-up: a display (a private Xvfb when there is none), the QApplication, the window.

Kept apart from :mod:`viewer.view_command` (argument parsing) and :mod:`viewer.headless`
(scripted screenshots) so tests can build windows the same way the command does.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import cast

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

__all__ = ["ensure_display", "application", "default_settings", "DEMO_CHECKPOINT", "resolve_checkpoint"]

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.pt"
"""The procedural demo itself (benchmarks time it); what opens by default is :func:`default_bundled_model`."""
APP_ICON = Path(__file__).resolve().parents[1] / "resources" / "icons" / "deepsdf-explorer.png"
XVFB_SCREEN = "1600x1000x24"


def ensure_display() -> bool:
    """Make sure Qt has a display; start a private Xvfb when there is none and one is installed.

    Returns False when there is no display and none can be started. The Xvfb started here
    ends with the process. ``-displayfd`` lets the server pick a free display number,
    so parallel runs do not collide.
    """
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    wayland = platform.startswith("wayland") or (not platform and os.environ.get("WAYLAND_DISPLAY"))
    if wayland:
        # The 3D view is a native X11 window that VTK draws into with GLX (pyvistaqt < 0.13):
        # on a Wayland desktop it runs through XWayland, as ParaView and Mayavi do.
        if not os.environ.get("DISPLAY"):
            print(
                "warning: the 3D view needs X11; this Wayland session has no XWayland (DISPLAY is "
                "unset), so it may stay black. Enable XWayland, or run under xvfb-run.",
                file=sys.stderr,
            )
            return True
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        return True
    if platform or os.environ.get("DISPLAY"):
        return True
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        return False
    read_fd, write_fd = os.pipe()
    # -terminate: the server exits by itself once the last client (Qt, VTK) has disconnected,
    # which happens after Python's own clean-up; killing it earlier would make Xlib abort.
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", XVFB_SCREEN, "-nolisten", "tcp", "-terminate"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.terminate()
        return False
    os.environ["DISPLAY"] = f":{number}"

    def stop() -> None:
        if QApplication.instance() is not None:
            return  # connected: -terminate ends the server when the process has disconnected
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()

    atexit.register(stop)
    return True


@functools.cache
def _ready_process() -> None:
    """Once per process: see :func:`application`."""
    import viewer.main_window  # noqa: F401 - every module the window needs, before the freeze
    from viewer.gui_gc import freeze_startup_objects
    from viewer.workers import load_optimizer_machinery

    load_optimizer_machinery()
    freeze_startup_objects()


def application() -> QApplication:
    """The process's QApplication (created once), with the process readied for interaction.

    Readying: torch's optimiser machinery is imported now rather than on the first live fit's
    thread (:func:`viewer.workers.load_optimizer_machinery`), and what start-up loaded is frozen
    out of garbage collection (:func:`viewer.gui_gc.freeze_startup_objects`), so neither
    stalls the window later.
    """
    _ready_process()
    # instance() is typed as the QCoreApplication base; the viewer's process only ever makes a QApplication.
    app = cast(QApplication, QApplication.instance() or QApplication(sys.argv[:1]))
    app.setApplicationName("DeepSDF Explorer")
    app.setOrganizationName("deepsdf-explorer")
    if APP_ICON.exists():  # rendered from the demo model by scripts/make_icon.py
        app.setWindowIcon(QIcon(str(APP_ICON)))
    return app


def default_settings() -> QSettings:
    """Where recent files live (``~/.config/deepsdf-explorer/viewer.conf`` on Linux)."""
    return QSettings("deepsdf-explorer", "viewer")


def resolve_checkpoint(arg: str | Path | None, settings: QSettings | None = None) -> Path | None:
    """The checkpoint to open: the argument, else the default bundled model (the demo), else the last one used,
    else None."""
    from core.model.bundled_models import default_bundled_model

    if arg is not None:
        return Path(arg)
    bundled = default_bundled_model()
    if bundled is not None:
        return bundled.checkpoint
    if settings is not None:
        from viewer.main_window import RECENT_KEY

        value = settings.value(RECENT_KEY, [])
        recent = [str(v) for v in (value if isinstance(value, list) else [value]) if v]
        for path in recent:
            if Path(path).exists():
                return Path(path)
    return None
