"""`main.py preprocess` as a hostile but realistic user runs it (issue 15, section A).

Every test goes through ``main.main([...])`` on meshes it writes, as the user's command did.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh

import main
from core.data.preprocess import lock_path
from core.utils.folder_lock import FolderLock

FAST = ["--samples", "1500", "--surface-samples", "100", "--no-progress"]


def _box(path: Path, extents=(1.0, 0.6, 0.4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.creation.box(extents=extents).export(path)
    return path


def _run(*args: str | Path) -> int:
    return main.main(["preprocess", *[str(a) for a in args], *FAST])


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture()
def two_classes(tmp_path) -> Path:
    root = tmp_path / "meshes"
    _box(root / "box" / "a.ply")
    _box(root / "box" / "b.ply", extents=(0.5, 0.5, 1.0))
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    (root / "ball").mkdir(parents=True)
    sphere.export(root / "ball" / "round.stl")
    return root


# ------------------------------------------------------------------ item 1: ids unique by construction


def test_colliding_and_non_ascii_names_all_get_processed(tmp_path, capsys):
    root = tmp_path / "meshes"
    for name in ("椅子.ply", "桌子.ply", "x.obj", "x.glb", "!!.stl", "??.stl"):
        _box(root / "chair" / name)
    out = tmp_path / "data"
    assert _run("--source", "folder", "--input", root, "--out", out, "--test-fraction", "0") == 0
    assert "6 processed" in capsys.readouterr().out
    ids = [s["id"] for s in _manifest(out)["shapes"]]
    assert len(set(ids)) == 6 and "椅子" in ids and "桌子" in ids
    assert sum(i.startswith("x-") for i in ids) == 2 and sum(i.startswith("shape-") for i in ids) == 2
    assert all((out / s["file"]).is_file() for s in _manifest(out)["shapes"])


def test_a_duplicate_id_fails_that_shape_only(tmp_path):
    from core.data.preprocess import PreprocessConfig, preprocess_dataset
    from core.data.sources.jobs import MeshJob

    a, b = _box(tmp_path / "a.ply"), _box(tmp_path / "b.ply", extents=(0.3, 0.3, 1.0))
    jobs = [MeshJob("same", "box", a), MeshJob("same", "box", b), MeshJob("other", "box", b)]
    report = preprocess_dataset(
        jobs, tmp_path / "data", PreprocessConfig(n_samples=1500, n_surface=100), progress=False
    )
    assert sorted(report.processed) == ["other", "same"]
    assert (
        len(report.failed) == 1
        and "b.ply" in report.failed[0]["reason"]
        and "also used by" in report.failed[0]["reason"]
    )


# ------------------------------------------------------------------ item 2: a second run adds, never hides


def test_second_run_with_other_classes_keeps_the_first_ones(two_classes, tmp_path):
    out = tmp_path / "data"
    common = ["--source", "folder", "--input", two_classes, "--out", out, "--test-fraction", "0"]
    assert _run(*common, "--classes", "box") == 0
    assert _run(*common, "--classes", "ball") == 0
    manifest = _manifest(out)
    assert manifest["classes"] == ["ball", "box"]
    assert sorted(s["id"] for s in manifest["shapes"]) == ["a", "b", "round"]
    train = json.loads((out / "splits" / "train.json").read_text())
    assert sorted(train["folder"]) == ["ball", "box"] and sorted(train["folder"]["box"]) == ["a", "b"]


# ------------------------------------------------------------------ item 6: one setting per data set


def test_resume_with_other_settings_is_refused_or_resampled(two_classes, tmp_path, capsys):
    out = tmp_path / "data"
    common = ["--source", "folder", "--input", two_classes, "--out", out, "--test-fraction", "0"]
    assert (
        main.main(["preprocess", *map(str, common), "--samples", "1200", "--surface-samples", "100", "--no-progress"])
        == 0
    )
    before = (out / "manifest.json").read_bytes()
    assert _run(*common) == 2  # FAST asks for 1500 samples
    err = capsys.readouterr().err
    assert "--samples 1200 (now 1500)" in err and "--resample-changed" in err
    assert (out / "manifest.json").read_bytes() == before  # nothing touched

    assert _run(*common, "--resample-changed") == 0
    assert "3 processed" in capsys.readouterr().out
    for record in _manifest(out)["shapes"]:
        assert record["stats"]["settings"]["n_samples"] == 1500
        with np.load(out / record["file"]) as data:
            assert len(data["pos"]) + len(data["neg"]) == 1500


def test_other_classes_of_an_earlier_run_with_other_settings_are_not_mixed_in(two_classes, tmp_path, capsys):
    out = tmp_path / "data"
    common = ["--source", "folder", "--input", two_classes, "--out", out, "--test-fraction", "0"]
    assert _run(*common, "--classes", "box") == 0
    assert _run(*common, "--classes", "ball", "--seed", "7") == 2
    assert "--seed 0 (now 7)" in capsys.readouterr().err
    assert not (out / "SdfSamples" / "folder" / "ball").exists()


# ------------------------------------------------------------------ item 9: --name stays inside --out


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute-name", "a/b", ".hidden", ".."])
def test_name_that_leaves_the_folder_is_refused(two_classes, tmp_path, capsys, name):
    out = tmp_path / "work" / "data"
    code = _run("--source", "folder", "--input", two_classes, "--out", out, "--name", name)
    assert code == 2
    assert "plain folder name" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "escaped").exists()


# ------------------------------------------------------------------ item 10: smaller defects


def test_stale_temporary_files_of_a_killed_run_are_removed(two_classes, tmp_path):
    out = tmp_path / "data"
    common = ["--source", "folder", "--input", two_classes, "--out", out, "--test-fraction", "0"]
    assert _run(*common) == 0
    folder = out / "SdfSamples" / "folder" / "box"
    (folder / "a.npz").unlink()
    # what io_utils.atomic_write leaves when the process is killed between write and rename
    stale = [
        tempfile.mkstemp(prefix=".a.npz.", suffix=".tmp", dir=folder),
        tempfile.mkstemp(prefix=".manifest.json.", suffix=".tmp", dir=out),
    ]
    for fd, _ in stale:
        os.close(fd)
    unrelated = out / ".my-notes.tmp"
    unrelated.write_text("not ours")
    assert _run(*common) == 0
    assert not any(Path(name).exists() for _, name in stale)
    assert unrelated.exists() and (folder / "a.npz").is_file()


@pytest.mark.parametrize("value", ["5", "-1", "1", "nan"])
def test_test_fraction_outside_zero_one_is_refused(two_classes, tmp_path, capsys, value):
    code = _run("--source", "folder", "--input", two_classes, "--out", tmp_path / "d", "--test-fraction", value)
    assert code == 2 and "--test-fraction" in capsys.readouterr().err
    assert not (tmp_path / "d" / "manifest.json").exists()


def test_nothing_to_do_is_an_error(two_classes, tmp_path, capsys):
    out = tmp_path / "synthetic"
    assert _run("--source", "synthetic", "--shapes-per-class", "0", "--out", out) == 2
    assert "--shapes-per-class 0" in capsys.readouterr().err
    assert not (out / "meshes").exists()
    assert _run("--source", "folder", "--input", two_classes, "--out", tmp_path / "d", "--shard", "5/6") == 2
    assert "no shapes" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    target = tmp_path / "data.txt"
    target.write_text("keep me")
    assert _run("--source", "synthetic", "--shapes-per-class", "1", "--out", target) == 2
    assert "is not a folder" in capsys.readouterr().err and target.read_text() == "keep me"


def test_overflowing_coordinates_are_named_without_numpy_warnings(tmp_path, capsys):
    root = tmp_path / "meshes"
    _box(root / "box" / "fine.ply")
    (root / "box" / "huge.obj").write_text(
        "v 1e160 0 0\nv 0 1e160 0\nv 0 0 1e160\nv 0 0 0\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = _run("--source", "folder", "--input", root, "--out", tmp_path / "d", "--test-fraction", "0")
    assert code == 0
    err = capsys.readouterr().err
    assert "huge.obj" in err and "too large" in err and "zero area" not in err
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]


def test_a_second_run_on_a_busy_folder_is_refused(two_classes, tmp_path, capsys):
    out = tmp_path / "data"
    with FolderLock(lock_path(out), "preprocess", ""):  # a run in progress holds the folder
        code = _run("--source", "folder", "--input", two_classes, "--out", out)
    assert code == 2
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}" in err and "--shard" in err
    assert not (out / "SdfSamples").exists()


def test_shards_run_side_by_side_but_not_beside_a_whole_set_run(two_classes, tmp_path, capsys):
    out = tmp_path / "data"
    common = ["--source", "folder", "--input", two_classes, "--out", out, "--test-fraction", "0"]
    with FolderLock(lock_path(out, (0, 2)), "preprocess", ""):  # shard 0/2 is running
        assert _run(*common) == 2  # the whole set would redo shard 0's shapes
        assert "shard-0-of-2" in capsys.readouterr().err
        assert _run(*common, "--shard", "1/2") == 0  # the other shard goes ahead
    assert _run(*common, "--shard", "0/2") == 0
    assert len(_manifest(out)["shapes"]) == 3


def test_the_lock_of_a_killed_run_is_taken_over(two_classes, tmp_path):
    out = tmp_path / "data"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out.mkdir()
    import socket

    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": int(gone.stdout), "started": "x"}))
    assert _run("--source", "folder", "--input", two_classes, "--out", out) == 0
    assert not lock_path(out).exists() and len(_manifest(out)["shapes"]) == 3


# ------------------------------------------------------------------ item 12: symbolic links are followed


def test_symlinked_class_folders_and_files_are_followed(tmp_path):
    store = tmp_path / "store"
    _box(store / "chairs" / "a.ply")
    _box(store / "chairs" / "deep" / "b.ply")
    _box(store / "loose" / "c.ply")
    root = tmp_path / "linked"
    (root / "lamp").mkdir(parents=True)
    (root / "chair").symlink_to(store / "chairs", target_is_directory=True)  # a linked class folder
    (root / "lamp" / "c.ply").symlink_to(store / "loose" / "c.ply")  # a linked mesh file
    (root / "lamp" / "more").symlink_to(store / "loose", target_is_directory=True)  # a linked sub-folder
    (root / "lamp" / "loop").symlink_to(root / "lamp", target_is_directory=True)  # a cycle, followed once
    out = tmp_path / "data"
    assert _run("--source", "folder", "--input", root, "--out", out, "--test-fraction", "0") == 0
    found = sorted((s["class_name"], s["id"]) for s in _manifest(out)["shapes"])
    assert found == [("chair", "a"), ("chair", "deep_b"), ("lamp", "c"), ("lamp", "more_c")]


# ------------------------------------------------------------------ item 15: noise out, warnings in


def test_library_noise_is_quiet_and_mesh_warnings_are_reported_and_counted(tmp_path, capsys, caplog):
    folder = tmp_path / "meshes" / "box"
    folder.mkdir(parents=True)
    corners = [(x, y, z) for z in (-0.5, 0.5) for y in (-0.5, 0.5) for x in (-0.5, 0.5)]
    quads = ["1 3 4 2", "5 6 8 7", "1 2 6 5", "2 4 8 6", "4 3 7 8", "3 1 5 7"]  # quads: trimesh triangulates
    obj = "mtllib quad.mtl\nusemtl skin\n" + "".join(f"v {x} {y} {z}\n" for x, y, z in corners)
    (folder / "quad.obj").write_text(obj + "".join(f"f {q}\n" for q in quads))
    (folder / "quad.mtl").write_text("newmtl skin\nKd 0.8 0.2 0.2\nmap_Kd missing_texture.png\n")
    caplog.set_level(logging.INFO)
    out = tmp_path / "data"
    assert _run("--source", "folder", "--input", tmp_path / "meshes", "--out", out, "--test-fraction", "0") == 0
    captured = capsys.readouterr()
    assert not [r for r in caplog.records if r.name.startswith("trimesh")], "library INFO noise reached the log"
    assert any("missing_texture.png" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert "1 with warnings" in captured.out and "missing_texture.png" in captured.err
    assert "missing_texture.png" in _manifest(out)["shapes"][0]["stats"]["warnings"][0]


# ------------------------------------------------------------------ item 16: the default hold-out is stated


def test_help_and_readme_state_the_default_test_hold_out(capsys):
    with pytest.raises(SystemExit):
        main.main(["preprocess", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "20% of the shapes are NOT trained on" in help_text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "20 %" in readme and "--test-fraction 0" in readme


def test_taking_over_never_removes_a_fresh_lock_and_release_only_removes_its_own(tmp_path):
    import socket

    path = tmp_path / ".preprocess.lock"
    stale = {"host": socket.gethostname(), "pid": 999_999_999, "started": "x"}
    fresh = {"host": socket.gethostname(), "pid": os.getpid(), "started": "y", "token": "other"}
    path.write_text(json.dumps(fresh))  # another run took the folder after we judged the old lock stale
    taker = FolderLock(path, "preprocess", "")
    assert taker._take_over(stale) is False
    assert json.loads(path.read_text()) == fresh and [p.name for p in tmp_path.iterdir()] == [path.name]
    path.unlink()
    with FolderLock(path, "preprocess", "") as mine:
        assert mine.held
        path.write_text(json.dumps(fresh))  # someone replaced it (deleted by hand, then another run)
    assert json.loads(path.read_text()) == fresh  # not ours: left alone


def _exit_on_bad(job, config, out_path):  # a worker that dies outright on one mesh (as an OOM kill does)
    if job.id == "bad":
        os._exit(1)
    from core.data.preprocess import preprocess_shape

    return preprocess_shape(job, config, out_path)


def test_a_worker_that_dies_fails_only_its_own_mesh(tmp_path, monkeypatch, capsys):
    import core.data.preprocess as pre

    root = tmp_path / "in"
    for name in ("a", "bad", "b", "c", "d"):
        _box(root / "box" / f"{name}.ply")
    monkeypatch.setattr(pre, "_run_job", _exit_on_bad)  # forked workers inherit it
    out = tmp_path / "data"
    assert _run("--source", "folder", "--input", root, "--out", out, "--test-fraction", "0", "--workers", "2") == 0
    failures = json.loads((out / "failures.json").read_text(encoding="utf-8"))
    assert [f["id"] for f in failures] == ["bad"] and "worker process died" in failures[0]["reason"]
    assert sorted(s["id"] for s in _manifest(out)["shapes"]) == ["a", "b", "c", "d"]


def test_a_failure_stays_listed_when_another_class_has_a_shape_of_the_same_id(tmp_path):
    from core.data.preprocess import PreprocessConfig, PreprocessReport, write_index_files

    out = tmp_path / "data"
    out.mkdir()
    old = [{"id": "01", "class": "chair", "source": "chair/01.obj", "reason": "no faces"}]
    (out / "failures.json").write_text(json.dumps(old))
    write_index_files([], out, PreprocessConfig(), PreprocessReport(processed=["01"], done={("table", "01")}))
    assert json.loads((out / "failures.json").read_text()) == old
    write_index_files([], out, PreprocessConfig(), PreprocessReport(processed=["01"], done={("chair", "01")}))
    assert json.loads((out / "failures.json").read_text()) == []


# ------------------------------------------------------------------ issue 28: samples follow their source mesh


def test_synthetic_seed_change_regenerates_the_mesh_it_describes(tmp_path):
    from core.data.sources.synthetic import build_shape

    out = tmp_path / "out"
    common = [
        "preprocess",
        "--source",
        "synthetic",
        "--classes",
        "mug",
        "--shapes-per-class",
        "1",
        "--out",
        str(out),
        "--samples",
        "100",
        "--surface-samples",
        "50",
        "--no-progress",
    ]
    assert main.main(common) == 0
    glb = out / "meshes" / "mug" / "mug_000.glb"
    seed0 = glb.read_bytes()
    assert main.main([*common, "--seed", "1", "--resample-changed"]) == 0
    (record,) = _manifest(out)["shapes"]
    assert record["text"] == build_shape("mug", 0, 1)[1]["text"]  # the description and the mesh agree
    assert glb.read_bytes() != seed0
    expected = build_shape("mug", 0, 1)[0].to_geometry()
    written = trimesh.load(glb, force="mesh")
    np.testing.assert_allclose(np.sort(written.vertices, axis=0), np.sort(expected.vertices, axis=0), atol=1e-5)


def test_a_mesh_replaced_after_sampling_is_refused_or_sampled_again(two_classes, tmp_path, capsys):
    out = tmp_path / "data"
    common = ["--source", "folder", "--input", two_classes, "--out", out, "--test-fraction", "0"]
    assert _run(*common) == 0
    _box(two_classes / "box" / "a.ply", extents=(0.2, 0.2, 0.9))  # another mesh under the same name
    assert _run(*common) == 2
    err = capsys.readouterr().err
    assert "box/a: its source mesh changed since it was sampled" in err and "--resample-changed" in err
    assert _run(*common, "--resample-changed") == 0
    assert "1 processed, 2 already done" in capsys.readouterr().out
    record = next(r for r in _manifest(out)["shapes"] if r["id"] == "a")
    with np.load(out / record["file"]) as data:
        assert np.abs(data["surface_points"][:, :3]).max(axis=0).argmax() == 2  # the tall box now


@pytest.mark.parametrize("field, value", [("class_name", "../../escape"), ("id", "../x"), ("id", ".hidden")])
def test_an_index_naming_paths_outside_the_folder_fails_those_shapes_only(tmp_path, capsys, field, value):
    out = tmp_path / "out"
    common = [
        "preprocess",
        "--source",
        "synthetic",
        "--classes",
        "mug",
        "--shapes-per-class",
        "2",
        "--out",
        str(out),
        "--samples",
        "100",
        "--surface-samples",
        "50",
        "--no-progress",
        "--test-fraction",
        "0",
    ]
    assert main.main(common) == 0
    index_path = out / "meshes" / "index.json"
    index = json.loads(index_path.read_text())
    index["shapes"][1][field] = value
    index_path.write_text(json.dumps(index))
    from core.data.preprocess import PreprocessConfig, preprocess_dataset
    from core.data.sources.synthetic_jobs import jobs_from_index

    report = preprocess_dataset(
        jobs_from_index(out / "meshes"),
        out,
        PreprocessConfig(n_samples=100, n_surface=50, dataset_name="synthetic"),
        progress=False,
    )
    assert len(report.failed) == 1 and "cannot name a file under --out" in report.failed[0]["reason"]
    assert not (tmp_path / "escape").exists() and not list(out.rglob(".hidden*"))


def test_a_texture_that_is_a_fifo_or_a_device_link_is_a_warning_not_a_hang(tmp_path, capsys):
    root = tmp_path / "meshes" / "box"
    root.mkdir(parents=True)
    box = trimesh.creation.box()
    lines = [
        "mtllib box.mtl",
        *(f"v {x} {y} {z}" for x, y, z in box.vertices),
        "vt 0 0",
        "usemtl m",
        *(f"f {a + 1}/1 {b + 1}/1 {c + 1}/1" for a, b, c in box.faces),
    ]
    for name, texture in (("a", "pipe.png"), ("b", "zero.png")):
        (root / f"{name}.obj").write_text("\n".join(lines).replace("box.mtl", f"{name}.mtl") + "\n")
        (root / f"{name}.mtl").write_text(f"newmtl m\nKd 0.5 0.5 0.5\nmap_Kd {texture}\n")
    os.mkfifo(root / "pipe.png")
    (root / "zero.png").symlink_to("/dev/zero")
    out = tmp_path / "data"
    assert _run("--source", "folder", "--input", tmp_path / "meshes", "--out", out, "--test-fraction", "0") == 0
    err = capsys.readouterr().err
    assert "pipe.png' was not found beside it" in err and "zero.png' was not found beside it" in err
    assert len(_manifest(out)["shapes"]) == 2
