"""One sample core, :class:`core.data.samples.SampleSet`: the sample file's :class:`ShapeSamples`, training's
:class:`TrainingShape` and TTO's :class:`Observation` hold and convert the same samples."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.samples import (
    SampleSet,
    ShapeSamples,
    colour_to_float,
    colour_to_uint8,
    empty_side,
    read_samples,
    write_samples,
)
from core.data.training_set import SdfDataSet, TrainingShape
from core.tto.observations import Observation, from_npz, from_sample_set
from core.utils.errors import DataSetError, ObservationError


def _shape_file(data_dir, shape_id):
    import json

    manifest = json.loads((data_dir / "manifest.json").read_text())
    record = next(r for r in manifest["shapes"] if r["id"] == shape_id)
    return data_dir / record["file"]


def _coloured(n_pos=5, n_neg=4, n_surface=3, seed=0) -> ShapeSamples:
    rng = np.random.default_rng(seed)

    def rows(n, low=0.0, high=1.0):
        return rng.uniform(low, high, size=(n, 3)).astype(np.float32)

    pos = np.c_[rows(n_pos, -1), rng.uniform(0, 1, n_pos)].astype(np.float32)
    neg = np.c_[rows(n_neg, -1), -rng.uniform(0.01, 1, n_neg)].astype(np.float32)
    return ShapeSamples(
        pos=pos,
        neg=neg,
        pos_rgb=rows(n_pos),
        neg_rgb=rows(n_neg),
        pos_view=rows(n_pos, -1),
        neg_view=rows(n_neg, -1),
        surface_points=rows(n_surface, -1),
        surface_normals=rows(n_surface, -1),
        surface_rgb=rows(n_surface),
    )


def test_the_sample_file_and_the_training_shape_are_sample_sets():
    assert issubclass(ShapeSamples, SampleSet) and issubclass(TrainingShape, SampleSet)
    core = [f for f in SampleSet.__dataclass_fields__]
    for cls in (ShapeSamples, TrainingShape):
        assert list(cls.__dataclass_fields__)[: len(core)] == core  # pos, neg, ... first, in one order


def test_samples_file_to_training_shape_to_observation_keeps_the_samples(toy_data_dir):
    path = _shape_file(toy_data_dir, "slab0")
    samples = read_samples(path)
    data = SdfDataSet(toy_data_dir, split="all", with_surface=True)
    shape = next(s for s in data.shapes if s.id == "slab0")
    from_file = from_npz(path)
    from_shape = from_sample_set(shape, source="slab0", kind="training")

    # one conversion, three holders: the same points and distances, pos rows first
    for points, sdf, _ in (samples.flat(), shape.flat(), from_file.sample_set().flat()):
        np.testing.assert_array_equal(points, from_file.points)
        np.testing.assert_array_equal(sdf, from_file.sdf)
    np.testing.assert_array_equal(from_shape.points, from_file.points)
    np.testing.assert_array_equal(from_shape.sdf, from_file.sdf)
    # training keeps colours as uint8: they come back in [0, 1] within half a step
    assert shape.pos_rgb.dtype == np.uint8 and from_shape.colours.dtype == np.float32
    np.testing.assert_allclose(from_shape.colours, from_file.colours, atol=0.5 / 255 + 1e-7)
    np.testing.assert_array_equal(from_shape.surface_points, from_file.surface_points)
    np.testing.assert_array_equal(from_shape.surface_normals, from_file.surface_normals)
    assert from_shape.surface_colours is None  # training does not keep the surface colours
    # and back: an observation in DeepSDF's layout is the file's samples again
    back = from_file.sample_set()
    for key in ("pos", "neg", "pos_rgb", "neg_rgb", "surface_points", "surface_normals", "surface_rgb"):
        np.testing.assert_array_equal(getattr(back, key), getattr(samples, key), err_msg=key)


def test_training_subsample_draws_pos_then_neg_from_the_seed(toy_data_dir):
    samples = read_samples(_shape_file(toy_data_dir, "ball1"))
    data = SdfDataSet(toy_data_dir, split="train", max_samples_per_shape=200, seed=7)
    index = next(i for i, s in enumerate(data.shapes) if s.id == "ball1")
    shape = data.shapes[index]
    rng = np.random.default_rng(7 + index)
    keep_pos = np.sort(rng.choice(len(samples.pos), 100, replace=False))
    keep_neg = np.sort(rng.choice(len(samples.neg), 100, replace=False))
    np.testing.assert_array_equal(shape.pos, samples.pos[keep_pos])
    np.testing.assert_array_equal(shape.neg, samples.neg[keep_neg])
    np.testing.assert_array_equal(shape.pos_rgb, colour_to_uint8(samples.pos_rgb[keep_pos]))
    np.testing.assert_array_equal(shape.neg_rgb, colour_to_uint8(samples.neg_rgb[keep_neg]))
    assert shape.surface_points is None and shape.n_samples == 200 and shape.has_colour


def test_take_keeps_each_sides_arrays_aligned():
    samples = _coloured()
    assert samples.take(None, None) is samples
    picked = samples.take(np.array([4, 1]), None)
    assert isinstance(picked, ShapeSamples)
    for key in ("pos", "pos_rgb", "pos_view"):
        np.testing.assert_array_equal(getattr(picked, key), getattr(samples, key)[[4, 1]])
    for key in ("neg", "neg_rgb", "neg_view", "surface_points", "surface_rgb"):
        assert getattr(picked, key) is getattr(samples, key)
    assert picked.n_samples == 2 + 4 and samples.n_samples == 9


def test_from_flat_splits_by_sign_in_order_and_fills_the_subclass():
    samples = _coloured()
    points, sdf, colours = samples.flat()
    order = np.random.default_rng(1).permutation(len(sdf))
    again = ShapeSamples.from_flat(points[order], sdf[order], colours[order], stats={"n": 1})
    assert isinstance(again, ShapeSamples) and again.stats == {"n": 1} and not again.has_view
    positive = sdf[order] >= 0
    np.testing.assert_array_equal(again.pos[:, 3], sdf[order][positive])
    np.testing.assert_array_equal(again.neg_rgb, colours[order][~positive])
    bare = SampleSet.from_flat(points, sdf)
    assert type(bare) is SampleSet and not bare.has_colour
    np.testing.assert_array_equal(bare.pos, samples.pos)
    np.testing.assert_array_equal(bare.neg, samples.neg)


def test_colour_conversions_round_trip_within_half_a_step():
    rgb = np.random.default_rng(0).uniform(size=(50, 3)).astype(np.float32)
    rgb[0] = (0.0, 1.0, 0.5)
    as8 = colour_to_uint8(rgb)
    assert as8.dtype == np.uint8 and tuple(as8[0]) == (0, 255, 128)
    np.testing.assert_allclose(colour_to_float(as8), rgb, atol=0.5 / 255 + 1e-7)
    assert colour_to_float(rgb).dtype == np.float32 and colour_to_uint8(None) is None and colour_to_float(None) is None


def test_one_sided_samples_are_refused_in_the_same_words(tmp_path):
    assert empty_side(3, 4) is None
    assert empty_side(0, 4) == "inside (sdf < 0)" and empty_side(3, 0) == "outside (sdf >= 0)"
    outside = np.c_[np.zeros((4, 3)), np.full(4, 0.1)].astype(np.float32)
    with pytest.raises(DataSetError, match=r"all 4 samples lie outside \(sdf >= 0\)"):
        write_samples(tmp_path / "one_sided.npz", ShapeSamples(pos=outside, neg=np.zeros((0, 4), np.float32)))
    with pytest.raises(ObservationError, match=r"all 4 SDF samples lie outside \(sdf >= 0\)"):
        Observation(points=outside[:, :3], sdf=outside[:, 3]).validate()
    with pytest.raises(ObservationError, match=r"outside \(sdf >= 0\)"):
        from_sample_set(SampleSet(pos=outside, neg=np.zeros((0, 4), np.float32)))
