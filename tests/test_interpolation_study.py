"""studies/interpolation_study.py: its measures say what they claim on meshes made here, and the
study runs end to end on a tiny model trained here on the analytic toy set (conftest's ``toy_data_dir``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from studies.interpolation_study import (
    CollapseRule,
    collapse_reasons,
    enclosed_volume,
    main,
    obb_ratio,
    rescore,
    shape_measures,
    volume_ratio,
)

PITCH = 2.0 / 63


def _measures(mesh: trimesh.Trimesh, t: float | None = None) -> dict:
    m = shape_measures(mesh.vertices, mesh.faces, PITCH)
    if t is not None:
        m["t"] = t
    return m


def _table() -> trimesh.Trimesh:
    """A top on four slender legs: the end point with thin parts."""
    parts = [trimesh.creation.box(extents=(1.2, 0.06, 0.8)).apply_translation((0, 0.4, 0))]
    for x in (-0.55, 0.55):
        for z in (-0.35, 0.35):
            parts.append(trimesh.creation.box(extents=(0.05, 0.8, 0.05)).apply_translation((x, 0, z)))
    return trimesh.util.concatenate(parts)


def test_volume_of_sphere_against_box():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    v_sphere, method = enclosed_volume(sphere.vertices, sphere.faces, PITCH)
    v_box, _ = enclosed_volume(box.vertices, box.faces, PITCH)
    assert method == "mesh"
    assert v_box == pytest.approx(1.0, rel=1e-6)
    assert v_sphere / v_box == pytest.approx(np.pi / 6, rel=0.01)  # 4/3 pi 0.5^3
    # a sphere-sized mid-shape between two unit boxes holds about half the expected volume
    assert volume_ratio(v_sphere, v_box, v_box) == pytest.approx(np.pi / 6, rel=0.01)
    # inside the ends' range is 1 whatever t: a blend that still is one end is not short of bulk
    assert volume_ratio(v_sphere, v_sphere, 20 * v_box) == 1.0
    assert volume_ratio(40 * v_box, v_sphere, 20 * v_box) == pytest.approx(2.0)


def test_open_mesh_volume_falls_back_to_voxels():
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    cube = trimesh.creation.box(extents=(1.0, 1.0, 1.0)).subdivide().subdivide()
    open_box = trimesh.Trimesh(cube.vertices, cube.faces[2:], process=False)  # two small faces missing
    assert not open_box.is_watertight
    volume, method = enclosed_volume(open_box.vertices, open_box.faces, PITCH)
    assert method == "voxels"
    assert volume == pytest.approx(enclosed_volume(box.vertices, box.faces, PITCH)[0], rel=0.15)


def test_flat_slab_is_collapsed_and_cube_is_not():
    ends = (
        _measures(trimesh.creation.box(extents=(1.0, 1.0, 1.0)), 0.0),
        _measures(trimesh.creation.icosphere(subdivisions=3, radius=0.5), 1.0),
    )
    slab = _measures(trimesh.creation.box(extents=(2.0, 0.15, 2.0)), 0.5)  # same bulk, flattened
    cube = _measures(trimesh.creation.box(extents=(0.9, 0.9, 0.9)), 0.5)
    for mid in (slab, cube):
        mid["volume_ratio"] = volume_ratio(mid["volume"], ends[0]["volume"], ends[1]["volume"])
    assert 0.5 <= slab["volume_ratio"] <= 2.0  # only its shape gives it away
    assert slab["obb_ratio"] < CollapseRule().slab_ratio < CollapseRule().ends_not_slab < cube["obb_ratio"]
    reasons = collapse_reasons(slab, *ends)
    assert reasons and all(r.startswith("slab") for r in reasons)
    assert collapse_reasons(cube, *ends) == []


def test_losing_the_legs_is_collapse_and_keeping_them_is_not():
    table = _measures(_table(), 0.0)
    assert table["thin_share"] > CollapseRule().thin_present  # the legs are thin parts
    other = dict(table, t=1.0)
    block = _measures(trimesh.creation.box(extents=(1.2, 0.8, 0.8)), 0.5)  # the legs filled in: a block
    block["volume_ratio"] = 1.0  # judge the thin parts alone
    reasons = collapse_reasons(block, table, other)
    assert len(reasons) == 1 and reasons[0].startswith("thin parts lost")
    kept = dict(table, t=0.5, volume_ratio=1.0)
    assert collapse_reasons(kept, table, other) == []


def test_an_intact_end_shape_is_not_collapse_but_breaking_apart_is():
    """The viewer's nearer-end condition keeps a blend close to one end, then switches: a whole table at
    t = 0.25 of a table -> big block blend holds far less than the blended volume and is still no collapse;
    the same table with its legs cut off into floating pieces is."""
    table = _measures(_table(), 0.0)
    block = _measures(trimesh.creation.box(extents=(1.5, 1.5, 1.5)), 1.0)  # 10x the table's volume, no thin parts
    still_table = dict(table, t=0.25)
    still_table["volume_ratio"] = volume_ratio(still_table["volume"], table["volume"], block["volume"])
    assert collapse_reasons(still_table, table, block) == []
    # near the block, losing the table's legs is what the blend should do
    blocky = dict(block, t=0.75, volume_ratio=1.0)
    assert collapse_reasons(blocky, table, block) == []
    parts = [trimesh.creation.box(extents=(1.2, 0.06, 0.8)).apply_translation((0, 0.4, 0))]
    for x in (-0.55, 0.55):  # legs cut 0.1 below the top: floating pieces
        for z in (-0.35, 0.35):
            parts.append(trimesh.creation.box(extents=(0.05, 0.6, 0.05)).apply_translation((x, -0.1, z)))
    broken = _measures(trimesh.util.concatenate(parts), 0.25)
    broken["volume_ratio"] = volume_ratio(broken["volume"], table["volume"], block["volume"])
    assert table["floaters"] == 0 and broken["floaters"] >= 4
    reasons = collapse_reasons(broken, table, block)
    assert any(r.startswith("broke apart") for r in reasons)  # (the top alone is also a slab: its main body)


def test_rescore_judges_saved_rows_by_todays_rule():
    table = _measures(_table(), 0.0)
    block = _measures(trimesh.creation.box(extents=(1.5, 1.5, 1.5)), 1.0)
    slab = _measures(trimesh.creation.box(extents=(2.0, 0.05, 2.0)), 0.5)
    saved = [
        dict(m, pair="a → b", collapsed=None, reasons=[], volume_ratio=0.0)
        for m in (block, dict(table, t=0.25), slab, table)
    ]  # unordered, stale verdicts
    rows = rescore(saved)
    assert [r["t"] for r in rows] == [0.0, 0.25, 0.5, 1.0]
    assert [r["collapsed"] for r in rows] == [None, False, True, None]
    assert saved[0]["collapsed"] is None and saved[2]["volume_ratio"] == 0.0  # the input is left as it was


def test_floaters_do_not_stretch_the_bounding_box():
    plate = trimesh.creation.box(extents=(1.0, 0.05, 1.0))
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.01).apply_translation((0, 0.9, 0))
    both = trimesh.util.concatenate([plate, speck])
    assert obb_ratio(both.vertices, both.faces) == pytest.approx(obb_ratio(plate.vertices, plate.faces), rel=1e-6)
    assert obb_ratio(plate.vertices, plate.faces) == pytest.approx(0.05, rel=1e-6)


@pytest.fixture(scope="module")
def toy_model(toy_data_dir, tmp_path_factory):
    """{"data", "ckpt"}: a tiny model trained briefly by the project's trainer on the analytic toy set."""
    import torch

    from core.training import build_run_config, train

    config = build_run_config(
        "tiny",
        overrides=[
            "train.epochs=60",
            "train.samples_per_shape=512",
            "train.checkpoint_every=1000",
            "train.lr_interval=1000",
        ],
    )
    threads = torch.get_num_threads()  # training sets its own thread count; put it back for the other tests
    try:
        run = train(config, toy_data_dir, tmp_path_factory.mktemp("interp_run"), progress=False)
    finally:
        torch.set_num_threads(threads)
    return {"data": toy_data_dir, "ckpt": run.checkpoint}


def test_main_writes_the_study_on_the_toy_model(toy_model, tmp_path, capsys):
    out, img = tmp_path / "out", tmp_path / "img"
    rc = main(
        [
            "--ckpt",
            str(toy_model["ckpt"]),
            "--data",
            str(toy_model["data"]),
            "--out",
            str(out),
            "--resolution",
            "32",
            "--tag",
            "toy",
            "--img-dir",
            str(img),
        ]
    )
    assert rc == 0
    result = json.loads((out / "interpolation.json").read_text())
    assert result["training_check"]["matched_codes"] == 4  # ball0, ball1, slab0, slab1
    rows = result["rows"]
    assert [r["t"] for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert {r["pair"] for r in rows} == {"ball0 → slab0"}  # no built-in class: consecutive toy classes
    assert [r["collapsed"] is None for r in rows] == [True, False, False, False, True]
    assert rows[0]["volume"] > 0 and rows[-1]["volume"] > 0
    assert rows[0]["volume_ratio"] == pytest.approx(1.0) and rows[-1]["volume_ratio"] == pytest.approx(1.0)
    assert all(0.0 < r["obb_ratio"] <= 1.0 for r in rows)  # the slab rule itself: test_slab_* above
    assert result["summary"]["mid_shapes"] == 3
    assert "| ball0 → slab0 | 0.50 |" in (out / "interpolation.md").read_text()
    assert (img / "interpolation_structure_toy.png").stat().st_size > 0
    assert "mid-shapes collapsed" in capsys.readouterr().out
    # the viewer's default keeps the nearer end's class; --condition linear blends it, a different shape
    assert result["condition"] == "nearest"
    assert "class condition of the nearer end" in (out / "interpolation.md").read_text()
    assert (
        main(
            [
                "--ckpt",
                str(toy_model["ckpt"]),
                "--data",
                str(toy_model["data"]),
                "--out",
                str(tmp_path / "lin"),
                "--resolution",
                "32",
                "--no-picture",
                "--condition",
                "linear",
            ]
        )
        == 0
    )
    linear = json.loads((tmp_path / "lin" / "interpolation.json").read_text())
    assert linear["condition"] == "linear"
    assert [r["volume"] for r in linear["rows"]][::4] == pytest.approx([r["volume"] for r in rows][::4])  # same ends
    assert linear["rows"][1]["volume"] != pytest.approx(rows[1]["volume"], rel=1e-3)
    # --spherical blends the codes by slerp: the same ends, other mid-shapes, recorded as such
    assert (
        main(
            [
                "--ckpt",
                str(toy_model["ckpt"]),
                "--data",
                str(toy_model["data"]),
                "--out",
                str(tmp_path / "sph"),
                "--resolution",
                "32",
                "--no-picture",
                "--spherical",
            ]
        )
        == 0
    )
    spherical = json.loads((tmp_path / "sph" / "interpolation.json").read_text())
    assert spherical["blend"] == "spherical" and result["blend"] == "linear"
    assert [r["volume"] for r in spherical["rows"]][::4] == pytest.approx([r["volume"] for r in rows][::4])
    assert spherical["rows"][2]["volume"] != pytest.approx(rows[2]["volume"], rel=1e-3)
    assert "spherical blend of shape and colour codes" in (tmp_path / "sph" / "interpolation.md").read_text()


def test_main_refuses_a_pair_of_one_class(toy_model, tmp_path, capsys):
    rc = main(
        [
            "--ckpt",
            str(toy_model["ckpt"]),
            "--data",
            str(toy_model["data"]),
            "--out",
            str(tmp_path),
            "--pair",
            "ball0:ball1",
            "--no-picture",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --pair ball0:ball1") and "two classes" in err
    assert not (tmp_path / "interpolation.json").exists()
