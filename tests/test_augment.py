"""Augmented data sets (core.data.augment, `main.py augment`): resampled scaled / mirrored copies of the
training shapes, the originals linked, resumable, bad meshes skipped, and a warm start on the new set."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

import main
from core.data.augment import AugmentConfig, augment_dataset, copy_factors, transformed_mesh
from core.data.mesh_io import load_mesh
from core.data.preprocess import PreprocessConfig, preprocess_dataset
from core.data.samples import read_samples
from core.data.sources.jobs import MeshJob
from core.model.checkpoint import read_checkpoint
from core.training import build_run_config, train
from core.utils.errors import ConfigError, DataSetError

SMALL = PreprocessConfig(n_samples=3000, n_surface=500, dataset_name="t")
BOXES = {"red": (1.0, 0.6, 0.4), "blue": (0.5, 0.8, 0.3)}


def _box(path: Path, extents, colour) -> None:
    mesh = trimesh.creation.box(extents=extents)
    mesh.visual.vertex_colors = np.tile(np.array(colour, np.uint8), (len(mesh.vertices), 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)


@pytest.fixture(scope="module")
def source_set(tmp_path_factory) -> Path:
    """Two boxes and a ball to train on, a ball held out, preprocessed by the project's pipeline."""
    root = tmp_path_factory.mktemp("augment")
    _box(root / "meshes" / "red.ply", BOXES["red"], (200, 30, 30, 255))
    _box(root / "meshes" / "blue.ply", BOXES["blue"], (20, 40, 220, 255))
    trimesh.creation.icosphere(subdivisions=3, radius=0.7).export(root / "meshes" / "big.stl")
    trimesh.creation.icosphere(subdivisions=3, radius=0.5).export(root / "meshes" / "small.stl")
    jobs = [
        MeshJob("red", "box", root / "meshes" / "red.ply"),
        MeshJob("blue", "box", root / "meshes" / "blue.ply"),
        MeshJob("big", "ball", root / "meshes" / "big.stl"),
        MeshJob("small", "ball", root / "meshes" / "small.stl", split="test"),
    ]
    preprocess_dataset(jobs, root / "data", SMALL, progress=False)
    return root / "data"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_copy_factors_are_small_reproducible_and_mirror_about_half_the_copies():
    config = AugmentConfig(max_scale=1.25)
    draws = np.array([copy_factors(config, "table", f"t{i}", 1) for i in range(200)])
    assert np.array_equal(draws[7], copy_factors(config, "table", "t7", 1))
    assert not np.array_equal(draws[7], copy_factors(config, "table", "t7", 2))
    assert np.all(np.abs(draws) >= 1 / 1.25 - 1e-9) and np.all(np.abs(draws) <= 1.25 + 1e-9)
    assert np.all(draws[:, 1:] > 0)  # the up axis and depth never flip
    assert 60 < (draws[:, 0] < 0).sum() < 140
    plain = np.array([copy_factors(AugmentConfig(mirror=False), "table", f"t{i}", 1) for i in range(50)])
    assert np.all(plain > 0)
    with pytest.raises(ConfigError, match="max_scale"):
        AugmentConfig(max_scale=3.0)
    with pytest.raises(ConfigError, match="copies"):
        AugmentConfig(copies=0)


def test_a_mirrored_copy_keeps_its_faces_facing_outward(tmp_path):
    _box(tmp_path / "box.ply", (1.0, 0.6, 0.4), (200, 30, 30, 255))
    mesh = load_mesh(tmp_path / "box.ply")
    factors = np.array([-1.2, 1.0, 0.9])
    moved = transformed_mesh(mesh, factors)
    assert np.allclose(np.ptp(moved.vertices, axis=0), np.array([1.2, 0.6, 0.36]))
    assert trimesh.Trimesh(moved.vertices, moved.faces, process=False).volume > 0
    # the flip is what keeps it outward: the same vertices with the old faces are inside out
    assert trimesh.Trimesh(moved.vertices, mesh.faces, process=False).volume < 0
    kept = transformed_mesh(mesh, np.array([1.1, 0.9, 1.0]))
    assert np.array_equal(kept.faces, mesh.faces)


def test_augment_links_every_shape_and_adds_resampled_copies_to_training_only(source_set, tmp_path):
    before = _snapshot(source_set)
    out = tmp_path / "aug"
    report = augment_dataset(source_set, out, AugmentConfig(copies=2), progress=False)
    assert (report.linked, report.made, report.reused, report.failures) == (4, 6, 0, [])
    assert _snapshot(source_set) == before  # the source is read only

    manifest = json.loads((out / "manifest.json").read_text())
    copies = [r for r in manifest["shapes"] if r.get("augment_of")]
    assert sorted(r["id"] for r in copies) == sorted(f"{s}_aug{k}" for s in ("red", "blue", "big") for k in (1, 2))
    assert all(r["split"] == "train" for r in copies)
    test = json.loads((out / "splits" / "test.json").read_text())
    assert test == json.loads((source_set / "splits" / "test.json").read_text())
    train_ids = {
        i for per_class in json.loads((out / "splits" / "train.json").read_text())["t"].values() for i in per_class
    }
    assert {r["id"] for r in copies} <= train_ids
    for record in manifest["shapes"]:
        if not record.get("augment_of"):
            assert os.path.samefile(out / record["file"], source_set / record["file"])  # linked, not copied
    for copy in copies:
        factors = np.asarray(copy["augment"]["factors"])
        assert np.allclose(
            factors,
            copy_factors(
                AugmentConfig(copies=2), copy["class_name"], copy["augment_of"], int(copy["id"].rsplit("_aug", 1)[1])
            ),
            atol=1e-6,
        )
        samples = read_samples(out / copy["file"])
        assert len(samples.neg) > 0.2 * (len(samples.pos) + len(samples.neg))  # inside is inside, mirrored or not
        if copy["class_name"] == "box":
            # a box's sampled surface spans its extents exactly: the copy's are the source's times the factors,
            # up to the unit-sphere normalisation's one scale
            original = read_samples(
                source_set / next(r["file"] for r in manifest["shapes"] if r["id"] == copy["augment_of"])
            )
            ratio = np.ptp(samples.surface_points, axis=0) / np.ptp(original.surface_points, axis=0)
            assert np.allclose(ratio / ratio[0], np.abs(factors) / abs(factors[0]), rtol=1e-3)


def test_augment_resumes_and_refuses_folders_it_did_not_make(source_set, tmp_path):
    out = tmp_path / "aug"
    augment_dataset(source_set, out, AugmentConfig(), progress=False)
    again = augment_dataset(source_set, out, AugmentConfig(), progress=False)
    assert (again.made, again.reused) == (0, 3)
    with pytest.raises(DataSetError, match="other augmentation settings"):
        augment_dataset(source_set, out, AugmentConfig(max_scale=1.1), progress=False)
    first = {p.name: p.stat().st_mtime_ns for p in out.rglob("*_aug1.npz")}
    more = augment_dataset(source_set, out, AugmentConfig(copies=2), progress=False)
    assert (more.made, more.reused) == (3, 3)  # a second copy of each; the first ones kept as they were
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*_aug1.npz")} == first
    with pytest.raises(DataSetError, match="must go to a new folder"):
        augment_dataset(source_set, source_set, AugmentConfig(), progress=False)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataSetError, match="not empty and not an augmented data set"):
        augment_dataset(source_set, foreign, AugmentConfig(), progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(DataSetError, match="a file, not a folder"):
        augment_dataset(source_set, foreign / "notes.txt", AugmentConfig(), progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(DataSetError, match="itself a copy"):
        augment_dataset(out, tmp_path / "twice", AugmentConfig(), progress=False)


def test_a_copy_whose_mesh_is_gone_or_broken_is_logged_and_skipped(source_set, tmp_path, caplog):
    data = tmp_path / "data"
    shutil.copytree(source_set, data)
    manifest = json.loads((data / "manifest.json").read_text())
    broken = tmp_path / "broken.obj"
    broken.write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    for record in manifest["shapes"]:
        if record["id"] == "red":
            record["source"] = str(tmp_path / "gone.ply")
        if record["id"] == "big":
            record["source"] = str(broken)
    (data / "manifest.json").write_text(json.dumps(manifest))
    report = augment_dataset(data, tmp_path / "aug", AugmentConfig(), progress=False)
    assert report.made == 1 and sorted(f[0] for f in report.failures) == ["big_aug1", "red_aug1"]
    assert "gone.ply" in dict(report.failures)["red_aug1"]
    assert "red_aug1" in caplog.text
    written = json.loads((tmp_path / "aug" / "manifest.json").read_text())
    assert sorted(r["id"] for r in written["shapes"] if r.get("augment_of")) == ["blue_aug1"]


def test_a_warm_start_on_an_augmented_set_starts_each_copy_at_its_source_code(
    source_set, tmp_path, restore_torch_threads
):
    base = ["train.samples_per_shape=512", "train.checkpoint_every=1000"]
    source = train(
        build_run_config("tiny", overrides=["train.epochs=2", *base]), source_set, tmp_path / "src", progress=False
    ).checkpoint
    out = tmp_path / "aug"
    assert main.main(["augment", "--data", str(source_set), "--out", str(out), "--no-progress"]) == 0
    frozen = [
        "train.epochs=1",
        "train.lr_decoder=0",
        "train.lr_codes=0",
        "train.code_reg=0",
        f"train.init_from={source}",
    ]
    warm = train(build_run_config("tiny", overrides=[*base, *frozen]), out, tmp_path / "warm", progress=False)
    before, after = read_checkpoint(source), read_checkpoint(warm.checkpoint)
    code_of = {i: before["model_state"]["shape_codes.weight"][n] for n, i in enumerate(before["shape_ids"])}
    assert len(after["shape_ids"]) == 2 * len(before["shape_ids"])
    for n, shape_id in enumerate(after["shape_ids"]):
        assert torch.equal(after["model_state"]["shape_codes.weight"][n], code_of[shape_id.split("_aug")[0]])
    assert all(torch.equal(after["model_state"][k], v) for k, v in before["model_state"].items() if "codes" not in k)


def test_a_second_run_into_a_folder_being_written_is_refused(source_set, tmp_path):
    from core.data.augment import LOCK_NAME
    from core.utils.folder_lock import FolderLock

    out = tmp_path / "aug"
    with FolderLock(out / LOCK_NAME, "augment", "Wait for it to finish."):
        with pytest.raises(DataSetError, match="augment"):
            augment_dataset(source_set, out, AugmentConfig(), progress=False)
    assert not (out / "manifest.json").exists()


def test_a_data_set_with_a_missing_sample_file_is_refused_with_its_name(source_set, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(source_set, data)
    manifest = json.loads((data / "manifest.json").read_text())
    missing = data / next(r["file"] for r in manifest["shapes"] if r["id"] == "blue")
    missing.unlink()
    with pytest.raises(DataSetError, match=f"{missing.name}: missing.*preprocess command again"):
        augment_dataset(data, tmp_path / "aug", AugmentConfig(), progress=False)


def test_a_cancelled_run_keeps_its_finished_copies_and_the_same_command_finishes_it(source_set, tmp_path):
    out = tmp_path / "aug"
    first = augment_dataset(source_set, out, AugmentConfig(copies=2), cancel=lambda: True, progress=False)
    assert first.cancelled and 1 <= first.made < 6
    written = json.loads((out / "manifest.json").read_text())
    assert sum(1 for r in written["shapes"] if r.get("augment_of")) == first.made
    rest = augment_dataset(source_set, out, AugmentConfig(copies=2), progress=False)
    assert (rest.reused, rest.made, rest.cancelled) == (first.made, 6 - first.made, False)


def test_the_command_exits_1_when_no_copy_could_be_made_and_names_bad_settings(source_set, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(source_set, data)
    manifest = json.loads((data / "manifest.json").read_text())
    for record in manifest["shapes"]:
        record["source"] = str(tmp_path / "gone.ply")
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert main.main(["augment", "--data", str(data), "--out", str(tmp_path / "aug"), "--no-progress"]) == 1
    assert "3 failed" in capsys.readouterr().out
    (tmp_path / "a_file").write_text("x")
    assert main.main(["augment", "--data", str(data), "--out", str(tmp_path / "a_file")]) == 2
    assert main.main(["augment", "--data", str(data), "--out", str(tmp_path / "b"), "--max-scale", "nan"]) == 2
    err = capsys.readouterr().err
    assert "a file, not a folder" in err and "max_scale: nan" in err and "Traceback" not in err
    assert (tmp_path / "a_file").read_text() == "x" and not (tmp_path / "b").exists()
