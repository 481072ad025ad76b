"""The built-in procedural data set: deterministic, coloured, textured, with really thin parts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from core.data.mesh_io import load_mesh
from core.data.sources.synthetic import CLASSES, SyntheticConfig, build_shape, write_synthetic_set
from core.data.sources.synthetic_jobs import jobs_from_index


def _colours(mesh):
    fi = np.arange(len(mesh.faces))
    return mesh.colours_at(fi, np.full((len(fi), 3), 1.0 / 3.0))


def test_same_seed_same_shape_other_seed_other_shape():
    a, _ = build_shape("chair", 3, seed=1)
    b, _ = build_shape("chair", 3, seed=1)
    c, _ = build_shape("chair", 3, seed=2)
    va = np.concatenate([g.vertices for g in a.dump()])
    assert np.array_equal(va, np.concatenate([g.vertices for g in b.dump()]))
    vc = np.concatenate([g.vertices for g in c.dump()])
    assert va.shape != vc.shape or not np.allclose(va, vc)


def test_shape_does_not_depend_on_requested_classes(tmp_path):
    only = write_synthetic_set(SyntheticConfig(shapes_per_class=2, classes=("lamp",)), tmp_path / "a", progress=False)
    both = write_synthetic_set(
        SyntheticConfig(shapes_per_class=2, classes=("mug", "lamp")), tmp_path / "b", progress=False
    )
    lamp_a = (tmp_path / "a" / only[0]["file"]).read_bytes()
    lamp_b = (tmp_path / "b" / [e for e in both if e["id"] == only[0]["id"]][0]["file"]).read_bytes()
    assert lamp_a == lamp_b


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    entries = write_synthetic_set(SyntheticConfig(shapes_per_class=5, seed=0), root, progress=False)
    return root, entries


def test_every_class_loads_with_colours(small_set):
    root, entries = small_set
    assert sorted({e["class_name"] for e in entries}) == sorted(CLASSES)
    paths = set()
    for entry in entries:
        mesh = load_mesh(root / entry["file"])
        paths.add(mesh.colour_path)
        rgb = _colours(mesh)
        assert len(mesh.faces) > 50
        assert rgb.min() >= 0 and rgb.max() <= 1
        # a real colour, not the loader's neutral grey fallback
        assert mesh.colour_path in ("texture", "material")
        assert np.abs(rgb - rgb.mean(axis=1, keepdims=True)).max() > 0.02 or rgb.std() > 0.02
    assert {"texture", "material"} <= paths


def test_thin_parts_are_thin(small_set):
    root, entries = small_set
    for entry in entries:
        scene, info = build_shape(entry["class_name"], int(entry["id"].rsplit("_", 1)[1]), seed=0)
        assert info["thin_parts"] == entry["thin_parts"], entry["id"]
        if entry["class_name"] not in ("vase", "table"):  # vases have none; pedestal tables neither
            assert info["thin_parts"], entry["id"]
        geoms = {name: scene.geometry[name] for name in scene.geometry}
        diagonal = np.linalg.norm(scene.extents)
        for name in info["thin_parts"]:
            thickness = np.sort(geoms[name].extents)[0]  # smallest side of the part's box
            assert thickness / diagonal < 0.04, (entry["id"], name, thickness / diagonal)


def test_split_and_index_format(small_set):
    root, entries = small_set
    index = json.loads((root / "index.json").read_text())
    assert index["shapes"] == entries
    for cls in CLASSES:
        splits = [e["split"] for e in entries if e["class_name"] == cls]
        assert splits.count("test") == 1 and splits.count("train") == 4
    jobs = jobs_from_index(root)
    assert len(jobs) == len(entries) and jobs[0].source.exists() and jobs[0].text
    assert jobs[0].extra["thin_parts"] == entries[0]["thin_parts"]


def test_second_call_reuses_files(small_set):
    root, entries = small_set
    before = {e["file"]: os.stat(root / e["file"]).st_mtime_ns for e in entries}
    again = write_synthetic_set(SyntheticConfig(shapes_per_class=5, seed=0), root, progress=False)
    assert again == entries
    assert before == {e["file"]: os.stat(root / e["file"]).st_mtime_ns for e in entries}


def test_unknown_class_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic class"):
        write_synthetic_set(SyntheticConfig(shapes_per_class=1, classes=("dragon",)), tmp_path, progress=False)


def test_preprocess_two_synthetic_shapes(tmp_path):
    from core.data.preprocess import PreprocessConfig, preprocess_dataset
    from core.data.sources.synthetic_jobs import synthetic_jobs

    jobs = synthetic_jobs(tmp_path / "meshes", shapes_per_class=1, classes=("chair", "mug"), progress=False)
    config = PreprocessConfig(n_samples=5000, n_surface=2000)
    report = preprocess_dataset(jobs, tmp_path / "data", config, progress=False)
    assert not report.failed and len(report.processed) == 2
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    record = manifest["shapes"][0]
    with np.load(tmp_path / "data" / record["file"]) as data:
        assert data["pos"].shape[1] == 4 and data["pos_rgb"].shape[0] == data["pos"].shape[0]
        assert float(data["surface_rgb"].std()) > 0.01  # coloured, not uniform grey
