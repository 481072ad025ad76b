"""The sample file's one owner (core/data/samples.py): make, write, read, validate, on real meshes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from core.data.mesh_io import load_mesh
from core.data.preprocess import PreprocessConfig, preprocess_shape
from core.data.samples import (
    NotASampleFileError,
    ShapeSamples,
    inspect_samples,
    read_samples,
    sample_shape,
    shape_rng,
    write_samples,
)
from core.data.sampling import SamplingConfig
from core.data.sources.jobs import MeshJob
from core.data.training_set import SdfDataSet
from core.evaluation.ground_truth import load_ground_truth
from core.tto.observations import from_mesh, from_npz
from core.utils.errors import DataSetError, ObservationError

SMALL = SamplingConfig(n_samples=3000, n_surface=400)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def box_path(tmp_path) -> Path:
    mesh = trimesh.creation.box(extents=(1.0, 0.6, 0.4))
    mesh.visual.vertex_colors = np.tile(np.array([200, 30, 30, 255], np.uint8), (len(mesh.vertices), 1))
    path = tmp_path / "box.ply"
    mesh.export(path)
    return path


@pytest.fixture()
def written(tmp_path, box_path) -> Path:
    samples = sample_shape(load_mesh(box_path), SMALL, np.random.default_rng(1))
    return write_samples(tmp_path / "shape.npz", samples)


def test_sample_shape_is_a_pure_function_of_mesh_settings_and_generator(box_path):
    mesh = load_mesh(box_path)
    vertices = mesh.vertices.copy()
    a = sample_shape(mesh, SMALL, np.random.default_rng(3))
    b = sample_shape(mesh, SMALL, np.random.default_rng(3))
    np.testing.assert_array_equal(mesh.vertices, vertices)  # the input is not changed
    for key, value in a.arrays().items():
        np.testing.assert_array_equal(value, b.arrays()[key], err_msg=key)
    assert a.n_samples == 3000 and len(a.surface_points) == 400
    assert (a.pos[:, 3] >= 0).all() and (a.neg[:, 3] < 0).all()
    np.testing.assert_allclose(a.pos_rgb.mean(0), np.array([200, 30, 30]) / 255, atol=0.02)


def test_write_then_read_gives_the_same_samples_in_deepsdf_layout(tmp_path, box_path, written):
    original = sample_shape(load_mesh(box_path), SMALL, np.random.default_rng(1))
    back = read_samples(written)
    for key, value in original.arrays().items():
        if key != "stats_json":
            np.testing.assert_array_equal(back.arrays()[key], value, err_msg=key)
    assert back.stats == original.stats and back.colour_path == "vertex"
    with np.load(written) as data:  # no allow_pickle: the original DeepSDF code reads it as is
        assert data["pos"].dtype == np.float32 and data["pos"].shape[1] == 4
    info = inspect_samples(written)
    assert info.n_samples == 3000 and info.n_surface == 400 and info.stats == original.stats


def test_uint8_colours_read_as_floats(tmp_path, written):
    arrays = dict(np.load(written))
    arrays["pos_rgb"] = np.rint(arrays["pos_rgb"] * 255).astype(np.uint8)
    np.savez(tmp_path / "u8.npz", **arrays)
    np.testing.assert_allclose(read_samples(tmp_path / "u8.npz").pos_rgb, read_samples(written).pos_rgb, atol=0.5 / 255)


def _damage(tmp_path: Path, written: Path, how: str) -> Path:
    path = tmp_path / f"{how}.npz"
    arrays = dict(np.load(written))
    if how == "truncated":
        data = written.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"this is not a zip file at all" * 10)
    elif how == "no_neg":
        arrays.pop("neg")
        np.savez(path, **arrays)
    elif how == "three_columns":
        arrays["pos"] = arrays["pos"][:, :3]
        np.savez(path, **arrays)
    elif how == "colour_count":
        arrays["neg_rgb"] = arrays["neg_rgb"][:-1]
        np.savez(path, **arrays)
    elif how == "all_outside":
        arrays["neg"] = np.zeros((0, 4), np.float32)
        arrays["neg_rgb"] = arrays["neg_view"] = np.zeros((0, 3), np.float32)
        np.savez(path, **arrays)
    elif how == "nan":
        arrays["pos"][5, 3] = np.nan
        np.savez(path, **arrays)
    elif how == "zero_scale":
        arrays["scale"] = np.asarray(0.0)
        np.savez(path, **arrays)
    return path


DAMAGE = {  # how → words the message must carry (besides the file name)
    "truncated": "damaged or incomplete",
    "empty": "damaged or incomplete",
    "garbage": "damaged or incomplete",
    "no_neg": "no 'pos'/'neg'",
    "three_columns": "expected \\(n, 4\\)",
    "colour_count": "neg_rgb",
    "all_outside": "both sides",
    "nan": "NaN",
    "zero_scale": "normalisation",
}


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_files_get_one_clear_error_naming_the_file(tmp_path, written, how):
    path = _damage(tmp_path, written, how)
    with pytest.raises(DataSetError, match=f"{how}.npz.*{DAMAGE[how]}"):
        read_samples(path)
    if how not in ("nan", "zero_scale"):  # the rest is visible without reading the arrays
        with pytest.raises(DataSetError, match=f"{how}.npz.*{DAMAGE[how]}"):
            inspect_samples(path)
    # every reader of the format reports it the same way
    with pytest.raises(DataSetError, match=f"{how}.npz"):
        load_ground_truth(path)
    with pytest.raises(ObservationError, match=f"{how}.npz"):
        from_npz(path)


def test_missing_file_and_point_cloud_npz(tmp_path):
    with pytest.raises(DataSetError, match="gone.npz.*no such sample file"):
        read_samples(tmp_path / "gone.npz")
    np.savez(tmp_path / "cloud.npz", points=np.random.default_rng(0).normal(size=(50, 3)))
    with pytest.raises(NotASampleFileError) as info:
        read_samples(tmp_path / "cloud.npz")
    assert info.value.keys == ["points"]


def test_write_refuses_what_read_would_refuse(tmp_path):
    bad = ShapeSamples(pos=np.zeros((4, 4), np.float32), neg=np.zeros((4, 3), np.float32))
    with pytest.raises(DataSetError, match="'neg' has shape"):
        write_samples(tmp_path / "bad.npz", bad)
    assert not (tmp_path / "bad.npz").exists()


def test_training_set_skips_a_damaged_file_and_reads_the_rest(tmp_path):
    from tests.conftest import write_analytic_dataset

    data = write_analytic_dataset(tmp_path, n_samples=800, n_surface=200)
    victim = data / "SdfSamples" / "toy" / "ball" / "ball0.npz"
    victim.write_bytes(victim.read_bytes()[:1000])
    dataset = SdfDataSet(data, split="train")
    assert "ball0" not in [s.id for s in dataset.shapes] and len(dataset) == 3
    assert "ball0.npz" in dataset.skipped[0][0] and "damaged or incomplete" in dataset.skipped[0][1]
    # colours come back as the fixture wrote them (through write_samples)
    assert dataset.has_colour and tuple(dataset.shapes[0].pos_rgb[0]) == (230, 51, 51)


def test_tto_mesh_observation_is_the_preprocessed_sample_file(tmp_path, box_path):
    """from_mesh samples in memory with the same function and seed as preprocessing would."""
    config = PreprocessConfig(n_samples=2000, n_surface=300, seed=4)
    preprocess_shape(MeshJob(box_path.stem, "input", box_path), config, tmp_path / "p.npz")
    via_file = from_npz(tmp_path / "p.npz")
    direct = from_mesh(box_path, n_samples=2000, n_surface=300, seed=4)
    np.testing.assert_array_equal(direct.points, via_file.points)
    np.testing.assert_array_equal(direct.sdf, via_file.sdf)
    np.testing.assert_array_equal(direct.surface_points, via_file.surface_points)
    assert direct.kind == "mesh" and direct.source == str(box_path)
    assert shape_rng(4, "input", "box").random() == shape_rng(4, "input", "box").random()


def test_tto_does_not_import_preprocessing(box_path):
    code = (
        "import sys; from core.tto.observations import from_mesh; "
        f"from_mesh({str(box_path)!r}, n_samples=500, n_surface=50); "
        "assert 'core.data.preprocess' not in sys.modules, 'core.data.preprocess was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
