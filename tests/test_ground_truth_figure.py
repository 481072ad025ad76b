"""studies/ground_truth_figure.py on a data set preprocessed here from meshes the test builds: an open
box (its top missing: the open-mesh field's case) and a closed ball (the exact winding field's case).
Rendering needs a display (run under scripts/with_display.sh)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

import main
from studies import ground_truth_figure as gtf


def _open_box(path: Path) -> None:
    box = trimesh.creation.box(extents=(1.0, 0.8, 0.6))
    top = box.triangles_center[:, 2] > 0.29
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.Trimesh(box.vertices, box.faces[~top], process=False).export(path)


def test_figure_shows_both_fields_of_each_shape_with_their_numbers(tmp_path, capsys):
    from PIL import Image

    meshes = tmp_path / "meshes"
    _open_box(meshes / "box" / "open_box.ply")
    (meshes / "ball").mkdir()
    trimesh.creation.icosphere(subdivisions=3, radius=0.6).export(meshes / "ball" / "ball.stl")
    data = tmp_path / "data"
    assert (
        main.main(
            [
                "preprocess",
                "--source",
                "folder",
                "--input",
                str(meshes),
                "--out",
                str(data),
                "--samples",
                "2000",
                "--surface-samples",
                "200",
                "--no-progress",
                "--test-fraction",
                "0",
            ]
        )
        == 0
    )

    out = tmp_path / "img" / "gt.png"
    assert gtf.main(["--data", str(data), "--resolution", "32", "--out", str(out), "open_box", "ball"]) == 0
    image = np.asarray(Image.open(out).convert("L"))
    assert image.shape[1] > 2 * 200 and (image < 200).mean() > 0.01  # two columns, shapes drawn
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers["resolution"] == 32 and list(numbers["shapes"]) == ["open_box", "ball"]
    box_winding, box_recorded = numbers["shapes"]["open_box"]
    assert box_winding["method"] == "winding" and box_recorded["method"] == "dilated_fill"
    ball_winding, ball_recorded = numbers["shapes"]["ball"]
    assert ball_winding["method"] == "winding" and ball_recorded["method"] != "dilated_fill"
    for row in (box_recorded, ball_winding, ball_recorded):
        assert row["torn_pieces"] == 0 and row["missing_parts"] == 0


def test_a_pattern_no_shape_matches_is_a_clear_error(tmp_path, capsys):
    meshes = tmp_path / "meshes"
    (meshes / "ball").mkdir(parents=True)
    trimesh.creation.icosphere(subdivisions=2, radius=0.6).export(meshes / "ball" / "ball.stl")
    data = tmp_path / "data"
    assert (
        main.main(
            [
                "preprocess",
                "--source",
                "folder",
                "--input",
                str(meshes),
                "--out",
                str(data),
                "--samples",
                "1000",
                "--surface-samples",
                "100",
                "--no-progress",
                "--test-fraction",
                "0",
            ]
        )
        == 0
    )
    out = tmp_path / "gt.png"
    assert gtf.main(["--data", str(data), "--out", str(out), "chair"]) == 2
    assert "no shape id contains 'chair'" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--out", "{tmp}", "is a folder"),
        ("--out", "{tmp}/figure.jpg", "end the name with .png"),
        ("--data", "{tmp}/not_a_folder.txt", "manifest.json: missing"),
    ],
)
def test_bad_paths_are_refused_in_one_line(tmp_path, capsys, flag, value, message):
    (tmp_path / "not_a_folder.txt").write_text("a file, not a data set")
    argv = {"--data": str(tmp_path), "--out": str(tmp_path / "gt.png"), flag: value.format(tmp=tmp_path)}
    assert gtf.main([*(x for pair in argv.items() for x in pair), "chair"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "gt.png").exists()


@pytest.mark.parametrize("value", ["0", "-96", "nan", "4096"])
def test_a_resolution_outside_the_project_s_limits_is_refused(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        gtf.main(["--data", str(tmp_path), "--out", str(tmp_path / "gt.png"), "--resolution", value, "chair"])
    assert exit_.value.code == 2 and "--resolution" in capsys.readouterr().err
