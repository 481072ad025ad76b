"""Shape editing (core/edit) on the bundled demo model: drag, pin, paint, graft, plausibility, errors.

Real model, CPU, a few seconds per edit. The assertions are geometric (SDF at the handle,
surface far from it, colours under and away from the brush, the grafted field), never timings.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from core.edit import (
    Brush,
    DragConfig,
    EditError,
    GraftConfig,
    Handle,
    PaintConfig,
    Pin,
    Region,
    codes_of,
    delta_e,
    drag,
    graft,
    paint,
    take_snapshot,
)
from core.edit.measure import distance_to_surface, far_surface_shift
from core.edit.plausibility import class_gaussian
from core.meshing import extract_mesh
from core.model import load_trained_model

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.pt"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load_trained_model(DEMO, device="cpu")


@pytest.fixture(scope="module")
def chair(model):
    return take_snapshot(model, codes_of(model, "chair/chair_003"), resolution=64)


def _top_of_back(snapshot) -> np.ndarray:
    v = snapshot.mesh.vertices
    return v[np.argmax(v[:, 1])].astype(np.float64)


def _sdf(model, codes, code, points) -> np.ndarray:
    with torch.no_grad():
        pts = torch.as_tensor(np.asarray(points, np.float32)).reshape(-1, 3)
        return model.decode(pts, code, None, codes.condition)[0].numpy()


def test_drag_puts_the_target_on_the_surface_and_keeps_the_far_surface(model, chair):
    source = _top_of_back(chair)
    target = source + np.array([0.0, 0.0, -0.12])  # pull the top of the back backwards
    before = _sdf(model, chair.codes, chair.codes.shape_code, target)[0]
    assert before > 0.05  # the target is clearly off the surface before the edit
    result = drag(model, chair, [Handle(tuple(source), tuple(target))])
    assert result.kind == "drag" and not result.cancelled
    assert abs(_sdf(model, chair.codes, result.shape_code, target)[0]) < 0.01
    assert result.metrics["handle_sdf_max"] < 0.01
    assert torch.equal(result.colour_code, chair.codes.colour_code)  # a drag changes the shape code only
    after = extract_mesh(model.sdf_fn(result.shape_code, chair.codes.condition), 64)
    assert distance_to_surface(after, target[None])[0] < chair.voxel
    shift = far_surface_shift(chair.mesh, after, source[None], DragConfig().radius)
    assert shift["chamfer"] < 2 * chair.voxel
    assert result.history and result.history[-1]["handle"] < result.history[0]["handle"]
    assert result.plausibility is not None and result.plausibility.class_name == "chair"


def test_pins_stay_on_the_surface_while_a_handle_moves(model, chair):
    source = _top_of_back(chair)
    target = source + np.array([0.0, 0.1, 0.0])
    surface = chair.surface.numpy()
    d = np.linalg.norm(surface - source, axis=1)
    pins = [Pin(tuple(p)) for p in surface[(d > 0.15) & (d < 0.25)][:3]]
    assert pins
    result = drag(model, chair, [Handle(tuple(source), tuple(target))], pins)
    assert result.metrics["handle_sdf_max"] < 0.01
    assert result.metrics["pin_sdf_max"] < 0.01
    assert np.abs(_sdf(model, chair.codes, result.shape_code, [p.point for p in pins])).max() < 0.01


def test_two_handles_at_once(model, chair):
    v = chair.mesh.vertices.astype(np.float64)
    left, right = v[np.argmin(v[:, 0])], v[np.argmax(v[:, 0])]
    handles = [Handle(tuple(left), tuple(left + [-0.08, 0, 0])), Handle(tuple(right), tuple(right + [0.08, 0, 0]))]
    result = drag(model, chair, handles)
    assert len(result.metrics["handle_sdf"]) == 2
    assert np.abs(_sdf(model, chair.codes, result.shape_code, [h.target for h in handles])).max() < 0.01


def test_drag_cancel_stops_early_and_reports_progress(model, chair):
    source = _top_of_back(chair)
    cancel = threading.Event()
    reports = []

    def on_progress(progress):
        reports.append(progress)
        cancel.set()

    result = drag(
        model, chair, [Handle(tuple(source), tuple(source + [0, 0.1, 0]))], cancel=cancel, callback=on_progress, every=5
    )
    assert result.cancelled
    assert result.iterations == 5
    assert len(reports) == 1 and reports[0].iteration == 5 and reports[0].kind == "drag"


def _decoder_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.decoder.state_dict().items()}


def _colours(model, codes, colour_code, points) -> torch.Tensor:
    with torch.no_grad():
        return model.decode(points, codes.shape_code, colour_code, codes.condition)[1]


# A red on the (dark red) back, and a green no chair of the data set has (the code alone cannot paint it).
@pytest.mark.parametrize("radius, colour", [(0.3, "#e01010"), (0.2, "#10c020")])
def test_paint_reaches_the_brush_colour_and_keeps_the_rest(model, chair, radius, colour):
    source = _top_of_back(chair)
    shared = _decoder_state(model)
    brush = Brush(tuple(source), radius, colour)
    result = paint(model, chair, [brush])
    assert torch.equal(result.shape_code, chair.codes.shape_code)
    for k, v in model.decoder.state_dict().items():  # the shared model is never fine-tuned
        assert torch.equal(v, shared[k]), k
    assert result.decoder_override is not None and set(result.decoder_override) == set(shared)
    changed = [k for k in shared if not torch.equal(result.decoder_override[k], shared[k])]
    assert changed and all(k.startswith("colour_head.") for k in changed)  # the colour head only
    m = result.metrics
    assert m["delta_e_brush"] < 10 < m["delta_e_brush_before"]
    assert m["delta_e_rest"] < 3
    steps = PaintConfig().detail_iterations
    assert m["detail_iterations"] == steps and result.iterations == m["code_iterations"] + steps
    painted = model.with_decoder(result.decoder_override)
    rgb = _colours(painted, chair.codes, result.colour_code, chair.surface)  # the metrics, recomputed
    inside = np.linalg.norm(chair.surface.numpy() - source, axis=1) <= radius
    target = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    assert delta_e(rgb[inside], np.tile(target, (int(inside.sum()), 1))).mean() < 10
    assert delta_e(rgb[~inside], chair.colours[~inside]).mean() < 3
    with torch.no_grad():  # the SDF does not read the colour head: the geometry is the same
        sdf = painted.decode(chair.probes, chair.codes.shape_code, None, chair.codes.condition)[0]
    assert torch.allclose(sdf, chair.probe_sdf, atol=1e-6)
    assert result.plausibility.kind == "colour"


def test_paint_without_detail_changes_the_colour_code_only(model, chair):
    source = _top_of_back(chair)
    result = paint(model, chair, [Brush(tuple(source), 0.3, "#e01010")], PaintConfig(detail=False))
    assert result.decoder_override is None and result.metrics["detail_iterations"] == 0
    m = result.metrics
    assert m["delta_e_brush"] < 10 < m["delta_e_brush_before"]
    rgb = _colours(model, chair.codes, result.colour_code, chair.surface)
    far = np.linalg.norm(chair.surface.numpy() - source, axis=1) > 0.6  # the legs and the front of the seat
    assert far.sum() > 100
    assert np.median(delta_e(rgb[far], chair.colours[far])) < 3


def test_a_second_stroke_starts_from_the_first_strokes_decoder(model, chair):
    v = chair.mesh.vertices.astype(np.float64)
    top, low = _top_of_back(chair), v[np.argmin(v[:, 1])]
    first = paint(model, chair, [Brush(tuple(top), 0.2, "#10c020")])
    shown = model.with_decoder(first.decoder_override)
    codes = replace(chair.codes, colour_code=first.colour_code)
    snap = take_snapshot(shown, codes, resolution=64)
    second = paint(model, snap, [Brush(tuple(low), 0.2, "#2040c0")], decoder_override=first.decoder_override)
    assert second.metrics["delta_e_brush"] < 10
    rgb = _colours(model.with_decoder(second.decoder_override), codes, second.colour_code, chair.surface)
    green = np.linalg.norm(chair.surface.numpy() - top, axis=1) <= 0.15  # the first stroke stays green
    assert delta_e(rgb[green], np.tile([16 / 255, 192 / 255, 32 / 255], (int(green.sum()), 1))).mean() < 10


def test_paint_cancel_and_progress_cover_the_detail_stage(model, chair):
    cancel = threading.Event()
    kinds: list[str] = []

    def on_progress(progress):
        kinds.append(progress.kind)
        if progress.kind == "paint-detail":
            assert progress.decoder_override is not None
            cancel.set()

    config = PaintConfig(iterations=10, min_iterations=10)
    result = paint(
        model,
        chair,
        [Brush(tuple(_top_of_back(chair)), 0.2, "#10c020")],
        config,
        cancel=cancel,
        callback=on_progress,
        every=5,
    )
    assert result.cancelled
    assert kinds == ["paint", "paint", "paint-detail"]
    assert result.metrics["code_iterations"] == 10 and result.metrics["detail_iterations"] == 5
    assert result.decoder_override is not None  # the colour head reached so far
    with pytest.raises(EditError, match="detail_iterations"):
        PaintConfig(detail_iterations=0)
    with pytest.raises(EditError, match="detail_lr"):
        PaintConfig(detail_lr=float("nan"))


def test_graft_matches_b_inside_the_region_and_a_outside(model, chair):
    other = take_snapshot(model, codes_of(model, "chair_000"), resolution=64)
    region = Region("box", (0.0, 0.5, 0.0), (0.6, 0.4, 0.6))  # the upper back
    result = graft(model, chair, other, region, GraftConfig(iterations=150, colour=False))
    m = result.metrics
    assert m["inside_points"] > 100 and m["outside_points"] > 100
    assert m["inside_error"] < m["inside_error_code_a"]  # closer to B in the region than A was
    assert m["outside_error"] < m["outside_error_code_b"]  # closer to A outside than B is
    assert m["outside_error"] < 0.01
    assert result.class_name == "chair" and torch.equal(result.condition, chair.codes.condition)


def test_plausibility_range_of_the_training_codes(model):
    gaussian = class_gaussian(model, "chair")
    lo, _, hi = gaussian.train_range
    for i in model.codes_of_class("chair"):
        assert lo - 1e-5 <= gaussian.assess(model.shape_codes[i]).distance <= hi + 1e-5
    far = gaussian.mean + 10 * gaussian.var.sqrt()
    assert not gaussian.assess(far).within_training_range


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Brush((0, 0, 0), 0.0, "#ff0000"), "radius"),
        (lambda: Brush((0, 0, 0), 0.2, "red"), "#rrggbb"),
        (lambda: Handle((float("nan"), 0, 0), (0, 0, 0)), "NaN"),
        (lambda: Pin((0, 0)), "three numbers"),
        (lambda: Region("sphere", (0, 0, 0), (-1,)), "radius"),
        (lambda: Region("cone", (0, 0, 0), (1,)), "sphere"),
        (lambda: Handle((5, 0, 0), (0, 0, 0)), "outside"),
    ],
)
def test_bad_constraints_are_refused_with_the_reason(make, words):
    with pytest.raises(EditError, match=words):
        make()


def test_unknown_code_and_wrong_class_are_refused(model):
    with pytest.raises(EditError, match="unknown code id"):
        codes_of(model, "chair/chair_999")
    with pytest.raises(EditError, match="belongs to class 'chair'"):
        codes_of(model, "table/chair_003")


def test_a_brush_that_misses_the_shape_is_refused(model, chair):
    with pytest.raises(EditError, match="no brush touches the surface"):
        paint(model, chair, [Brush((1.2, 1.2, 1.2), 0.05, "#00ff00")])


def test_a_pin_off_the_surface_is_refused(model, chair):
    source = _top_of_back(chair)
    with pytest.raises(EditError, match="from the surface"):
        drag(model, chair, [Handle(tuple(source), tuple(source + [0, 0.1, 0]))], [Pin((1.0, 1.0, 1.0))])


def test_cli_edit_writes_the_meshes_and_the_codes(tmp_path, model, chair):
    from core.model.codes_file import read_codes
    from main import main

    top = ",".join(f"{c:.4f}" for c in _top_of_back(chair))
    out = tmp_path / "edit"
    rc = main(
        [
            "edit",
            "--ckpt",
            str(DEMO),
            "--code",
            "chair/chair_003",
            "--paint",
            f"{top}:0.2:#10c020",
            "--iterations",
            "5",
            "--resolution",
            "32",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert (out / "mesh.ply").stat().st_size > 0 and (out / "before.ply").stat().st_size > 0
    saved = read_codes(out / "codes.json", model)
    assert saved.class_name == "chair"
    assert torch.equal(saved.shape_code, chair.codes.shape_code)
    assert not torch.equal(saved.colour_code, chair.codes.colour_code)
    assert saved.info["edits"][0]["kind"] == "paint"
    assert (out / "edit.json").exists()
    assert (out / "decoder.pt").is_file() and saved.decoder_state is not None  # the fine-tuned colour head
    painted = model.with_decoder(saved.decoder_state)
    surface = chair.surface
    near = (surface - torch.as_tensor(_top_of_back(chair), dtype=torch.float32)).norm(dim=1) <= 0.2
    rgb = _colours(painted, saved, saved.colour_code, surface)
    green = np.tile([16 / 255, 192 / 255, 32 / 255], (int(near.sum()), 1))
    assert delta_e(rgb[near], green).mean() < 10
    assert delta_e(_colours(model, saved, saved.colour_code, surface)[near], green).mean() > 10  # needs the decoder
    mesh = trimesh.load(out / "mesh.ply", process=False)  # written with the fine-tuned colours
    vertices = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    written = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0
    assert np.median(delta_e(_colours(painted, saved, saved.colour_code, vertices), written)) < 1.5


@pytest.mark.parametrize(
    "args, words",
    [
        (["--code", "chair/nope", "--paint", "0,0,0:0.2:#ff0000"], "unknown code id"),
        (["--code", "chair/chair_003", "--drag", "0,0.8:0,0.9,0"], "three numbers"),
        (["--code", "chair/chair_003", "--drag", "0,0.8,nan:0,0.9,0"], "NaN"),
        (["--code", "chair/chair_003", "--paint", "0,0.8,0:-1:#ff0000"], "radius"),
        (["--code", "chair/chair_003", "--graft", "chair/chair_000", "--region", "sphere:0,0.5,0,0"], "radius"),
        (["--code", "chair/chair_003", "--graft", "chair/chair_000"], "--region"),
        (["--code", "chair/chair_003", "--pin", "0,0,0"], "add a --drag"),
        (["--code", "chair/chair_003"], "nothing to edit"),
    ],
)
def test_cli_edit_refuses_bad_input_before_any_work(tmp_path, capsys, args, words):
    from main import main

    out = tmp_path / "never"
    assert main(["edit", "--ckpt", str(DEMO), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err
    assert not out.exists()


def test_cli_edit_refuses_an_out_that_is_a_file_before_editing(tmp_path, capsys):
    from main import main

    blocker = tmp_path / "taken.txt"
    blocker.write_text("keep me")
    args = ["edit", "--ckpt", str(DEMO), "--code", "chair/chair_003", "--drag", "0,0.8,0:0,0.9,0"]
    assert main([*args, "--out", str(blocker)]) == 2
    err = capsys.readouterr()
    assert f"--out {blocker}: is a file, not a folder" in err.err and "step" not in err.out
    assert blocker.read_text() == "keep me"


# --------------------------------------------------------------------------- issue 28: items 5, 10, 11


def _edit(capsys, *argv: str) -> tuple[int, str, str]:
    from main import main

    try:
        code = main(["edit", *argv])
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("value", ["100000", "2049", "15"])
def test_cli_edit_shares_the_resolution_limit_of_every_command(tmp_path, capsys, value):
    out = tmp_path / "never"
    code, _, err = _edit(
        capsys,
        "--ckpt",
        str(DEMO),
        "--code",
        "chair/chair_003",
        "--paint",
        "0,0.8,0:0.2:#ff0000",
        "--resolution",
        value,
        "--out",
        str(out),
    )
    assert code == 2 and "argument --resolution:" in err and "outside 16 … 2048" in err
    assert not out.exists()


def test_cli_edit_refuses_paint_on_a_model_without_colour_before_the_drag(tmp_path, capsys):
    from tests.deepsdf_experiment import SPLIT, write_experiment

    exp, _ = write_experiment(tmp_path, weights="octahedra")  # a DeepSDF experiment: geometry only
    shape = SPLIT["ShapeNetV2"]["03001627"][0]
    out = tmp_path / "out"
    code, printed, err = _edit(
        capsys,
        "--ckpt",
        str(exp),
        "--code",
        shape,
        "--drag",
        "0,0.5,0:0,0.6,0",
        "--paint",
        "0,0.5,0:0.2:#ff0000",
        "--out",
        str(out),
    )
    assert code == 2 and "paint needs a model trained with colour" in err and "Traceback" not in err
    assert "step" not in printed and not out.exists()


def test_cli_edit_refuses_a_folder_in_the_way_of_an_output_file_before_editing(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "mesh.ply").mkdir(parents=True)
    (out / "mesh.ply" / "mine.txt").write_text("keep")
    code, printed, err = _edit(
        capsys, "--ckpt", str(DEMO), "--code", "chair/chair_003", "--drag", "0,0.8,0:0,0.9,0", "--out", str(out)
    )
    assert code == 2 and f"{out / 'mesh.ply'} is a folder where this command writes a file" in err
    assert "step" not in printed and (out / "mesh.ply" / "mine.txt").read_text() == "keep"


def test_cli_edit_refused_during_the_edit_leaves_no_empty_out_folder(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _edit(
        capsys,
        "--ckpt",
        str(DEMO),
        "--code",
        "chair/chair_003",
        "--paint",
        "0.9,0.9,0.9:0.01:#ff0000",
        "--iterations",
        "2",
        "--out",
        str(out),
    )
    assert code == 2 and "no brush touches the surface" in err
    assert not out.exists()
