"""The viewer's Models menu and the headless screenshots of every bundled model (``make run``).

The resources root is a tmp folder named by ``DEEPSDF_RESOURCES``, holding two copies of the
shipped demo checkpoint as ``demo`` and ``real`` (so adding a model to resources/ changes nothing here) and a
folder with a broken card. Tests wait on signals and conditions, never on fixed sleeps.
"""

from __future__ import annotations

import argparse

import pytest

from tests.viewer_window import open_main_window, require_viewer  # no Qt imported

require_viewer()

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.model.bundled_models import CARD_NAME, PROJECT_RESOURCES, RESOURCES_ENV  # noqa: E402
from tests.test_bundled_models import write_model  # noqa: E402

TIMEOUT = 60_000


@pytest.fixture
def resources(tmp_path, monkeypatch):
    """A resources root with the models ``demo`` and ``real`` and a broken card, named by the environment."""
    root = tmp_path / "resources"
    write_model(root, "demo", title="Procedural demo", description="procedural shapes", licence="MIT")
    write_model(root, "real", title="Real objects", description="furniture from Sweet Home 3D", licence="CC-BY 3.0")
    (root / "broken").mkdir()
    (root / "broken" / CARD_NAME).write_text("{not json", encoding="utf-8")
    monkeypatch.setenv(RESOURCES_ENV, str(root))
    return root


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, resources):
    yield from open_main_window(qtbot, tmp_path, monkeypatch)


def _menu_entries(window) -> list[tuple[str, bool, bool]]:
    return [(a.text(), a.isCheckable(), a.isChecked()) for a in window.models_menu.actions()]


def test_models_menu_lists_the_bundled_models_and_switches_between_them(window, qtbot, resources):
    assert window.menuBar().actions()[1].text() == "&Models"
    assert _menu_entries(window) == [("Procedural demo", True, False), ("Real objects", True, False)]
    real = window.model_actions["real"]
    assert "furniture from Sweet Home 3D" in real.toolTip() and "CC-BY 3.0" in real.toolTip()
    assert "<b>Models</b> menu" in window.model_panel.summary.text()  # the start text points to it

    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
        real.trigger()
    assert window.state.model.path == resources / "real" / "model.pt"
    assert _menu_entries(window) == [("Procedural demo", True, False), ("Real objects", True, True)]
    assert window.windowTitle().endswith("Real objects")
    qtbot.waitUntil(window.is_idle, timeout=TIMEOUT)
    assert not window.current_mesh.is_empty
    assert window.recent()[0] == str(resources / "real" / "model.pt")  # as File ▸ Open does

    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
        window.model_actions["demo"].trigger()
    assert window.state.model.path == resources / "demo" / "model.pt"
    assert _menu_entries(window) == [("Procedural demo", True, True), ("Real objects", True, False)]


def test_a_card_s_first_shape_is_the_code_the_model_opens_on(qtbot, tmp_path, monkeypatch):
    """``first_shape`` in a card picks the code shown on opening (and the headless default shot);
    an id the checkpoint lacks falls back to the first class's first code."""
    import torch

    from core.model import load_trained_model

    demo = load_trained_model(PROJECT_RESOURCES / "demo" / "demo.pt")
    showcase = demo.shape_ids[demo.codes_of_class(demo.class_names[-1])[0]]
    root = tmp_path / "resources"
    write_model(root, "demo", first_shape=showcase)
    write_model(root, "real", first_shape="no-such-shape")
    monkeypatch.setenv(RESOURCES_ENV, str(root))
    for window in open_main_window(qtbot, tmp_path, monkeypatch):
        with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
            window.model_actions["demo"].trigger()
        assert window.state.selection.label.endswith(f"/{showcase}")
        panel = window.codes_panel
        assert panel.class_box.currentText() == demo.class_names[-1]  # the codes panel shows where it opened
        assert panel.shapes.currentItem().text() == showcase
        assert torch.equal(window.state.selection.shape_code, demo.shape_codes[demo.shape_ids.index(showcase)])
        with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
            window.model_actions["real"].trigger()
        first = demo.shape_ids[demo.codes_of_class(demo.class_names[0])[0]]
        assert window.state.selection.label.endswith(f"/{first}")
        qtbot.waitUntil(window.is_idle, timeout=TIMEOUT)


def test_a_bundled_model_that_fails_to_load_keeps_the_tick_on_the_model_shown(window, qtbot, resources):
    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
        window.model_actions["demo"].trigger()
    (resources / "real" / "model.pt").write_bytes(b"damaged after the menu was built")
    with qtbot.waitSignal(window.model_failed, timeout=TIMEOUT):
        window.model_actions["real"].trigger()
    assert window.errors and "model.pt" in window.errors[-1][1]
    assert window.state.model.path == resources / "demo" / "model.pt"
    assert _menu_entries(window) == [("Procedural demo", True, True), ("Real objects", True, False)]


def test_an_empty_resources_root_gives_a_disabled_hint(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(RESOURCES_ENV, str(tmp_path / "empty"))
    gen = open_main_window(qtbot, tmp_path, monkeypatch)
    win = next(gen)
    try:
        (action,) = win.models_menu.actions()
        assert not action.isEnabled() and "model.json" in action.text()
    finally:
        next(gen, None)


@pytest.fixture
def private_settings(tmp_path, monkeypatch):
    """The command must not touch the user's recent-files list."""
    from PySide6.QtCore import QSettings

    monkeypatch.setattr("viewer.app.default_settings", lambda: QSettings(str(tmp_path / "v.ini"), QSettings.IniFormat))


def test_headless_screenshots_render_every_bundled_model(qapp, resources, private_settings, tmp_path, capsys):
    from viewer import view_command

    parser = argparse.ArgumentParser()
    view_command.add_arguments(parser)
    shots = tmp_path / "shots"
    args = parser.parse_args(["--screenshots", str(shots), "--resolution", "24", "--size", "256x200"])
    assert view_command.run(args) == 0

    demo_classes = {f"class_{c}.png" for c in ("airplane", "chair", "lamp", "mug", "shelf", "table", "vase")}
    top = {p.name for p in shots.iterdir() if p.is_file()}
    assert demo_classes | {"slice_z0.png", "window.png"} <= top  # the default model keeps today's names
    assert {p.name for p in shots.iterdir() if p.is_dir()} == {"real"}
    assert {p.name for p in (shots / "real").iterdir()} == top
    chair = np.asarray(Image.open(shots / "real" / "class_chair.png").convert("RGB"), float)
    assert chair.shape == (200, 256, 3) and chair.std() > 5  # a shape was drawn, not a blank view
    printed = capsys.readouterr().out
    assert str(shots / "real" / "window.png") in printed and str(shots / "window.png") in printed
