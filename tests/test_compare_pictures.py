"""studies/compare_pictures.py on the toy data set and the tiny model trained by conftest's ``toy_trained``:
the picture and its JSON, trained codes and TTO fits, "not trained" cells, the ground truth from a
mesh, and clear errors for bad arguments. Rendering needs a display (run under scripts/with_display.sh)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.evaluation import figures
from studies import compare_pictures as cp


@pytest.fixture()
def toy_copy(toy_trained, tmp_path):
    """A private copy of the toy data set (the session's one is shared with other tests)."""
    return Path(shutil.copytree(toy_trained["data"], tmp_path / "toy"))


def _add_train_shape(data: Path, new_id: str, like: str = "ball0") -> None:
    """A training shape the checkpoint never saw (same samples as ``like``, a new id)."""
    manifest = json.loads((data / "manifest.json").read_text())
    record = dict(next(r for r in manifest["shapes"] if r["id"] == like))
    record["id"] = new_id
    manifest["shapes"].append(record)
    (data / "manifest.json").write_text(json.dumps(manifest))
    splits = json.loads((data / "splits" / "train.json").read_text())
    splits["toy"][record["class_name"]].append(new_id)
    (data / "splits" / "train.json").write_text(json.dumps(splits))


def test_train_split_writes_picture_and_one_json_row_per_shape(toy_trained, toy_copy, tmp_path):
    from PIL import Image

    _add_train_shape(toy_copy, "ball_unseen")
    out = tmp_path / "img" / "compare.png"
    columns = [cp.Column("tiny", toy_trained["ckpt"]), cp.Column("again", toy_trained["ckpt"])]
    report = cp.compare(
        toy_copy, columns, out, split="train", shape_ids=["ball0", "slab0", "ball_unseen"], resolution=32
    )

    image = Image.open(out)
    assert image.width == figures.LEFT + 3 * cp.CELL  # ground truth + two checkpoints
    assert image.height == figures.HEADER + 3 * (cp.CELL + figures.CAPTION) + figures.FOOTER
    pixels = np.asarray(image.convert("L"))
    top, left = figures.HEADER, figures.LEFT + cp.CELL
    first_model_cell = pixels[top : top + cp.CELL, left : left + cp.CELL]
    assert (first_model_cell < 200).mean() > 0.01  # a shape was drawn there, not a blank cell

    data = json.loads(out.with_suffix(".json").read_text())
    assert data == json.loads(json.dumps(report))
    assert [(r["class"], r["id"]) for r in data["rows"]] == [
        ("ball", "ball0"),
        ("slab", "slab0"),
        ("ball", "ball_unseen"),
    ]
    for row in data["rows"][:2]:
        assert set(row["cells"]) == {"tiny", "again"}
        for cell in row["cells"].values():
            assert cell["status"] == "ok"
            assert 0.0 <= cell["fscore_1pct"] <= 100.0
    # The same checkpoint twice measures the same (one seed for the metrics' sampling).
    assert data["rows"][0]["cells"]["tiny"] == data["rows"][0]["cells"]["again"]
    # The trained ball is its own shape: most of it within 1 % of the object's size.
    assert data["rows"][0]["cells"]["tiny"]["fscore_1pct"] > 50.0
    assert data["rows"][2]["cells"]["tiny"] == {"status": "not trained"}
    assert data["mean"]["tiny"]["fscore_1pct"] == pytest.approx(
        np.mean([r["cells"]["tiny"]["fscore_1pct"] for r in data["rows"][:2]]), abs=0.01
    )


def test_test_split_fits_codes_by_tto_with_colour(toy_trained, tmp_path):
    out = tmp_path / "tto.png"
    report = cp.compare(
        toy_trained["data"],
        [cp.Column("tiny", toy_trained["ckpt"])],
        out,
        split="test",
        per_class=1,
        resolution=32,
        tto_iterations=20,
    )
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert {r["id"] for r in report["rows"]} == {"ball2", "slab2"}
    assert report["tto"]["iterations"] == 20 and report["tto"]["fit_colour"] is True
    for row in report["rows"]:
        cell = row["cells"]["tiny"]
        assert cell["status"] in ("ok", "empty")
        assert cell["fscore_1pct"] is not None
    ball = next(r for r in report["rows"] if r["id"] == "ball2")["cells"]["tiny"]
    assert ball["colour_psnr"] is not None  # the colour head coloured the fitted mesh
    assert 0 <= ball["colour_delta_e"] < 100  # and its perceptual error is read beside PSNR


def test_ground_truth_comes_from_the_source_mesh_in_the_sample_frame(toy_copy):
    import trimesh

    from core.evaluation.ground_truth import load_ground_truth
    from core.evaluation.held_out_split import list_split

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.55)
    sphere.visual.vertex_colors = np.tile([230, 50, 50, 255], (len(sphere.vertices), 1)).astype(np.uint8)
    source = toy_copy / "ball0.ply"
    sphere.export(source)
    manifest = json.loads((toy_copy / "manifest.json").read_text())
    next(r for r in manifest["shapes"] if r["id"] == "ball0")["source"] = str(source)
    (toy_copy / "manifest.json").write_text(json.dumps(manifest))

    shape = next(s for s in list_split(toy_copy, "train") if s.id == "ball0")
    (vertices, faces, colours), kind = cp.ground_truth_picture(shape, load_ground_truth(shape.file), toy_copy)
    assert kind == "mesh"
    assert len(faces) == len(sphere.faces)
    np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), 0.55, atol=1e-4)  # offset 0, scale 1
    np.testing.assert_allclose(colours, np.tile([230 / 255, 50 / 255, 50 / 255], (len(faces), 1)), atol=0.02)


def test_without_a_source_mesh_the_surface_points_are_drawn(toy_trained):
    from core.evaluation.ground_truth import load_ground_truth
    from core.evaluation.held_out_split import list_split

    shape = list_split(toy_trained["data"], "train")[0]
    gt = load_ground_truth(shape.file)
    (vertices, faces, colours), kind = cp.ground_truth_picture(shape, gt, toy_trained["data"])
    assert kind == "surface points"
    n = min(len(gt["surface_points"]), cp.MAX_SURFELS)
    assert faces.shape == (n, 3) and vertices.shape == (3 * n, 3) and colours.shape == (3 * n, 3)
    # each surfel lies in the tangent plane of its point: corners are radius away from a surface point
    centres = vertices.reshape(n, 3, 3).mean(axis=1)
    nearest = np.min(np.linalg.norm(centres[:, None] - gt["surface_points"][None], axis=2), axis=1)
    assert nearest.max() < 1e-5


def test_unknown_shape_id_is_named_and_the_other_split_suggested(toy_trained, tmp_path, capsys):
    with pytest.raises(cp.CompareError, match="'no_such_shape'"):
        cp.select_shapes(toy_trained["data"], "train", ["ball0", "no_such_shape"], 1)
    with pytest.raises(cp.CompareError, match="'ball2' \\(it is in split 'test': use --split test\\)"):
        cp.select_shapes(toy_trained["data"], "train", ["ball2"], 1)

    out = tmp_path / "never.png"
    code = cp.main(
        [
            "--data",
            str(toy_trained["data"]),
            "--ckpt",
            f"tiny={toy_trained['ckpt']}",
            "--shapes",
            "nope",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'nope'" in err and "Traceback" not in err
    assert not out.exists() and not out.with_suffix(".json").exists()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("demo", "expected NAME=PATH"),
        ("demo=does/not/exist.pt", "does not exist"),
    ],
)
def test_bad_checkpoint_specs_are_refused(spec, message):
    with pytest.raises(cp.CompareError, match=message):
        cp.parse_checkpoints([spec])


def test_checkpoint_names_must_differ(toy_trained):
    with pytest.raises(cp.CompareError, match="used twice"):
        cp.parse_checkpoints([f"a={toy_trained['ckpt']}", f"a={toy_trained['ckpt']}"])


def test_columns_can_fit_with_their_own_tto_losses(toy_trained, tmp_path):
    """The same checkpoint in two columns, one plain and one with the decoder fine-tuned: different fits."""
    columns = cp.parse_checkpoints([f"plain={toy_trained['ckpt']}", f"tuned={toy_trained['ckpt']}"])
    cp.apply_column_losses(columns, ["tuned=finetune"], "test")
    assert [c.losses for c in columns] == ["baseline", "finetune"]
    report = cp.compare(
        toy_trained["data"], columns, tmp_path / "l.png", split="test", per_class=1, resolution=32, tto_iterations=10
    )
    assert report["tto_losses"] == {"plain": "baseline", "tuned": "finetune"}
    ball = next(r for r in report["rows"] if r["id"] == "ball2")["cells"]
    assert ball["plain"]["chamfer_x1e3"] != pytest.approx(ball["tuned"]["chamfer_x1e3"], rel=1e-6)
    for specs, split, message in (
        (["nobody=finetune"], "test", "one of the --ckpt names"),
        (["plain=bogus"], "test", "unknown loss set"),
        (["plain=finetune"], "train", "trained codes"),
    ):
        with pytest.raises(cp.CompareError, match=message):
            cp.apply_column_losses(cp.parse_checkpoints([f"plain={toy_trained['ckpt']}"]), specs, split)


def test_floaters_paints_fragments_red_beside_the_exact_sdf_on_the_grid(toy_trained, toy_copy, tmp_path):
    """``--floaters``: a column of the source's exact SDF meshed on the same grid (its separate small
    part counted as a floater there), every mesh grey with its floaters red, the counts in the JSON."""
    import trimesh
    from PIL import Image

    box = trimesh.creation.box(extents=(1.3, 0.24, 1.0))  # about slab0's size (0.7 × 0.12 × 0.5 half-extents)
    cube = trimesh.creation.box(extents=(0.14, 0.14, 0.14))
    cube.apply_translation((0.0, 0.6, 0.0))  # apart from the box: a floater of the exact SDF too
    source = toy_copy / "slab0.obj"
    trimesh.util.concatenate([box, cube]).export(source)
    manifest = json.loads((toy_copy / "manifest.json").read_text())
    next(r for r in manifest["shapes"] if r["id"] == "slab0")["source"] = str(source)
    (toy_copy / "manifest.json").write_text(json.dumps(manifest))

    out = tmp_path / "floaters.png"
    report = cp.compare(
        toy_copy,
        [cp.Column("tiny", toy_trained["ckpt"])],
        out,
        split="train",
        shape_ids=["slab0", "ball0"],
        resolution=32,
        floaters=True,
    )
    image = Image.open(out).convert("RGB")
    assert image.width == figures.LEFT + 3 * cp.CELL  # ground truth, exact SDF on the grid, the checkpoint
    slab, ball = report["rows"]
    assert slab["gt_grid_floaters"] == 1 and ball["gt_grid_floaters"] is None  # the ball has no source mesh
    assert isinstance(slab["cells"]["tiny"]["floaters"], int)
    top, left = figures.HEADER, figures.LEFT + cp.CELL
    grid_cell = np.asarray(image)[top : top + cp.CELL, left : left + cp.CELL].astype(int)
    red = (grid_cell[..., 0] > 150) & (grid_cell[..., 1] < 90) & (grid_cell[..., 2] < 90)
    grey = (np.abs(grid_cell[..., 0] - grid_cell[..., 1]) < 12) & (grid_cell[..., 0] < 230) & (grid_cell[..., 0] > 60)
    assert red.sum() > 20 and grey.sum() > 20 * red.sum()  # the small cube red, the slab grey
