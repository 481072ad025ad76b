"""``python main.py view CKPT --screenshot(s)``: the headless renders ``make run`` relies on."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest

from tests.viewer_window import require_viewer  # no Qt imported

require_viewer()

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
    assert (
        view_command.run(
            _args(
                str(toy_trained["ckpt"]),
                "--screenshot",
                str(out),
                "--code",
                "slab1",
                "--resolution",
                "40",
                "--size",
                "320x240",
            )
        )
        == 0
    )
    image = _pixels(out)
    assert image.shape == (240, 320, 3)
    assert image.std() > 5  # not blank
    assert str(out) in capsys.readouterr().out


def test_headless_screenshot_of_a_blend_and_a_set(qapp, toy_trained, tmp_path):
    out = tmp_path / "mid.png"
    assert (
        view_command.run(
            _args(
                str(toy_trained["ckpt"]),
                "--screenshot",
                str(out),
                "--interp",
                "ball0",
                "slab0",
                "0.5",
                "--resolution",
                "32",
                "--size",
                "256x200",
                "--camera",
                "front",
            )
        )
        == 0
    )
    assert _pixels(out).std() > 5
    shots = tmp_path / "shots"
    assert (
        view_command.run(
            _args(str(toy_trained["ckpt"]), "--screenshots", str(shots), "--resolution", "32", "--size", "256x200")
        )
        == 0
    )
    names = sorted(p.name for p in shots.iterdir())
    assert {"class_ball.png", "class_slab.png", "slice_z0.png", "window.png"} <= set(names)
    assert any(n.startswith("interpolation_") for n in names)
    ball, slab = _pixels(shots / "class_ball.png"), _pixels(shots / "class_slab.png")
    assert not np.allclose(ball, slab)
    ui = _pixels(shots / "window.png")
    assert ui.shape[1] > 800  # the whole UI, docks included
    # the 3D view (a native OpenGL window that Qt's grab leaves black) shows the shape
    centre = ui[ui.shape[0] // 4 : 3 * ui.shape[0] // 4, ui.shape[1] // 3 : 2 * ui.shape[1] // 3, :3].astype(int)
    assert (centre.sum(axis=2) > 60).mean() > 0.5 and centre.std() > 5


def test_headless_errors_are_clear(qapp, toy_trained, tmp_path, capsys):
    ckpt = str(toy_trained["ckpt"])
    assert (
        view_command.run(_args(ckpt, "--screenshot", str(tmp_path / "x.png"), "--class", "chair", "--resolution", "32"))
        == 2
    )
    assert "unknown class 'chair'" in capsys.readouterr().err
    assert (
        view_command.run(_args(ckpt, "--screenshot", str(tmp_path / "x.png"), "--code", "nope", "--resolution", "32"))
        == 2
    )
    assert "unknown shape id 'nope'" in capsys.readouterr().err
    assert view_command.run(_args(str(tmp_path / "missing.pt"), "--screenshot", str(tmp_path / "x.png"))) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert view_command.run(_args(str(bad), "--screenshot", str(tmp_path / "x.png"))) == 2
    assert "bad.pt" in capsys.readouterr().err
    bad_interp = _args(ckpt, "--screenshot", str(tmp_path / "x.png"), "--interp", "ball0", "slab0", "2")
    assert view_command.run(bad_interp) == 2
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


# --------------------------------------------------------------------------- issue 15: paths, formats, meshes


def test_screenshot_paths_are_refused_before_any_work(qapp, toy_trained, tmp_path, capsys):
    ckpt = str(toy_trained["ckpt"])
    folder = tmp_path / "shots"
    folder.mkdir()
    assert view_command.run(_args(ckpt, "--screenshot", str(folder))) == 2
    assert f"--screenshot {folder}: is a folder" in capsys.readouterr().err
    assert not (tmp_path / "shots.part").exists() and list(folder.iterdir()) == []
    assert view_command.run(_args(ckpt, "--screenshot", str(tmp_path / "x.gif"))) == 2
    assert "unknown image type '.gif'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert view_command.run(_args(ckpt, "--screenshot", str(blocker / "x.png"))) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err
    assert view_command.run(_args(ckpt, "--screenshots", str(blocker))) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert view_command.run(_args(ckpt, "--screenshot", str(locked / "x.png"))) == 2
        assert "is not writable" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "v.ini") == sorted(
        ["shots", "file"] + (["locked"] if os.geteuid() != 0 else [])
    )


def test_jpg_screenshot_is_jpeg(qapp, toy_trained, tmp_path):
    out = tmp_path / "one.jpg"
    assert (
        view_command.run(
            _args(
                str(toy_trained["ckpt"]),
                "--screenshot",
                str(out),
                "--code",
                "ball0",
                "--resolution",
                "32",
                "--size",
                "200x160",
            )
        )
        == 0
    )
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes under a .jpg name
    assert Image.open(out).format == "JPEG" and _pixels(out).std() > 5


def _coloured_meshes(tmp_path):
    import trimesh

    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.6)
    ball.visual.vertex_colors = np.tile([220, 40, 40, 255], (len(ball.vertices), 1)).astype(np.uint8)
    ball.export(tmp_path / "fit.ply")
    box = trimesh.creation.box(extents=(2.0, 0.3, 1.0))
    box.visual.vertex_colors = np.tile([40, 60, 220, 255], (len(box.vertices), 1)).astype(np.uint8)
    box.export(tmp_path / "truth.obj")
    return tmp_path / "fit.ply", tmp_path / "truth.obj"


def test_view_meshes_side_by_side_headless(qapp, tmp_path, capsys):
    fit, truth = _coloured_meshes(tmp_path)
    out = tmp_path / "compare.png"
    assert view_command.run(_args(str(fit), str(truth), "--screenshot", str(out), "--size", "240x200")) == 0
    assert str(out) in capsys.readouterr().out
    image = _pixels(out)
    assert image.shape == (200, 480, 3)
    left, right = image[:, :240], image[:, 240:]
    # each panel shows its own mesh in its own colours: red ball on the left, blue box on the right
    assert ((left[..., 0] > 120) & (left[..., 2] < 100)).mean() > 0.05
    assert ((right[..., 2] > 120) & (right[..., 0] < 100)).mean() > 0.02
    assert ((left[..., 2] > 120) & (left[..., 0] < 100)).mean() == 0.0


def test_view_meshes_errors_are_clear(qapp, tmp_path, capsys):
    fit, _ = _coloured_meshes(tmp_path)
    broken = tmp_path / "broken.ply"
    broken.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    out = tmp_path / "x.png"
    assert view_command.run(_args(str(fit), str(broken), "--screenshot", str(out))) == 2
    assert "broken.ply" in capsys.readouterr().err and not out.exists()
    assert view_command.run(_args(str(fit))) == 2
    assert "give --screenshot" in capsys.readouterr().err
    assert view_command.run(_args(str(fit), "--screenshot", str(out), "--class", "ball")) == 2
    assert "--class picks a checkpoint's codes" in capsys.readouterr().err
    assert view_command.run(_args(str(fit), str(tmp_path / "demo.pt"), "--screenshot", str(out))) == 2
    assert "not both" in capsys.readouterr().err


def test_preview_resolution_default_is_the_display_options_one():
    from viewer.state import DisplayOptions

    args = _args()
    assert args.preview_resolution == DisplayOptions().preview_resolution == 32
    assert args.resolution == DisplayOptions().full_resolution


def test_window_codes_keep_a_finetuned_decoder(qapp, qtbot, toy_trained, tmp_path):
    """File ▸ Load codes of a fine-tuned fit shows it with its decoder, and Export writes the decoder too."""
    import torch
    from PySide6.QtCore import QSettings

    from core.model.codes_file import SavedCodes, read_codes, write_codes
    from viewer.main_window import MainWindow

    model = toy_trained["model"]
    tuned = {k: v * 1.05 for k, v in model.decoder.state_dict().items()}
    write_codes(
        tmp_path / "fit.json",
        SavedCodes(model.shape_codes[2].clone(), model.colour_codes[2].clone(), "slab", decoder_state=tuned),
    )
    window = MainWindow(settings=QSettings(str(tmp_path / "w.ini"), QSettings.IniFormat))
    errors = []
    window.show_error = lambda title, message: errors.append(message)
    window.show()
    try:
        with qtbot.waitSignal(window.model_loaded, timeout=120_000):
            window.load_checkpoint(toy_trained["ckpt"])
        assert window.load_codes_from(tmp_path / "fit.json"), errors
        selection = window.state.selection
        assert selection.decoder_override is not None and selection.class_name == "slab"
        assert all(torch.equal(selection.decoder_override[k], tuned[k]) for k in tuned)
        assert window.export_codes_to(tmp_path / "again.json") == tmp_path / "again.json"
        back = read_codes(tmp_path / "again.json", model)
        assert back.decoder_state is not None and torch.equal(back.shape_code, model.shape_codes[2])
        (tmp_path / "v9.json").write_text((tmp_path / "again.json").read_text().replace('"version": 2', '"version": 9'))
        assert not window.load_codes_from(tmp_path / "v9.json") and "version 9" in errors[-1]
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()
        qapp.processEvents()


def test_screenshots_name_files_safely_whatever_the_class_and_shape_names(qapp, tmp_path):
    """Issue 28 (further): class names and shape ids come from data (a DeepSDF split's keys) and name files."""
    from tests.deepsdf_experiment import write_experiment

    split = {"ShapeNetV2": {"../../evil": ["../../../a", "b"], "03001627": ["c/../d"]}}
    exp, _ = write_experiment(tmp_path / "exp", weights="octahedra", split=split)
    shots = tmp_path / "deep" / "shots"
    assert view_command.run(_args(str(exp), "--screenshots", str(shots), "--resolution", "16", "--size", "128x96")) == 0
    names = sorted(p.name for p in shots.iterdir())
    assert "class_evil.png" in names and "class_chair.png" in names
    assert all(p.parent == shots for p in shots.rglob("*"))
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["shots"]
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "evil.png").exists()
