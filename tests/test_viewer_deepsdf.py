"""The viewer on an experiment directory of the original DeepSDF code (a real window under Xvfb).

The experiment (``tests/deepsdf_experiment.py``) holds the original decoder with weights whose
SDF is an octahedron sized by code[0]: chairs large, tables small, so the shapes on screen can
be checked. Everything that needs no colour head is exercised: codes, class mean, interpolation,
latent map, slice, export, live TTO; and the ways in: the loader, File ▸ Open DeepSDF experiment,
dropping the folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.viewer_window import open_main_window, require_viewer  # no Qt imported

require_viewer()

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from tests.deepsdf_experiment import sdf_samples_npz, write_experiment  # noqa: E402

TIMEOUT = 60_000


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A shown main window with small resolutions; message boxes are recorded, not shown."""
    yield from open_main_window(qtbot, tmp_path, monkeypatch)


@pytest.fixture
def experiment(tmp_path):
    exp, _ = write_experiment(tmp_path / "exp", weights="octahedra")
    return exp


@pytest.fixture
def loaded(window, qtbot, experiment):
    with qtbot.waitSignal(window.mesh_shown, timeout=TIMEOUT):
        window.load_checkpoint(experiment)
    qtbot.waitUntil(window.is_idle, timeout=TIMEOUT)
    return window


TIP_LOSS = 0.15
"""Marching cubes at FULL = 40 cuts the octahedron's sharp tips by about a grid cell (0.05) on each side."""


def _extent(window) -> float:
    return float(np.ptp(window.current_mesh.vertices[:, 0]))


def test_experiment_directory_explored_without_colour(loaded, qtbot, experiment, tmp_path):
    model = loaded.state.model
    assert model.class_names == ["chair", "table", "12345678"] and not model.has_colour
    summary = loaded.model_panel.summary.text()
    assert "deepsdf" in summary and "none" in summary and "6 in 3 classes" in summary
    assert "mixed" in loaded.windowTitle() and loaded.recent()[0] == str(experiment)
    mesh = loaded.current_mesh
    assert not mesh.is_empty and mesh.colours is None
    chair = _extent(loaded)
    assert abs(chair - 2 * 0.7) < TIP_LOSS  # the first chair: an octahedron of radius 0.5 + 0.2 * 1
    # DeepSDF's own reconstruct settings in the fit panel
    panel = loaded.tto_panel
    assert (panel.iterations.value(), panel.samples.value(), panel.lr.value()) == (800, 8000, 0.005)
    assert not any(box.isChecked() for box in panel.switches.values())  # reconstruct.py: plain DeepSDF losses
    # class mean: the tables are smaller
    loaded.codes_panel.class_box.setCurrentText("table")
    loaded.codes_panel.pick_mean()
    assert loaded.state.selection.label == "table mean"
    qtbot.waitUntil(loaded.is_idle, timeout=TIMEOUT)
    assert torch.allclose(loaded.state.selection.shape_code, model.shape_codes[3:5].mean(dim=0).cpu())
    table = _extent(loaded)
    assert abs(table - 2 * (0.5 + 0.2 * float(model.shape_codes[3:5, 0].mean()))) < TIP_LOSS and table < chair - 0.3
    # interpolation between a chair and a table
    interp = loaded.interp_panel
    interp.shape_slider.setValue(50)
    interp.shape_slider.sliderReleased.emit()
    qtbot.waitUntil(loaded.is_idle, timeout=TIMEOUT)
    a = model.shape_codes[interp.a_box.currentData()]
    b = model.shape_codes[interp.b_box.currentData()]
    assert torch.allclose(loaded.state.selection.shape_code, ((a + b) / 2).cpu(), atol=1e-6)
    assert not loaded.current_mesh.is_empty
    # latent map of all six codes
    assert len(loaded.map_panel.map.points) == 6
    # slice plane through the shape
    with qtbot.waitSignal(loaded.slicer.finished_job, timeout=TIMEOUT):
        loaded.display_panel.slice.setChecked(True)
    qtbot.waitUntil(lambda: loaded.scene.slice_visible, timeout=TIMEOUT)
    assert loaded.scene.slice_zero.n_points > 0
    loaded.display_panel.slice.setChecked(False)
    # export mesh and codes
    qtbot.waitUntil(loaded.is_idle, timeout=TIMEOUT)
    path = loaded.export_mesh_to(tmp_path / "shape.ply")
    assert path is not None and path.stat().st_size > 1000
    loaded.export_codes_to(tmp_path / "codes.json")
    assert len(json.loads((tmp_path / "codes.json").read_text())["shape_code"]) == 8


def test_live_tto_on_an_imported_model(loaded, qtbot, tmp_path):
    panel = loaded.tto_panel
    with qtbot.waitSignal(panel.scan_loaded, timeout=TIMEOUT):
        panel.load_scan(sdf_samples_npz(tmp_path / "ball.npz"))
    panel.iterations.setValue(20)  # DeepSDF's 800 would only make the test slow
    panel.samples.setValue(1000)
    panel.every.setValue(10)
    with qtbot.waitSignal(panel.fit_finished, timeout=TIMEOUT):
        panel.start_fit()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=TIMEOUT)
    assert loaded.state.selection.label.startswith("TTO result")
    assert loaded.state.selection.shape_code.shape == (8,)
    qtbot.waitUntil(loaded.is_idle, timeout=TIMEOUT)
    assert not loaded.current_mesh.is_empty


def test_folder_dropped_and_opened_from_the_menu(window, qtbot, experiment, tmp_path, monkeypatch):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(experiment))])
    event = QDropEvent(QPointF(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
        window.dropEvent(event)
    model = window.state.model
    assert model.class_names == ["chair", "table", "12345678"]
    # File ▸ Open DeepSDF experiment… on a folder whose specs.json is gone: an error, the model stays
    broken, _ = write_experiment(tmp_path / "broken")
    (broken / "specs.json").unlink()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(broken)))
    action = next(a for a in window.actions() if a.text() == "Open DeepSDF &experiment…")
    with qtbot.waitSignal(window.model_failed, timeout=TIMEOUT) as blocker:
        action.trigger()
    assert "no specs.json" in blocker.args[0]
    assert window.errors[-1][0] == "Cannot open checkpoint" and window.state.model is model
    qtbot.waitUntil(window.is_idle, timeout=TIMEOUT)
