"""The viewer in a real window (Xvfb in CI): loading, picking, interpolation, map, TTO, export.

Tests wait on signals or conditions, never on fixed sleeps, and never assume one piece of work
finishes before another: where order matters, a job blocks on an event, a fit is held at a report
or the refinement debounce is stopped, so they pass on any machine speed. How responsive the UI
stays is measured, not asserted: benchmarks/bench_viewer.py. Every window is shut down (fits
stopped, workers joined, plotter closed) by the fixture, which fails the test if a window or
worker thread is left alive.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from core.tto.config import INTERACTIVE_LR, PARTIAL_SCAN_ANCHOR_WEIGHT, for_observation
from tests.viewer_window import FULL, PREVIEW, open_main_window, require_viewer  # no Qt imported

require_viewer()

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QListWidget,
    QScrollBar,
    QWidget,
)

from viewer.state import CodeSelection  # noqa: E402

TIMEOUT = 60_000


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A shown main window with small resolutions; message boxes are recorded, not shown."""
    yield from open_main_window(qtbot, tmp_path, monkeypatch)


@pytest.fixture
def loaded(window, qtbot, toy_trained):
    with qtbot.waitSignal(window.mesh_shown, timeout=TIMEOUT):
        window.load_checkpoint(toy_trained["ckpt"])
    return window


def _wait_full_mesh(window, qtbot):
    """Wait until the mesh on screen is the full-resolution mesh of the current codes."""
    qtbot.waitUntil(window.is_idle, timeout=TIMEOUT)


def test_open_model_shows_summary_mesh_and_recent(loaded, qtbot):
    _wait_full_mesh(loaded, qtbot)
    assert loaded.state.model.class_names == ["ball", "slab"]
    summary = loaded.model_panel.summary.text()
    assert "embedding" in summary and "4 in 2 classes" in summary and "tiny" in summary
    mesh = loaded.current_mesh
    assert not mesh.is_empty and mesh.colours is not None and len(mesh.vertices) > 100
    assert loaded.scene.shape.n_points == len(mesh.vertices)
    assert loaded.scene.shape_actor.mapper.GetScalarVisibility()  # colours on
    assert f"{FULL}³ mesh in" in loaded.timing.text()
    assert loaded.recent()[0].endswith("latest.pt")
    assert loaded.recent_menu.actions()[0].text() == "latest.pt"
    assert "latest.pt" in loaded.windowTitle()


def test_mesh_is_updated_in_place_on_one_actor(loaded, qtbot):
    _wait_full_mesh(loaded, qtbot)
    actor, poly = loaded.scene.shape_actor, loaded.scene.shape
    n_actors = len(loaded.plotter.renderer.actors)
    with qtbot.waitSignal(loaded.mesh_shown, timeout=TIMEOUT):
        loaded.codes_panel.select_index(2)
    _wait_full_mesh(loaded, qtbot)
    assert loaded.scene.shape_actor is actor and loaded.scene.shape is poly
    assert len(loaded.plotter.renderer.actors) == n_actors


def test_bad_checkpoint_shows_error_and_keeps_model(loaded, qtbot, tmp_path):
    model = loaded.state.model
    bad = tmp_path / "bad.pt"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    with qtbot.waitSignal(loaded.model_failed, timeout=TIMEOUT) as blocker:
        loaded.load_checkpoint(bad)
    assert "bad.pt" in blocker.args[0]
    title, text = loaded.errors[-1]
    assert title == "Cannot open checkpoint" and "bad.pt" in text and "Still showing latest.pt" in text
    assert loaded.state.model is model
    truncated = tmp_path / "cut.pt"
    data = model.path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with qtbot.waitSignal(loaded.model_failed, timeout=TIMEOUT):
        loaded.load_checkpoint(truncated)
    assert loaded.state.model is model and len(loaded.errors) == 2
    assert all("bad.pt" not in p and "cut.pt" not in p for p in loaded.recent())


def test_pick_codes_change_mesh_and_undo_redo(loaded, qtbot):
    _wait_full_mesh(loaded, qtbot)
    first = loaded.current_mesh.vertices.copy()
    panel = loaded.codes_panel
    panel.class_box.setCurrentText("slab")
    assert [panel.shapes.item(i).text() for i in range(panel.shapes.count())] == ["slab0", "slab1"]
    with qtbot.waitSignal(loaded.mesh_shown, timeout=TIMEOUT):
        panel._pick(panel.shapes.item(0))
    _wait_full_mesh(loaded, qtbot)
    assert loaded.state.selection.label == "slab/slab0"
    slab = loaded.current_mesh.vertices
    assert slab.shape != first.shape or not np.allclose(slab, first)
    assert np.ptp(slab[:, 1]) < np.ptp(slab[:, 0])  # a slab is flat
    assert loaded.undo_action.isEnabled() and not loaded.redo_action.isEnabled()
    loaded.undo_action.trigger()
    assert loaded.state.selection.label.startswith("ball/")
    assert loaded.redo_action.isEnabled()
    loaded.redo_action.trigger()
    assert loaded.state.selection.label == "slab/slab0"
    panel.search.setText("1")
    assert [panel.shapes.item(i).isHidden() for i in range(2)] == [True, False]
    panel.pick_mean()
    assert loaded.state.selection.label == "slab mean"
    panel.pick_random()
    assert loaded.state.selection.label == "random slab"
    # geometry of one shape, colours of another
    _wait_full_mesh(loaded, qtbot)
    own_colours = loaded.current_mesh.colours.mean(axis=0)
    panel.colour_box.setCurrentIndex(panel.colour_box.findData(0))
    panel._pick_colour()
    model = loaded.state.model
    assert torch.equal(loaded.state.selection.colour_code, model.colour_codes[0].cpu())
    assert "in colours of ball/ball0" in loaded.state.selection.label
    _wait_full_mesh(loaded, qtbot)
    assert not np.allclose(loaded.current_mesh.colours.mean(axis=0), own_colours, atol=1e-3)


def test_interpolation_previews_then_refines(loaded, qtbot):
    _wait_full_mesh(loaded, qtbot)
    panel = loaded.interp_panel
    assert panel.a_box.currentText().startswith("ball") and panel.b_box.currentText().startswith("slab")
    assert set(loaded.state.marks) == {"A", "B"} and set(loaded.map_panel.map.marks) == {"A", "B"}
    resolutions = []
    loaded.mesh_shown.connect(lambda mesh: resolutions.append(mesh.stats.get("resolution")))
    undo_before = len(loaded.state._history.undo)
    for value in (10, 30, 50):
        panel.shape_slider.setValue(value)
    # The mouse holds the slider: no refinement until the release (however long the previews take).
    loaded.idle_timer.stop()
    assert panel.colour_slider.value() == 50  # linked
    qtbot.waitUntil(lambda: PREVIEW in resolutions, timeout=TIMEOUT)
    panel.shape_slider.sliderReleased.emit()
    _wait_full_mesh(loaded, qtbot)
    assert len(loaded.state._history.undo) == undo_before + 1  # one drag, one undo step
    assert "@ 0.50" in loaded.state.selection.label
    mid = loaded.state.selection.shape_code
    a = loaded.state.model.shape_codes[0]
    b = loaded.state.model.shape_codes[panel.b_box.currentData()]
    assert torch.allclose(mid, (a + b) / 2, atol=1e-6)
    assert resolutions[-1] == FULL
    # an intermediate mesh: between the ball's and the slab's flatness
    assert not loaded.current_mesh.is_empty
    # the class condition is A's before the middle and B's from it; blended only on request
    model = loaded.state.model
    cond_a, cond_b = model.condition("ball").cpu(), model.condition("slab").cpu()
    assert torch.allclose(loaded.state.selection.condition, cond_b)
    assert torch.allclose(panel.selection_at(0.3).condition, cond_a)
    panel.blend_classes.setChecked(True)
    assert torch.allclose(panel.selection_at(0.3).condition, 0.7 * cond_a + 0.3 * cond_b, atol=1e-6)
    panel.blend_classes.setChecked(False)
    panel.spherical.setChecked(True)
    sel = panel.selection_at(0.5)
    assert not torch.allclose(sel.shape_code, mid)
    # colour slider apart from the shape
    panel.link.setChecked(False)
    panel.colour_slider.setValue(100)
    b_colour = loaded.state.model.colour_codes[panel.b_box.currentData()]
    assert torch.allclose(loaded.state.selection.colour_code, b_colour)
    # play loop moves the slider on its own
    start = panel.shape_slider.value()
    panel.play.setChecked(True)
    qtbot.waitUntil(lambda: panel.shape_slider.value() != start, timeout=TIMEOUT)
    panel.play.setChecked(False)
    assert not panel.timer.isActive()


def test_interpolation_export_gif_and_strip(loaded, qtbot, tmp_path):
    _wait_full_mesh(loaded, qtbot)
    shown = loaded.current_mesh
    done = []
    loaded.export_sequence_to(tmp_path / "seq.gif", 3, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT)
    loaded.export_sequence_to(tmp_path / "seq.png", 3, on_done=done.append)
    qtbot.waitUntil(lambda: len(done) == 2, timeout=TIMEOUT)
    import imageio.v2 as imageio

    frames = imageio.mimread(tmp_path / "seq.gif")
    assert len(frames) == 3 and not np.array_equal(frames[0], frames[-1])
    strip = imageio.imread(tmp_path / "seq.png")
    assert strip.shape[1] == 3 * frames[0].shape[1]
    assert loaded.scene.shape.n_points == len(shown.vertices)  # the view is back on the current mesh


def test_latent_map_click_and_drag_decode(loaded, qtbot):
    _wait_full_mesh(loaded, qtbot)
    panel = loaded.map_panel
    assert len(panel.map.points) == 4
    target = panel.map.points[2]
    before = loaded.state.selection.shape_code
    # a real click on the widget at the point of shape 2
    pos = panel.map.to_screen(target).toPoint()
    with qtbot.waitSignal(loaded.mesh_shown, timeout=TIMEOUT):
        qtbot.mouseClick(panel.map, Qt.LeftButton, pos=pos)
    code = loaded.state.selection.shape_code
    clicked = panel.map.to_map(QPointF(pos))
    expected = torch.tensor(panel.pca.inverse(clicked), dtype=torch.float32)
    assert torch.allclose(code, expected, atol=1e-5) and not torch.equal(code, before)
    assert "map" in loaded.state.selection.label and "slab0" in loaded.state.selection.label
    _wait_full_mesh(loaded, qtbot)
    # a drag: several previews, one undo step
    undo_before = len(loaded.state._history.undo)
    for t in np.linspace(0, 1, 6):
        panel.map.picked.emit(panel.map.points[0] * (1 - t) + panel.map.points[3] * t, True)
    panel.map.picked.emit(panel.map.points[3], False)
    assert len(loaded.state._history.undo) == undo_before + 1
    _wait_full_mesh(loaded, qtbot)
    loaded.state.undo()
    assert torch.allclose(loaded.state.selection.shape_code, code)


def test_live_tto_runs_updates_and_measures(loaded, qtbot, toy_trained, monkeypatch):
    import viewer.panels.tto_panel as tto_panel_module

    measured_meshes = []
    real_measure = tto_panel_module.measure
    monkeypatch.setattr(
        tto_panel_module, "measure", lambda *a, **k: measured_meshes.append(k.get("mesh")) or real_measure(*a, **k)
    )
    panel = loaded.tto_panel
    scan = toy_trained["data"] / "SdfSamples" / "toy" / "slab" / "slab2.npz"
    with qtbot.waitSignal(panel.scan_loaded, timeout=TIMEOUT):
        panel.load_scan(scan)
    assert loaded.scene.scan_actor is not None and loaded.scene.scan_actor.GetVisibility()
    assert panel.start.isEnabled()
    # a project model's fit starts at the interactive learning rate (DeepSDF's 5e-3 is for 800 steps)
    assert panel.lr.value() == INTERACTIVE_LR and panel.config().lr == INTERACTIVE_LR
    panel.iterations.setValue(30)
    panel.every.setValue(10)
    panel.samples.setValue(1000)
    panel.class_box.setCurrentText("slab")
    # the panel starts with the hard draws on (core.tto.config.INTERACTIVE_LOSSES); with the surface terms
    # ticked too, compare: plain DeepSDF
    assert [k for k, box in panel.switches.items() if box.isChecked()] == ["hard_draws"]
    panel.switches["surface_term"].setChecked(True)
    assert panel.config().hard_draws and "hard_draws" in panel.config().losses
    assert not panel.config(baseline=True).surface_term and not panel.config(baseline=True).hard_draws
    panel.compare.setChecked(True)
    labels = []
    loaded.state.selection_changed.connect(lambda _i: labels.append(loaded.state.selection.label))
    undo_before = len(loaded.state._history.undo)
    with qtbot.waitSignal(panel.metrics_ready, timeout=TIMEOUT):
        panel.start_fit()
    qtbot.waitUntil(
        lambda: panel.worker is None and panel.baseline_worker is None and bool(panel.baseline_metrics), timeout=TIMEOUT
    )
    assert any(lab.startswith("TTO code it") for lab in labels)
    assert labels[-1].startswith("TTO result (surface_term, normal_term")
    assert len(loaded.state._history.undo) == undo_before + 1  # the whole fit is one undo step
    assert "sdf" in panel.plot.series and len(panel.plot.series["sdf"]) >= 3
    assert panel.last_metrics["fscore_1pct"] > 0 and "Chamfer" in panel.metrics.text()
    assert "baseline" in panel.metrics.text()
    assert "TTO" in loaded.map_panel.map.marks
    assert loaded.scene.compare_actor is not None and loaded.scene.compare_actor.GetVisibility()
    _wait_full_mesh(loaded, qtbot)
    assert not loaded.current_mesh.is_empty
    # the fit was measured on the refined mesh on screen, not on a second extraction of it
    assert any(mesh is loaded.current_mesh for mesh in measured_meshes) and panel.unmeasured_selection is None


def test_tto_pause_stop_bad_scan_and_partial_scan(loaded, qtbot, toy_trained, tmp_path):
    panel = loaded.tto_panel
    bad = tmp_path / "broken.ply"
    bad.write_text("ply\nformat ascii 1.0\nelement vertex 3\n")
    panel.load_scan(bad)
    qtbot.waitUntil(lambda: "could not load" in panel.scan_label.text(), timeout=TIMEOUT)
    assert panel.observation is None and not panel.start.isEnabled()
    with qtbot.waitSignal(panel.scan_loaded, timeout=TIMEOUT):
        panel.load_scan(toy_trained["data"] / "SdfSamples" / "toy" / "ball" / "ball2.npz")
    panel.iterations.setValue(5000)
    panel.every.setValue(5)
    panel.samples.setValue(500)
    panel.class_box.setCurrentText("ball")
    with qtbot.waitSignal(loaded.state.selection_changed, timeout=TIMEOUT):
        panel.start_fit()
        _hold_at_next_report(panel.worker)
    panel.pause.setChecked(True)
    assert panel.worker.paused and panel.pause.text() == "Resume"
    with qtbot.waitSignal(panel.fit_finished, timeout=TIMEOUT) as blocker:
        panel.stop_fit()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=TIMEOUT)
    assert blocker.args[0].cancelled and panel.last_result.cancelled
    assert panel.start.isEnabled() and not panel.stop.isEnabled()
    # a single-view scan of a mesh file
    import trimesh

    mesh_path = tmp_path / "box.ply"
    trimesh.creation.box(extents=(1.2, 0.3, 0.9)).export(mesh_path)
    with qtbot.waitSignal(panel.scan_loaded, timeout=TIMEOUT):
        panel.load_scan(mesh_path)
    assert panel.observation.kind == "mesh" and panel.partial.isEnabled()
    panel.switches["finetune_last_layers"].setChecked(True)
    panel.switches["hard_draws"].setChecked(True)
    assert panel.config().hard_draws
    with qtbot.waitSignal(panel.scan_loaded, timeout=TIMEOUT) as blocker:
        panel.partial.click()
    assert panel.observation.kind == "scan"
    assert not panel.config().hard_draws  # measured to give up the hidden side from the front: off for a scan
    assert blocker.args[0][:, 2].min() > -0.2  # only the front (+z) side was seen
    # the partial-input default: a fine-tuning keeps the prior's unseen side (the prior anchor)
    assert panel.switches["finetune_last_layers"].isChecked()
    assert panel.config().finetune_last_layers and panel.config().finetune_anchor_weight is None  # the fit's choice
    assert for_observation(panel.config(), panel.observation.kind).finetune_anchor_weight == PARTIAL_SCAN_ANCHOR_WEIGHT


def test_export_mesh_and_codes_round_trip(loaded, qtbot, tmp_path):
    _wait_full_mesh(loaded, qtbot)
    for suffix in ("ply", "obj", "glb"):
        path = loaded.export_mesh_to(tmp_path / f"shape.{suffix}")
        assert path is not None and path.stat().st_size > 1000
    assert loaded.export_mesh_to(tmp_path / "shape.xyz") is None and loaded.errors[-1][0] == "Export failed"
    import trimesh

    back = trimesh.load(tmp_path / "shape.ply", process=False)
    assert len(back.vertices) == len(loaded.current_mesh.vertices)
    assert np.allclose(back.vertices, loaded.current_mesh.vertices, atol=1e-5)
    assert back.visual.vertex_colors.shape[0] == len(back.vertices)
    saved = loaded.state.selection
    loaded.export_codes_to(tmp_path / "codes.json")
    data = json.loads((tmp_path / "codes.json").read_text())
    assert data["format"] == "deepsdf-explorer-codes" and len(data["shape_code"]) == saved.shape_code.numel()
    loaded.codes_panel.pick_random()
    assert loaded.load_codes_from(tmp_path / "codes.json")
    sel = loaded.state.selection
    assert torch.allclose(sel.shape_code, saved.shape_code) and torch.allclose(sel.colour_code, saved.colour_code)
    assert torch.allclose(sel.condition, saved.condition)
    (tmp_path / "bad.json").write_text(json.dumps({"shape_code": [1.0, 2.0]}))
    assert not loaded.load_codes_from(tmp_path / "bad.json")
    assert "this model needs" in loaded.errors[-1][1]
    (tmp_path / "junk.json").write_text("{not json")
    assert not loaded.load_codes_from(tmp_path / "junk.json")


def test_display_options_slice_camera_screenshot(loaded, qtbot, tmp_path):
    _wait_full_mesh(loaded, qtbot)
    panel = loaded.display_panel
    with qtbot.waitSignal(loaded.slicer.finished_job, timeout=TIMEOUT):
        panel.slice.setChecked(True)
    qtbot.waitUntil(lambda: loaded.scene.slice_visible, timeout=TIMEOUT)
    assert loaded.scene.slice_zero.n_points > 0  # the zero level crosses the plane
    assert loaded.scene.shape_actor.GetMapper().GetNumberOfClippingPlanes() == 1
    axis = loaded.state.display.slice_axis
    panel.position.setValue(95)  # near the edge: outside the shape
    qtbot.waitUntil(lambda: np.allclose(loaded.scene.slice_grid.points[:, axis], 0.95), timeout=TIMEOUT)
    assert loaded.scene.slice_grid.point_data["sdf"].min() > -0.05
    panel.colour.setChecked(False)
    assert not loaded.scene.shape_actor.mapper.GetScalarVisibility()
    panel.wire.setChecked(True)
    assert loaded.scene.shape_actor.GetProperty().GetRepresentationAsString() == "Wireframe"
    panel.slice.setChecked(False)
    assert not loaded.scene.slice_visible and loaded.scene.shape_actor.GetMapper().GetNumberOfClippingPlanes() == 0
    panel.dark.setChecked(True)
    assert np.allclose(loaded.plotter.background_color.float_rgb, (38 / 255, 40 / 255, 44 / 255), atol=0.01)
    cam = loaded.scene.camera_json()
    loaded.scene.set_camera("top")
    assert not np.allclose(loaded.scene.camera_json()["position"], cam["position"])
    loaded.scene.load_camera_json(cam)
    assert np.allclose(loaded.scene.camera_json()["position"], cam["position"])
    with pytest.raises(ValueError):
        loaded.scene.load_camera_json({"position": [1, 2]})
    panel.colour.setChecked(True)
    panel.wire.setChecked(False)
    from core.meshing.extract import MeshArrays

    loaded.scene.show_mesh(MeshArrays.empty(reason="no zero crossing"))  # a code far from any shape
    assert not loaded.scene.shape_actor.GetVisibility() and loaded.scene._hint_actor is not None
    loaded.scene.show_mesh(loaded.current_mesh)
    assert loaded.scene.shape_actor.GetVisibility() and loaded.scene._hint_actor is None
    shot = loaded.scene.screenshot(tmp_path / "shot.png", scale=2, transparent=True)
    from PIL import Image

    image = np.asarray(Image.open(shot))
    width, height = loaded.plotter.window_size
    assert image.shape == (2 * height, 2 * width, 4)
    assert image[..., :3].std() > 5 and (image[..., 3] == 0).mean() > 0.2  # a shape on a see-through background


def test_two_lights_on_a_cpu_rasteriser_and_the_full_kit_in_screenshots(loaded, qtbot, monkeypatch):
    """llvmpipe shades each pixel once per light: interactive frames there use the kit's headlight and key
    light (brightened); every screenshot uses the whole kit, and the view's rig is back after it."""
    from viewer.scene import SOFTWARE_GL_LIGHT_GAINS, is_software_gl

    _wait_full_mesh(loaded, qtbot)
    scene, plotter = loaded.scene, loaded.plotter
    lights = list(plotter.renderer.lights)

    def switched_on() -> list:
        return [light for light in lights if light.GetSwitch()]

    assert len(lights) == 5
    software = is_software_gl(plotter)
    assert (scene._kit is not None) == software  # the window chose the rig with its first refined mesh
    scene._set_light_rig(two_lights=False)
    full = [light.GetIntensity() for light in lights]
    scene._set_light_rig(two_lights=True)
    rig = switched_on()
    assert len(rig) == 2 and sorted(light.is_headlight for light in rig) == [False, True]  # head, key
    head = next(light for light in rig if light.is_headlight)
    key = next(light for light in rig if not light.is_headlight)
    assert head.GetIntensity() == pytest.approx(full[lights.index(head)] * SOFTWARE_GL_LIGHT_GAINS[0])
    assert key.GetIntensity() == pytest.approx(full[lights.index(key)] * SOFTWARE_GL_LIGHT_GAINS[1])
    assert key.GetIntensity() >= max(full)  # the brightest of the kit is the one kept
    lit_in_screenshot = []
    screenshot = plotter.screenshot

    def counting_screenshot(*args, **kwargs):
        lit_in_screenshot.append(len(switched_on()))
        return screenshot(*args, **kwargs)

    monkeypatch.setattr(plotter, "screenshot", counting_screenshot)
    image = scene.image()
    assert lit_in_screenshot == [5] and image.ndim == 3
    assert len(switched_on()) == 2  # the view's two lights again
    scene._set_light_rig(two_lights=False)
    assert [light.GetIntensity() for light in lights] == full and len(switched_on()) == 5
    scene._set_light_rig(two_lights=bool(software))  # as the window had it


def test_view_is_a_native_window_and_antialiasing_follows_refinement(loaded, qtbot):
    """The 3D view is a native window (pyvistaqt < 0.13): with 0.13's QOpenGLWidget Qt composes
    the whole window with OpenGL on every widget update, 10 ms each with software OpenGL, and
    the preview rate while dragging halves (docs/benchmarks.md). FXAA is on for the refined
    mesh only, never with a CPU rasteriser, and every screenshot is antialiased."""
    from PySide6.QtOpenGLWidgets import QOpenGLWidget

    from viewer.scene import is_software_gl

    view = loaded.plotter.interactor
    assert not isinstance(view, QOpenGLWidget) and view.testAttribute(Qt.WA_NativeWindow)
    _wait_full_mesh(loaded, qtbot)
    software = is_software_gl(loaded.plotter)
    assert loaded.scene._fxaa == (not software)
    model = loaded.state.model
    with qtbot.waitSignal(loaded.mesh_shown, timeout=TIMEOUT):
        loaded.state.select(
            CodeSelection(model.shape_codes[1].cpu(), None, model.condition("ball").cpu(), "drag", "ball"),
            interactive=True,
        )
        loaded.idle_timer.stop()  # the drag goes on: the preview is the only request until the release
    assert loaded.current_mesh.stats["resolution"] == PREVIEW and not loaded.scene._fxaa
    loaded.state.finish_interaction()  # the release
    _wait_full_mesh(loaded, qtbot)
    view_fxaa = loaded.scene._fxaa
    loaded.scene._set_fxaa(False)
    plain = loaded.plotter.screenshot(None, return_img=True)
    smooth = loaded.scene.image()
    assert loaded.scene._fxaa is False  # the view's setting is back after the screenshot
    loaded.scene._set_fxaa(view_fxaa)

    def hard_silhouette_steps(image):
        """Background pixels right next to clearly-shape pixels: the stair steps FXAA blends away."""
        far = np.abs(image[..., :3].astype(float) - np.array([0xF4, 0xF4, 0xF2])).sum(axis=2)
        background, shape = far < 3, far > 60
        return sum(
            int(((background[a] & shape[b]) | (shape[a] & background[b])).sum())
            for a, b in (
                ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                ((slice(None, -1),), (slice(1, None),)),
            )
        )

    assert hard_silhouette_steps(smooth) < 0.8 * hard_silhouette_steps(plain)


def test_camera_frames_the_shape(loaded, qtbot):
    """Every preset shows the whole shape, filling a good part of the view (not tiny, not cut)."""
    _wait_full_mesh(loaded, qtbot)
    loaded.state.set_display(dark_background=False)
    for preset in ("iso", "front", "side", "top"):
        loaded.scene.set_camera(preset)
        image = loaded.scene.image().astype(float)
        background = np.array([0xF4, 0xF4, 0xF2], float)
        shape = np.abs(image[..., :3] - background).sum(axis=2) > 30
        rows, cols = np.flatnonzero(shape.any(axis=1)), np.flatnonzero(shape.any(axis=0))
        h, w = shape.shape
        assert rows[0] > 0 and cols[0] > 0 and rows[-1] < h - 1 and cols[-1] < w - 1, preset  # not cut
        assert max((rows[-1] - rows[0]) / h, (cols[-1] - cols[0]) / w) > 0.5, preset  # not tiny


def _hold_at_next_report(worker):
    """Pause ``worker`` (a TTOWorker) from its own thread at its next report of the code fit (the
    reports of a class inference before it do not change the selection): the fit cannot run to its
    end before the test stops it, however fast the machine (it waits until resumed or stopped)."""
    worker.progress.connect(lambda report: report.stage == "code" and worker.pause(True), Qt.DirectConnection)


def _blocking_job(result=None):
    """A job that signals when it starts and then waits for ``release`` (at most TIMEOUT)."""
    started, release = threading.Event(), threading.Event()

    def job():
        started.set()
        release.wait(TIMEOUT / 1000)
        return result

    return job, started, release


def test_latest_wins_worker_runs_only_the_newest_pending_request(qtbot):
    """While a job runs, 20 requests arrive: 19 are superseded unrun, the newest one runs and is delivered."""
    from viewer.workers import LatestWinsWorker

    worker = LatestWinsWorker("test")
    ran, delivered, failed = [], [], []
    worker.finished_job.connect(lambda request_id, result, _seconds: delivered.append((request_id, result)))
    worker.failed_job.connect(lambda request_id, message: failed.append((request_id, message)))
    worker.start()
    job, started, release = _blocking_job("first")
    try:
        first = worker.submit(job)
        assert started.wait(TIMEOUT / 1000), "the worker never started the first job"
        ids = [worker.submit(lambda i=i: ran.append(i) or i) for i in range(20)]
        assert worker.superseded == 19 and worker.has_pending and not worker.idle
        release.set()
        qtbot.waitUntil(lambda: len(delivered) == 2 and worker.idle, timeout=TIMEOUT)
        assert delivered == [(first, "first"), (ids[-1], 19)] and ran == [19]
        assert worker.superseded == 19 and worker.last_id == ids[-1] and ids == list(range(first + 1, first + 21))
        # a failing job is reported and the thread goes on with the next request
        bad = worker.submit(lambda: 1 / 0)
        qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT)
        assert failed[0][0] == bad and "ZeroDivisionError" in failed[0][1]
        good = worker.submit(lambda: "after")
        qtbot.waitUntil(lambda: len(delivered) == 3, timeout=TIMEOUT)
        assert delivered[-1] == (good, "after")
    finally:
        release.set()
        worker.stop()
    assert not worker.isRunning()


def test_a_drag_while_the_mesher_is_busy_shows_only_the_newest_code(loaded, qtbot):
    """20 edits arrive while the mesher is busy: one preview (of the newest code) is shown, then refined."""
    from viewer.workers import displayed_mesh_job, mesh_job

    _wait_full_mesh(loaded, qtbot)
    model = loaded.state.model
    shown = []
    loaded.mesh_shown.connect(lambda mesh: shown.append(mesh))
    start = loaded.mesher.superseded
    busy, started, release = _blocking_job(loaded.current_mesh)  # the mesher redraws the mesh on screen
    try:
        loaded.mesher.submit(displayed_mesh_job(busy))
        assert started.wait(TIMEOUT / 1000), "the mesher never started the blocking job"
        for i in range(20):
            code = model.shape_codes[i % 4].cpu() * (1 + 0.01 * i)
            loaded.state.select(
                CodeSelection(code, None, model.condition("ball").cpu(), f"drag {i}", "ball"), interactive=True
            )
        loaded.idle_timer.stop()  # the mouse holds on: no refinement until the release below
        assert loaded.mesher.superseded - start == 19
    finally:
        release.set()
    qtbot.waitUntil(lambda: len(shown) == 2 and loaded.mesher.idle, timeout=TIMEOUT)
    newest = loaded.state.selection
    assert newest.label == "drag 19"
    assert [m.stats["resolution"] for m in shown] == [FULL, PREVIEW]
    expected = mesh_job(model, newest, PREVIEW)()  # extraction is deterministic: the newest code's mesh
    assert np.array_equal(shown[1].vertices, expected.vertices) and np.array_equal(shown[1].faces, expected.faces)
    loaded.state.finish_interaction()  # the release
    _wait_full_mesh(loaded, qtbot)
    assert [m.stats["resolution"] for m in shown] == [FULL, PREVIEW, FULL]
    assert loaded.mesher.superseded - start == 19 and loaded.state.selection is newest
    # the surface on screen is the mesh shown (built on the mesher's thread), points and faces alike
    drawn = loaded.scene.shape
    assert drawn.n_points == len(shown[-1].vertices) and drawn.n_cells == len(shown[-1].faces)
    assert np.allclose(np.asarray(drawn.points), shown[-1].vertices)


def test_every_control_has_a_tool_tip(loaded):
    kinds = (QAbstractButton, QComboBox, QAbstractSlider, QAbstractSpinBox, QLineEdit, QListWidget)
    panels = [
        loaded.model_panel,
        loaded.codes_panel,
        loaded.interp_panel,
        loaded.map_panel,
        loaded.tto_panel,
        loaded.display_panel,
    ]
    missing = []
    for panel in panels:
        for w in panel.findChildren(QWidget):
            # Qt's own parts: a spin box's editor, a line edit's clear button, scroll bars
            inner = isinstance(w.parent(), (QAbstractSpinBox, QComboBox, QLineEdit)) or isinstance(w, QScrollBar)
            if isinstance(w, kinds) and not inner and not w.toolTip():
                missing.append(f"{type(panel).__name__}: {type(w).__name__} {getattr(w, 'text', lambda: '')()!r}")
    assert not missing, missing
    assert all(a.toolTip() for a in loaded.actions())
    shortcuts = {a.shortcut().toString() for a in loaded.actions()}
    assert {"Ctrl+O", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+S", "R"} <= shortcuts


def test_drop_checkpoint_on_window(window, qtbot, toy_trained):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(toy_trained["ckpt"]))])
    event = QDropEvent(QPointF(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT):
        window.dropEvent(event)
    assert window.state.model is not None and window.codes_panel.isEnabled()


def test_opening_a_model_during_a_fit_stops_it(loaded, qtbot, toy_trained):
    panel = loaded.tto_panel
    with qtbot.waitSignal(panel.scan_loaded, timeout=TIMEOUT):
        panel.load_scan(toy_trained["data"] / "SdfSamples" / "toy" / "ball" / "ball2.npz")
    panel.iterations.setValue(5000)
    panel.every.setValue(5)
    panel.samples.setValue(500)
    with qtbot.waitSignal(loaded.state.selection_changed, timeout=TIMEOUT):
        panel.start_fit()
        _hold_at_next_report(panel.worker)
    old = loaded.state.model
    with qtbot.waitSignal(loaded.model_loaded, timeout=TIMEOUT):
        loaded.load_checkpoint(toy_trained["ckpt"])
    qtbot.waitUntil(lambda: panel.worker is None, timeout=TIMEOUT)
    assert loaded.state.model is not old
    assert not loaded.state.selection.label.startswith("TTO")  # late reports of the old fit are ignored
    _wait_full_mesh(loaded, qtbot)
    assert not loaded.current_mesh.is_empty
