"""The viewer tests' main window: shown, small resolutions, message boxes recorded, shut down checked.

Shared by the viewer test modules: :func:`require_viewer` is their display guard (called first), and
:func:`open_main_window` is imported by the modules once the guard has passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def require_viewer() -> None:
    """Skip the calling test module, at import, unless pytest-qt, pyvistaqt and a display are there.

    Call it before the module imports anything of Qt or the viewer (those imports need the display).
    """
    import os

    import pytest

    pytest.importorskip("pytestqt")
    pytest.importorskip("pyvistaqt")
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        pytest.skip(
            "the viewer tests need a display: run them under xvfb-run (make test does)", allow_module_level=True
        )


FULL, PREVIEW = 40, 24
"""Resolutions the viewer tests mesh at: small, so a test's meshes cost little on any machine."""


def open_main_window(qtbot, tmp_path: Path, monkeypatch) -> Iterator:
    """Yield a shown MainWindow; afterwards shut it down and fail if a plotter or worker survived."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    from viewer.main_window import MainWindow

    errors: list[tuple[str, str]] = []
    monkeypatch.setattr(
        QMessageBox, "critical", staticmethod(lambda parent, title, text, *a, **k: errors.append((title, text)))
    )
    win = MainWindow(settings=QSettings(str(tmp_path / "viewer.ini"), QSettings.IniFormat))
    win.errors = errors
    win.state.set_display(full_resolution=FULL, preview_resolution=PREVIEW)
    win.tto_panel.metric_resolution = FULL
    win.resize(1100, 750)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.shutdown()
    win.close()
    assert win.plotter._closed, "the plotter was left open"
    assert not win.mesher.isRunning() and not win.slicer.isRunning(), "a worker thread was left running"
    assert win.tto_panel.worker is None or not win.tto_panel.worker.isRunning(), "a fit was left running"
    assert not win.edit_panel.worker.isRunning(), "the shape editor's worker was left running"
    win.deleteLater()
    QApplication.processEvents()
