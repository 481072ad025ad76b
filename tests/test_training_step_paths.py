"""The decoder's two ways of adding the per-shape latent term in a training batch (``core/model/decoder.py``):
broadcast over equal contiguous row blocks (the trainer's ``arange(B).repeat_interleave(n)``) and the
per-point gather (any other row layout). Both must give the trainer's step the same losses and
gradients, and the block path must do without the gather and its ``index_put_`` backward."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.profiler import profile

from core.data.training_set import SdfDataSet
from core.model import preset_config
from core.model.autodecoder import AutoDecoder
from core.training import build_run_config
from core.training.trainer import _batch_tensors, _step

CPU = torch.device("cpu")
VARIANTS = {
    "tiny": [],
    "default": [],
    "view_dependent": ["model.view_dependent=true"],
    # DeepSDF's own switches (imported experiments): LayerNorm instead of weight norm, xyz into every layer.
    "deepsdf_switches": [
        "model.weight_norm=false",
        "model.norm_layers=[0,1,2,3]",
        "model.xyz_in_all=true",
        "model.fourier_frequencies=0",
        "model.dropout=0.1",
        "model.colour_from_layer=1",
    ],
}


@pytest.fixture(scope="module")
def data(toy_data_dir):
    return SdfDataSet(toy_data_dir, "train")


def _config(preset: str, *extra: str):
    base = "tiny" if preset in ("tiny", "deepsdf_switches") else "default"
    return build_run_config(
        base, overrides=["train.samples_per_shape=256", "train.device=cpu", "train.seed=5", *VARIANTS[preset], *extra]
    )


def _step_and_grads(module: AutoDecoder, batch: dict, config, fold_blocks: bool, seed: int = 0):
    module = copy.deepcopy(module)
    module.decoder.fold_blocks = fold_blocks
    torch.manual_seed(seed)  # the same dropout masks on both paths
    losses = _step(module, module, batch, config, epoch=3, global_shapes=len(batch["shape"]), world=1, device=CPU)
    losses["loss"].backward()
    grads = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_block_broadcast_step_equals_the_gather_step(data, variant):
    """Losses and every parameter's gradient (codes included) agree to float rounding (<= 1e-5)."""
    config = _config(variant)
    torch.manual_seed(1)
    module = AutoDecoder(config.model, num_shapes=len(data), num_classes=len(data.class_names)).train()
    shapes = list(range(len(data)))[::-1]
    batch = _batch_tensors(data, shapes, config, 2, CPU)
    assert (
        module.decoder._row_block(len(batch["xyz"]), module.latent(batch["shape"], batch["class"]), batch["row"])
        == config.train.samples_per_shape
    )
    fast, fast_grads = _step_and_grads(module, batch, config, fold_blocks=True)
    slow, slow_grads = _step_and_grads(module, batch, config, fold_blocks=False)
    assert fast.keys() == slow.keys() and fast_grads.keys() == slow_grads.keys()
    assert "shape_codes.weight" in fast_grads and fast_grads["shape_codes.weight"].abs().max() > 0
    for key in fast:
        assert abs(fast[key].item() - slow[key].item()) <= 1e-5, key
    for name, grad in fast_grads.items():
        assert (grad - slow_grads[name]).abs().max().item() <= 1e-5, name


def _aten_ops_of_a_step(module: AutoDecoder, batch: dict, config) -> set[str]:
    with profile() as prof:
        losses = _step(module, module, batch, config, epoch=3, global_shapes=len(batch["shape"]), world=1, device=CPU)
        losses["loss"].backward()
    return {event.key for event in prof.key_averages()}


def test_block_rows_need_no_gather_and_irregular_rows_still_gather(data):
    """The trainer's plain batch runs without index / index_put_; appending surface points (irregular rows)
    falls back to the gather, which the profile then shows (so the first check can fail)."""
    config = _config("default")
    torch.manual_seed(1)
    module = AutoDecoder(config.model, num_shapes=len(data), num_classes=len(data.class_names)).train()
    batch = _batch_tensors(data, [0, 1, 2], config, 0, CPU)
    ops = _aten_ops_of_a_step(module, batch, config)
    assert not {"aten::index_put_", "aten::_index_put_impl_", "aten::index"} & ops
    surface = _config("default", "train.surface_weight=0.1")
    data_surface = SdfDataSet(data.data_dir, "train", with_surface=True)
    ops = _aten_ops_of_a_step(module, _batch_tensors(data_surface, [0, 1, 2], surface, 0, CPU), surface)
    assert "aten::index" in ops and {"aten::index_put_", "aten::_index_put_impl_"} & ops


def test_row_block_recognises_only_equal_contiguous_blocks():
    decoder = AutoDecoder(preset_config("tiny"), num_shapes=3, num_classes=2).decoder
    latent = torch.zeros(3, decoder.latent_dim)
    rows = torch.arange(3).repeat_interleave(4)
    assert decoder._row_block(12, latent, rows) == 4
    assert decoder._row_block(12, latent, rows.flip(0)) == 0  # blocks in another order
    assert decoder._row_block(12, latent, torch.tensor([0] * 5 + [1] * 3 + [2] * 4)) == 0  # unequal blocks
    assert decoder._row_block(13, latent, torch.cat([rows, torch.tensor([0])])) == 0  # surface points appended
    assert decoder._row_block(12, latent[0], rows) == 0  # a shared 1-D latent folds into the bias instead
    decoder.fold_blocks = False
    assert decoder._row_block(12, latent, rows) == 0
