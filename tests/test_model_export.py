"""``export_inference_checkpoint``: how resources/demo/demo.pt is made from a training checkpoint."""

from __future__ import annotations

import pytest
import torch

from core.model import load_trained_model, read_checkpoint
from core.model.export import export_inference_checkpoint
from core.utils.errors import CheckpointError

TRAINING_ONLY = {"optimizer", "rng"}
"""State a training checkpoint carries only for an exact resume (core/model/checkpoint.py)."""


@pytest.fixture(scope="module")
def exported(toy_trained, tmp_path_factory):
    """(source checkpoint, its export, the source's bytes before the export)."""
    source = toy_trained["ckpt"]
    before = source.read_bytes()
    target = export_inference_checkpoint(source, tmp_path_factory.mktemp("export") / "sub" / "model.pt")
    return source, target, before


def test_export_drops_the_training_only_state_and_keeps_the_rest(exported):
    source, target, before = exported
    assert target.name == "model.pt" and target.exists()
    assert source.read_bytes() == before  # the source is left as it was
    src, out = read_checkpoint(source), read_checkpoint(target)
    assert TRAINING_ONLY <= set(src)  # a real training checkpoint, so dropping is tested
    assert not TRAINING_ONLY & set(out)
    assert set(out) == set(src) - TRAINING_ONLY
    for key in (
        "format",
        "version",
        "config",
        "shape_ids",
        "shape_classes",
        "shape_texts",
        "class_names",
        "normalization",
        "epoch",
    ):
        assert out[key] == src[key], key
    assert out["model_state"].keys() == src["model_state"].keys()
    assert all(torch.equal(out["model_state"][k], v) for k, v in src["model_state"].items())
    assert out["stats"] == {**src["stats"], "exported_from": str(source)}
    # Adam keeps two moments per parameter: without them the file is about a third of the size
    assert target.stat().st_size < 0.5 * source.stat().st_size


def test_export_loads_and_decodes_exactly_like_its_source(exported):
    from core.meshing import extract_mesh

    source, target, _ = exported
    a, b = load_trained_model(source, device="cpu"), load_trained_model(target, device="cpu")
    assert (b.class_names, b.shape_ids, b.shape_classes, b.config) == (
        a.class_names,
        a.shape_ids,
        a.shape_classes,
        a.config,
    )
    assert torch.equal(a.shape_codes, b.shape_codes) and torch.equal(a.colour_codes, b.colour_codes)
    points = torch.rand(2000, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        for i, cls in enumerate(a.shape_classes):
            sdf_a, rgb_a = a.decode(points, a.shape_codes[i], a.colour_codes[i], a.condition(cls))
            sdf_b, rgb_b = b.decode(points, b.shape_codes[i], b.colour_codes[i], b.condition(cls))
            assert torch.equal(sdf_a, sdf_b) and torch.equal(rgb_a, rgb_b), a.shape_ids[i]
    cond = a.condition(a.shape_classes[0])
    mesh_a = extract_mesh(a.sdf_fn(a.shape_codes[0], cond), 24, a.colour_fn(a.shape_codes[0], a.colour_codes[0], cond))
    mesh_b = extract_mesh(b.sdf_fn(b.shape_codes[0], cond), 24, b.colour_fn(b.shape_codes[0], b.colour_codes[0], cond))
    assert not mesh_a.is_empty
    assert (mesh_a.vertices == mesh_b.vertices).all() and (mesh_a.colours == mesh_b.colours).all()


def test_exporting_an_export_changes_nothing_but_its_origin(exported, tmp_path):
    _, target, _ = exported
    again = read_checkpoint(export_inference_checkpoint(target, tmp_path / "again.pt"))
    first = read_checkpoint(target)
    assert again.keys() == first.keys()
    assert again["stats"] == {**first["stats"], "exported_from": str(target)}
    assert all(torch.equal(again["model_state"][k], v) for k, v in first["model_state"].items())


def test_export_of_a_missing_or_damaged_file_names_it(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.pt: no such file"):
        export_inference_checkpoint(tmp_path / "nothing.pt", tmp_path / "out.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pt"):
        export_inference_checkpoint(bad, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
