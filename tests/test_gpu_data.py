"""scripts/gpu_data.py: a training set packed into parts small enough for a device call, and merged back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from core.data.samples import read_samples
from core.data.training_set import SdfDataSet
from core.model.trained_model import load_checkpoint_model
from scripts import gpu_data
from tests.conftest import write_analytic_dataset

ROOT = Path(__file__).resolve().parents[1]


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


def _gpu_train_env(tmp_path, models: str) -> dict[str, str]:
    """scripts/gpu_train_real.sh's settings for a few seconds on the CPU, on a packed analytic set."""
    data = write_analytic_dataset(tmp_path / "data", n_samples=2000, n_surface=200)
    assert (
        gpu_data.main(
            ["pack", "--data", str(data), "--samples", "1200", "--parts", "1", "--out", str(tmp_path / "pack")]
        )
        == 0
    )
    return dict(
        os.environ,
        GPU_TRAIN_DEVICE="cpu",
        GPU_TRAIN_SECONDS="8",
        GPU_TRAIN_EPOCHS="3",
        GPU_TRAIN_PYTHON=sys.executable,
        GPU_TRAIN_MODELS=models,
        GPU_TRAIN_DATA=str(tmp_path / "pack"),
        GPU_TRAIN_CLASSES='["ball","slab"]',
        GPU_TRAIN_BATCH="--set train.shapes_per_batch=2 --set train.samples_per_shape=256",
        OUT=str(tmp_path / "out"),
    )


def test_gpu_training_trains_each_arm_with_its_own_settings_and_packs_each_into_one_file(tmp_path):
    """A study's arms in one device call: each arm's `--set`s reach its run, and each arm comes back as one
    archive (a device call returns at most 8 files)."""
    env = dict(_gpu_train_env(tmp_path, "plain=tiny small_code=tiny:model.code_size=16"), GPU_TRAIN_PACK="1")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_train_real.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["plain.tar.gz", "small_code.tar.gz", "summary.txt"]
    sizes = {}
    for name in ("plain", "small_code"):
        with tarfile.open(out / f"{name}.tar.gz") as archive:
            members = {Path(m).name for m in archive.getnames()} - {"", "."}
            assert members == {f"{name}.pt", f"{name}_log.csv", f"{name}_train.log"}
            archive.extractall(tmp_path / name, filter="data")
        sizes[name] = load_checkpoint_model(tmp_path / name / f"{name}.pt").code_size
    assert sizes["small_code"] == 16 and sizes["plain"] != 16


def test_gpu_training_refuses_an_arm_name_that_is_not_a_plain_file_name(tmp_path):
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_train_real.sh")],
        env=_gpu_train_env(tmp_path, "../escape=tiny"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "NAME of letters, digits" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.txt"]
