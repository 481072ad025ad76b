"""Data sources: a folder of meshes by class, and a local Objaverse 1.0 layout the tests build."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import trimesh

from core.data.sources.folder import folder_jobs, stable_split
from core.data.sources.objaverse import ObjaverseConfig, objaverse_jobs, object_text
from core.utils.errors import SourceError


def _write_box(path: Path, extents=(1.0, 2.0, 0.5)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.creation.box(extents=extents).export(path)


def test_folder_classes_come_from_subfolders(tmp_path):
    _write_box(tmp_path / "chair" / "a.obj")
    _write_box(tmp_path / "chair" / "nested" / "b.glb")
    _write_box(tmp_path / "lamp" / "c.ply")
    (tmp_path / "lamp" / "notes.txt").write_text("not a mesh")
    jobs = folder_jobs(tmp_path, test_fraction=0.0)
    assert sorted((j.class_name, j.id) for j in jobs) == [("chair", "a"), ("chair", "nested_b"), ("lamp", "c")]
    assert all(j.split == "train" for j in jobs)


def test_folder_split_is_stable_per_id():
    splits = [stable_split(f"chair/{i}", 0.25) for i in range(2000)]
    assert 0.2 < splits.count("test") / len(splits) < 0.3
    assert splits == [stable_split(f"chair/{i}", 0.25) for i in range(2000)]


def test_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        folder_jobs(tmp_path / "missing")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(SourceError, match=str(tmp_path)):
        folder_jobs(tmp_path)


def _gz_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(obj, handle)


@pytest.fixture()
def objaverse_root(tmp_path) -> Path:
    """A small Objaverse 1.0 layout: 3 LVIS categories, 5 objects each, one without its GLB."""
    root = tmp_path / "hf-objaverse-v1"
    lvis, paths, metadata = {}, {}, {}
    for c, category in enumerate(["chair", "mug", "lamp"]):
        lvis[category] = []
        for i in range(5):
            uid = f"{category[:1]}{i:031d}"
            rel = f"glbs/000-00{c}/{uid}.glb"
            lvis[category].append(uid)
            paths[uid] = rel
            metadata.setdefault(f"000-00{c}", {})[uid] = {
                "name": f"{category} model {i}",
                "tags": [{"name": category}, {"name": "furniture"}],
                "description": "A  scanned\nobject.",
            }
            if not (category == "mug" and i == 4):
                _write_box(root / rel)
    _gz_json(root / "lvis-annotations.json.gz", lvis)
    _gz_json(root / "object-paths.json.gz", paths)
    for folder, table in metadata.items():
        _gz_json(root / "metadata" / f"{folder}.json.gz", table)
    return root


def test_objaverse_balanced_draw_with_text(objaverse_root):
    config = ObjaverseConfig(root=objaverse_root, categories=("chair", "mug"), per_class=3, seed=1)
    jobs = objaverse_jobs(config)
    by_class = {}
    for job in jobs:
        by_class.setdefault(job.class_name, []).append(job)
        assert job.source.is_file()
        assert job.text.startswith(f"{job.class_name} model")
        assert "tags: " in job.text and "A scanned object." in job.text
    assert {k: len(v) for k, v in by_class.items()} == {"chair": 3, "mug": 3}
    again = objaverse_jobs(config)
    assert [j.id for j in again] == [j.id for j in jobs]
    other_seed = objaverse_jobs(ObjaverseConfig(root=objaverse_root, categories=("chair",), per_class=3, seed=7))
    assert len(other_seed) == 3


def test_objaverse_offline_and_bad_layout_errors(objaverse_root, tmp_path):
    with pytest.raises(SourceError, match="lvis-annotations.json.gz: missing"):
        objaverse_jobs(ObjaverseConfig(root=tmp_path / "nowhere"))
    with pytest.raises(SourceError, match="unknown LVIS categories"):
        objaverse_jobs(ObjaverseConfig(root=objaverse_root, categories=("spaceship",)))
    (objaverse_root / "object-paths.json.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(SourceError, match="unreadable Objaverse file"):
        objaverse_jobs(ObjaverseConfig(root=objaverse_root, categories=("chair",)))


def test_object_text_handles_missing_fields():
    assert object_text(None) is None
    assert object_text({"name": "", "tags": [], "description": None}) is None
    assert object_text({"name": "Mug", "tags": ["cup"]}) == "Mug; tags: cup"


def test_objaverse_paths_that_leave_the_folder_and_malformed_tables(objaverse_root, tmp_path, capsys):
    """Issue 28 (further): object-paths.json.gz is data; a path outside the folder is not followed, and a
    table of the wrong shape is one error naming the file, through the command."""
    import main

    outside = tmp_path / "secret.glb"
    _write_box(outside)
    paths_file = objaverse_root / "object-paths.json.gz"
    with gzip.open(paths_file, "rt", encoding="utf-8") as handle:
        paths = json.load(handle)
    paths["c" + "0" * 31] = str(outside)  # absolute
    paths["c" + "0" * 30 + "1"] = "../secret.glb"
    _gz_json(paths_file, paths)
    jobs = objaverse_jobs(ObjaverseConfig(root=objaverse_root, categories=("chair",), per_class=10))
    assert len(jobs) == 3 and all(objaverse_root in job.source.parents for job in jobs)
    _gz_json(objaverse_root / "lvis-annotations.json.gz", {"chair": "c0"})
    code = main.main(
        [
            "preprocess",
            "--source",
            "objaverse",
            "--objaverse-root",
            str(objaverse_root),
            "--classes",
            "chair",
            "--out",
            str(tmp_path / "out"),
            "--samples",
            "100",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "lvis-annotations.json.gz: not the Objaverse layout" in err and "Traceback" not in err
