"""``python main.py view CKPT --screenshot(s)``: the headless renders ``make run`` relies on."""
from __future__ import annotations

import argparse
import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("pyvistaqt")
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    pytest.skip("the viewer tests need a display: run them under xvfb-run (make test does)", allow_module_level=True)

from PIL import Image  # noqa: E402

from viewer import view_command  # noqa: E402


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    view_command.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(autouse=True)
def _private_settings(tmp_path, monkeypatch):
    """The command must not touch the user's recent-files list."""
    from PySide6.QtCore import QSettings

    monkeypatch.setattr("viewer.app.default_settings", lambda: QSettings(str(tmp_path / "v.ini"), QSettings.IniFormat))


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(float)


def test_headless_screenshot_of_a_code(qapp, toy_trained, tmp_path, capsys):
    out = tmp_path / "one.png"
    assert view_command.run(_args(str(toy_trained["ckpt"]), "--screenshot", str(out), "--code", "slab1",
                                  "--resolution", "40", "--size", "320x240")) == 0
    image = _pixels(out)
    assert image.shape == (240, 320, 3)
    assert image.std() > 5  # not blank
    assert str(out) in capsys.readouterr().out


def test_headless_screenshot_of_a_blend_and_a_set(qapp, toy_trained, tmp_path):
    out = tmp_path / "mid.png"
    assert view_command.run(_args(str(toy_trained["ckpt"]), "--screenshot", str(out), "--interp", "ball0", "slab0",
                                  "0.5", "--resolution", "32", "--size", "256x200", "--camera", "front")) == 0
    assert _pixels(out).std() > 5
    shots = tmp_path / "shots"
    assert view_command.run(_args(str(toy_trained["ckpt"]), "--screenshots", str(shots), "--resolution", "32",
                                  "--size", "256x200")) == 0
    names = sorted(p.name for p in shots.iterdir())
    assert {"class_ball.png", "class_slab.png", "slice_z0.png", "window.png"} <= set(names)
    assert any(n.startswith("interpolation_") for n in names)
    ball, slab = _pixels(shots / "class_ball.png"), _pixels(shots / "class_slab.png")
    assert not np.allclose(ball, slab)
    ui = _pixels(shots / "window.png")
    assert ui.shape[1] > 800  # the whole UI, docks included
    # the 3D view (a native OpenGL window that Qt's grab leaves black) shows the shape
    centre = ui[ui.shape[0] // 4: 3 * ui.shape[0] // 4, ui.shape[1] // 3: 2 * ui.shape[1] // 3, :3].astype(int)
    assert (centre.sum(axis=2) > 60).mean() > 0.5 and centre.std() > 5


def test_headless_errors_are_clear(qapp, toy_trained, tmp_path, capsys):
    ckpt = str(toy_trained["ckpt"])
    assert view_command.run(_args(ckpt, "--screenshot", str(tmp_path / "x.png"), "--class", "chair",
                                  "--resolution", "32")) == 2
    assert "unknown class 'chair'" in capsys.readouterr().err
    assert view_command.run(_args(ckpt, "--screenshot", str(tmp_path / "x.png"), "--code", "nope",
                                  "--resolution", "32")) == 2
    assert "unknown shape id 'nope'" in capsys.readouterr().err
    assert view_command.run(_args(str(tmp_path / "missing.pt"), "--screenshot", str(tmp_path / "x.png"))) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert view_command.run(_args(str(bad), "--screenshot", str(tmp_path / "x.png"))) == 2
    assert "bad.pt" in capsys.readouterr().err
    assert view_command.run(_args(ckpt, "--screenshot", str(tmp_path / "x.png"), "--interp", "ball0", "slab0", "2")) == 2
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(SystemExit):
        _args(ckpt, "--size", "big")


def test_main_dispatches_view(toy_trained):
    import main

    parser = main.build_parser()
    args = parser.parse_args(["view", str(toy_trained["ckpt"]), "--resolution", "64"])
    assert args._run is view_command.run and args.resolution == 64


def test_application_has_the_shipped_icon(qapp):
    from viewer.app import APP_ICON, application

    assert APP_ICON.exists(), "resources/icons/deepsdf-explorer.png is missing: run scripts/make_icon.py"
    icon = application().windowIcon()
    assert not icon.isNull() and icon.availableSizes(), "the window icon did not load"


def test_wayland_desktops_run_the_view_through_xwayland(monkeypatch):
    """The 3D view is a native X11 window VTK draws into with GLX (pyvistaqt < 0.13)."""
    from viewer.app import ensure_display

    monkeypatch.setenv("QT_QPA_PLATFORM", "")  # unset for ensure_display; restored after the test
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("DISPLAY", os.environ.get("DISPLAY") or ":0")
    assert ensure_display()
    assert os.environ["QT_QPA_PLATFORM"] == "xcb"
    monkeypatch.setenv("QT_QPA_PLATFORM", "wayland")  # a session that asks Qt for Wayland
    assert ensure_display()
    assert os.environ["QT_QPA_PLATFORM"] == "xcb"
