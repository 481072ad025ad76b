"""scripts/gpu_data.py: a training set packed into parts small enough for a device call, and merged back."""

from __future__ import annotations

import json

import numpy as np

from core.data.samples import read_samples
from core.data.training_set import SdfDataSet
from scripts import gpu_data
from tests.conftest import write_analytic_dataset


def test_pack_splits_each_training_shape_into_disjoint_parts_that_merge_back(tmp_path):
    data = write_analytic_dataset(tmp_path / "data", n_samples=2000, n_surface=200)
    assert (
        gpu_data.main(
            ["pack", "--data", str(data), "--samples", "1200", "--parts", "2", "--out", str(tmp_path / "pack")]
        )
        == 0
    )
    parts = sorted((tmp_path / "pack").glob("part-*"))
    assert [p.name for p in parts] == ["part-1", "part-2"]
    train_ids = {r["id"] for r in json.loads((data / "manifest.json").read_text())["shapes"] if r["split"] == "train"}
    for part in parts:
        manifest = json.loads((part / "manifest.json").read_text())
        assert {r["id"] for r in manifest["shapes"]} == train_ids  # the training split only
        assert SdfDataSet(part).shapes  # each part is a data set of its own
    record = json.loads((parts[0] / "manifest.json").read_text())["shapes"][0]
    a, b = (read_samples(p / record["file"]) for p in parts)
    assert len(a.pos) + len(a.neg) == 600 and a.pos_rgb is not None and a.pos_view is None
    rows_a = {tuple(r) for r in np.concatenate([a.pos, a.neg]).round(3).tolist()}
    rows_b = {tuple(r) for r in np.concatenate([b.pos, b.neg]).round(3).tolist()}
    assert len(rows_a & rows_b) < 0.05 * len(rows_a)  # disjoint draws (float16 rounding aside)
    assert np.load(parts[0] / record["file"])["pos"].dtype == np.float16  # the compact form

    assert gpu_data.main(["merge", *map(str, parts), "--out", str(tmp_path / "merged")]) == 0
    merged = SdfDataSet(tmp_path / "merged")
    assert len(merged) == len(train_ids)
    whole = read_samples(tmp_path / "merged" / record["file"])
    assert len(whole.pos) + len(whole.neg) == 1200


def test_a_manifest_naming_files_outside_its_folder_is_refused(tmp_path, capsys):
    data = write_analytic_dataset(tmp_path / "data", n_samples=400, n_surface=100)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["shapes"][0]["file"] = "../../elsewhere.npz"
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert gpu_data.main(["pack", "--data", str(data), "--samples", "100", "--out", str(tmp_path / "pack")]) == 2
    assert "outside the data set" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.npz").exists()
