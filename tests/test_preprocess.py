"""Preprocessing end to end on meshes the tests make: samples, manifest, resume, failures, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

import main
from core.data.preprocess import PreprocessConfig, parse_shard, preprocess_dataset, sample_path
from core.data.sources.folder import folder_jobs
from core.data.sources.jobs import MeshJob

SMALL = PreprocessConfig(n_samples=3000, n_surface=500, dataset_name="t")


def _coloured_box(path: Path, colour=(200, 30, 30, 255)) -> None:
    mesh = trimesh.creation.box(extents=(1.0, 0.6, 0.4))
    mesh.visual.vertex_colors = np.tile(np.array(colour, np.uint8), (len(mesh.vertices), 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)


@pytest.fixture()
def mesh_folder(tmp_path) -> Path:
    root = tmp_path / "meshes"
    _coloured_box(root / "box" / "red.ply")
    _coloured_box(root / "box" / "blue.ply", colour=(20, 40, 220, 255))
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.7)
    (root / "ball").mkdir(parents=True)
    sphere.export(root / "ball" / "plain.stl")
    return root


def test_samples_follow_deepsdf_layout_with_colours(mesh_folder, tmp_path):
    out = tmp_path / "data"
    jobs = folder_jobs(mesh_folder, test_fraction=0.0)
    report = preprocess_dataset(jobs, out, SMALL, progress=False)
    assert sorted(report.processed) == ["blue", "plain", "red"] and not report.failed

    red = next(j for j in jobs if j.id == "red")
    with np.load(sample_path(out, SMALL, red)) as data:  # no allow_pickle: DeepSDF reads it as is
        pos, neg = data["pos"], data["neg"]
        assert pos.shape[1] == neg.shape[1] == 4 and pos.dtype == np.float32
        assert len(pos) + len(neg) == SMALL.n_samples
        assert (pos[:, 3] >= 0).all() and (neg[:, 3] < 0).all()
        assert data["pos_rgb"].shape == (len(pos), 3) and data["neg_view"].shape == (len(neg), 3)
        assert data["surface_points"].shape == (500, 3)
        np.testing.assert_allclose(np.linalg.norm(data["surface_normals"], axis=1), 1.0, atol=1e-4)
        # every colour of the red box is red
        rgb = np.concatenate([data["pos_rgb"], data["neg_rgb"], data["surface_rgb"]])
        np.testing.assert_allclose(rgb.mean(0), np.array([200, 30, 30]) / 255, atol=0.02)
        assert str(data["colour_path"]) == "vertex"
        # normalisation: farthest vertex at 1/1.03, and it inverts to the original frame
        offset, scale = data["offset"], float(data["scale"])
        corner = np.array([0.5, 0.3, 0.2])
        assert np.isclose(np.linalg.norm((corner + offset) * scale), 1 / 1.03, atol=1e-6)
        assert np.abs(data["surface_points"]).max() <= 1 / 1.03 + 1e-5

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["ball", "box"]
    assert {s["id"] for s in manifest["shapes"]} == {"red", "blue", "plain"}
    assert all((out / s["file"]).is_file() for s in manifest["shapes"])
    train = json.loads((out / "splits" / "train.json").read_text())
    assert sorted(train["t"]["box"]) == ["blue", "red"]
    assert json.loads((out / "failures.json").read_text()) == []


def test_deterministic_and_resumable(mesh_folder, tmp_path):
    jobs = folder_jobs(mesh_folder, test_fraction=0.0)
    out = tmp_path / "data"
    preprocess_dataset(jobs, out, SMALL, progress=False)
    first = np.load(sample_path(out, SMALL, jobs[0]))["pos"]
    again = preprocess_dataset(jobs, out, SMALL, progress=False)
    assert again.processed == [] and len(again.skipped) == 3
    other = tmp_path / "other"
    preprocess_dataset(jobs, other, SMALL, progress=False)
    np.testing.assert_array_equal(np.load(sample_path(other, SMALL, jobs[0]))["pos"], first)


def test_bad_meshes_are_logged_and_skipped(mesh_folder, tmp_path):
    bad = mesh_folder / "box"
    (bad / "empty.obj").write_bytes(b"")
    good_glb = trimesh.creation.box().export(file_type="glb")
    (bad / "truncated.glb").write_bytes(good_glb[: len(good_glb) // 2])
    (bad / "nan.obj").write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    (bad / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    (bad / "points.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        "property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
    )
    out = tmp_path / "data"
    jobs = folder_jobs(mesh_folder, test_fraction=0.0)
    report = preprocess_dataset(jobs, out, SMALL, progress=False)
    assert sorted(report.processed) == ["blue", "plain", "red"]
    failures = json.loads((out / "failures.json").read_text())
    assert sorted(f["id"] for f in failures) == ["empty", "flat", "nan", "points", "truncated"]
    for failure in failures:
        assert failure["source"] in failure["reason"] or Path(failure["source"]).name in failure["reason"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["shapes"]) == 3


def test_failure_never_damages_written_samples(mesh_folder, tmp_path):
    out = tmp_path / "data"
    jobs = folder_jobs(mesh_folder, test_fraction=0.0)
    preprocess_dataset(jobs, out, SMALL, progress=False)
    target = sample_path(out, SMALL, jobs[0])
    before = target.read_bytes()
    broken = [MeshJob(id=jobs[0].id, class_name=jobs[0].class_name, source=tmp_path / "gone.obj")]
    target.unlink()
    target.write_bytes(before)
    report = preprocess_dataset(broken + jobs[1:], out, SMALL, progress=False)
    assert report.skipped  # the existing file is valid, so it is kept
    assert target.read_bytes() == before


def test_shards_partition_the_set(mesh_folder, tmp_path):
    jobs = folder_jobs(mesh_folder, test_fraction=0.0)
    out = tmp_path / "data"
    r0 = preprocess_dataset(jobs, out, SMALL, shard=(0, 2), progress=False)
    r1 = preprocess_dataset(jobs, out, SMALL, shard=(1, 2), progress=False)
    assert sorted(r0.processed + r1.processed) == sorted(j.id for j in jobs)
    assert not set(r0.processed) & set(r1.processed)
    assert len(json.loads((out / "manifest.json").read_text())["shapes"]) == 3
    assert parse_shard("1/2") == (1, 2)
    with pytest.raises(ValueError, match="i/N"):
        parse_shard("x")


def test_parallel_workers_match_serial(mesh_folder, tmp_path):
    jobs = folder_jobs(mesh_folder, test_fraction=0.0)
    serial, parallel = tmp_path / "s", tmp_path / "p"
    preprocess_dataset(jobs, serial, SMALL, progress=False)
    preprocess_dataset(jobs, parallel, SMALL, workers=2, progress=False)
    for job in jobs:
        np.testing.assert_array_equal(
            np.load(sample_path(serial, SMALL, job))["neg"], np.load(sample_path(parallel, SMALL, job))["neg"]
        )


def test_cli_exit_codes(mesh_folder, tmp_path, capsys):
    out = tmp_path / "data"
    code = main.main(
        [
            "preprocess",
            "--source",
            "folder",
            "--input",
            str(mesh_folder),
            "--out",
            str(out),
            "--samples",
            "2000",
            "--surface-samples",
            "200",
            "--no-progress",
        ]
    )
    assert code == 0 and (out / "manifest.json").is_file()
    only_bad = tmp_path / "bad" / "junk"
    only_bad.mkdir(parents=True)
    (only_bad / "empty.obj").write_bytes(b"")
    code = main.main(
        [
            "preprocess",
            "--source",
            "folder",
            "--input",
            str(tmp_path / "bad"),
            "--out",
            str(tmp_path / "bad_out"),
            "--samples",
            "2000",
            "--no-progress",
        ]
    )
    assert code == 1
    assert "empty.obj" in capsys.readouterr().err
    code = main.main(["preprocess", "--source", "folder", "--out", str(out), "--no-progress"])
    assert code == 2


def test_ground_truth_report_measures_every_shape_against_its_source(mesh_folder, tmp_path, capsys):
    # two workers: they mesh with torch in child processes, which must not be forked from this
    # torch-using process (a forked pool hung the CI run); one worker runs in-process
    torch.ones(64, 64) @ torch.ones(64, 64)  # the parent's thread pool is up, as in a full test run
    out = tmp_path / "data"
    code = main.main(
        [
            "preprocess",
            "--source",
            "folder",
            "--input",
            str(mesh_folder),
            "--out",
            str(out),
            "--samples",
            "2000",
            "--surface-samples",
            "200",
            "--no-progress",
            "--test-fraction",
            "0",
            "--workers",
            "2",
            "--ground-truth-report",
            "48",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "signed distances:" in printed and "ground truth at 48³" in printed
    report = json.loads((out / "ground_truth.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(report["shapes"]) == len(manifest["shapes"])
    for row, record in zip(report["shapes"], manifest["shapes"], strict=True):
        assert row["method"] == record["stats"]["sdf_field"]["method"]
        assert row["48"]["pieces"] >= 1 and row["48"]["chamfer_l1"] < 0.1
    assert report["summary"]["48"]["shapes"] == len(manifest["shapes"])
    code = main.main(
        [
            "preprocess",
            "--source",
            "folder",
            "--input",
            str(mesh_folder),
            "--out",
            str(out),
            "--no-progress",
            "--ground-truth-report",
            "4",
        ]
    )
    assert code == 2 and "--ground-truth-report 4" in capsys.readouterr().err
