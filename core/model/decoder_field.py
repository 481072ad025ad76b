"""One shape's fields (SDF, colour) as a frozen, fused forward pass — meshing's fast path.

Meshing, slices and previews evaluate one shape at a time: one latent shared by every point, the
decoder's weights fixed. :class:`DecoderField` takes a snapshot of the decoder for that latent and
keeps only what a point costs:

* the weight normalisation is applied once (``g * v / |v|``), not at every call;
* the latent's part of every layer that reads it is folded into the layer's bias, as
  :class:`core.model.decoder.SdfColourDecoder` does per call; the colour code's part of the colour
  head's first layer likewise;
* each layer is one ``addmm`` on pre-transposed, contiguous weights, followed by an in-place ReLU;
  in bfloat16 on a CPU without autograd, oneDNN's fused linear + ReLU kernel instead (the same numbers);
* the matrices are stored in the *compute* dtype: bfloat16 on a CPU with native bfloat16 matrix
  units (AVX-512 BF16 / AMX: three times the float32 throughput on the 2-core machines this project
  is built on), float32 elsewhere. The Fourier encoding is computed in float32, the activations
  stay in the compute dtype between layers (oneDNN accumulates each product in float32), and the
  outputs (tanh of the SDF, sigmoid of the colour) are float32.

bfloat16 has an 8-bit mantissa: an SDF value carries an absolute error of about 1e-3 of the field's
scale. That is harmless where a value only decides *whether* a cell can hold the surface (the
coarse-to-fine band test keeps a margin), for normals (a direction) and for colours; where marching cubes
interpolates a vertex between two values it moves the vertex by a small fraction of a voxel: the meshing
benchmark (benchmarks/bench_bundled_meshing.py) measures the whole path against the plain float32 decoder,
Chamfer 0.02-0.07 voxel on the real model (issue 29 allows 0.1). :meth:`sdf_exact` gives the decoder's own
float32 numbers where a caller needs them (the tests compare the fast path with it).

The snapshot does not follow later changes of the decoder's weights (a live fine-tuning fit makes a
new field for every mesh it shows), and it never builds an autograd graph of the weights: gradients
flow to the points only (:meth:`surface`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from core.model.decoder import SdfColourDecoder

__all__ = ["DecoderField", "compute_dtype", "fused_linear_relu_available", "PRECISIONS"]

PRECISIONS = ("auto", "float32", "bfloat16")
"""``auto``: bfloat16 on a CPU with native bfloat16 units, float32 otherwise (and on CUDA)."""

PRECISION_ENV = "DEEPSDF_PRECISION"
"""Set to ``float32`` to turn the reduced-precision fast path off everywhere (``auto`` otherwise)."""


@lru_cache(maxsize=None)
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX-512 BF16 or AMX), as oneDNN sees it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@lru_cache(maxsize=None)
def fused_linear_relu_available(dtype: torch.dtype) -> bool:
    """Whether oneDNN's fused ``linear + ReLU`` (``torch.ops.mkldnn._linear_pointwise``, the kernel
    inductor emits for CPU MLPs) runs here in ``dtype`` and gives ``relu(addmm)``'s numbers.

    It is a private operator: probed once, and every caller falls back to ``addmm`` + ``relu_`` where it
    is missing or disagrees.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(shape, generator=gen).to(dtype) for shape in ((64, 32), (16, 32), (16,)))
        fused = torch.ops.mkldnn._linear_pointwise(x, w, b, "relu", [], "")
        return bool(torch.equal(fused, torch.relu(torch.addmm(b, x, w.T))))
    except (AttributeError, RuntimeError):
        return False


def compute_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The dtype of the field's matrix products for ``precision`` on ``device``.

    ``auto`` honours :data:`PRECISION_ENV`, then picks bfloat16 only on a CPU with native units:
    elsewhere bfloat16 is emulated and slower than float32 (CUDA keeps float32; its time is in
    marching cubes and transfers, not in the decoder).
    """
    source = "precision"
    if precision == "auto":
        precision = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
        source = f"{PRECISION_ENV} (environment)"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} from {source}: use one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bfloat16() else torch.float32


@dataclass
class _Layer:
    """One trunk layer: ``x @ w_prev + enc @ w_enc + bias`` (the latent folded into ``bias``)."""

    w_prev: torch.Tensor | None
    """(P, H) or None (first layer)."""
    w_enc: torch.Tensor | None
    """(E, H) or None when the layer does not read the encoded xyz."""
    bias: torch.Tensor
    """(H,) in the layer's dtype."""
    norm: tuple[torch.Tensor, torch.Tensor] | None
    """LayerNorm weight and bias (DeepSDF's norm layers without weight normalisation)."""
    w_main: torch.Tensor | None = None
    """(H, P) or (H, E): the first product's matrix in ``F.linear``'s layout for oneDNN's fused kernel; None
    where the layer takes the plain path (no fused kernel here, float32, or a norm layer)."""


@dataclass
class _ColourHead:
    """The colour head with the colour code folded into its first layer's bias, in the compute dtype."""

    w_feat: torch.Tensor
    """(F, hidden): the trunk features' columns of the first layer, transposed."""
    w_enc: torch.Tensor
    """(E, hidden): the encoded xyz's columns of the first layer, transposed."""
    bias: torch.Tensor
    """(hidden,) the first layer's bias plus the colour code's part."""
    hidden: list[tuple[torch.Tensor, torch.Tensor]]
    """(weight transposed, bias) of the second and third linear layers."""


def _own(t: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A contiguous copy of ``t`` that shares no storage with it: the snapshot must not follow the decoder."""
    return t.detach().to(dtype, copy=True).contiguous()


class DecoderField:
    """The SDF and colour fields of one latent (and colour code) under fixed decoder weights.

    Parameters
    ----------
    decoder : the decoder, in eval mode (dropout off).
    latent : (L,) shape code ++ condition.
    colour_code : (Dc,) or None (no colour field).
    precision : see :data:`PRECISIONS`.
    surface_offset : the inward step meshing applies (a dilated model's; see ``TrainedModel.sdf_fn``).
    fuse_relu : in reduced precision on a CPU, run each layer's product and ReLU as one oneDNN kernel
        where it is available (:func:`fused_linear_relu_available`); False keeps ``addmm`` then ``relu_``.
    """

    def __init__(
        self,
        decoder: SdfColourDecoder,
        latent: torch.Tensor,
        colour_code: torch.Tensor | None = None,
        precision: str = "auto",
        surface_offset: float = 0.0,
        fuse_relu: bool = True,
    ) -> None:
        device = latent.device
        self.device = device
        self.dtype = compute_dtype(device, precision)
        # oneDNN's linear + ReLU in one kernel for the reduced-precision pass (bfloat16 already runs in
        # oneDNN, so the numbers are addmm's): 10-15 % less than addmm then relu_ on the 6 x 256 trunk.
        self._fused = (
            fuse_relu
            and device.type == "cpu"
            and self.dtype != torch.float32
            and fused_linear_relu_available(self.dtype)
        )
        self.surface_offset = float(surface_offset)
        self._decoder = decoder
        self._config = decoder.config
        self._encoding = decoder.encoding
        with torch.no_grad():
            self._layers32 = [
                self._fold_layer(decoder, i, cast(nn.Linear, layer), latent) for i, layer in enumerate(decoder.layers)
            ]
            self._layers = [self._cast_layer(lay) for lay in self._layers32]
            out = decoder.sdf_out
            self._sdf_w = _own(out.weight.T)  # (H [+E], 1)
            self._sdf_b = _own(out.bias)
            self._colour = self._fold_colour(decoder, colour_code) if colour_code is not None else None

    # -- construction ------------------------------------------------------------------------------------
    def _cast(self, t: torch.Tensor) -> torch.Tensor:
        """A private, contiguous copy in the compute dtype (never a view of the decoder's storage)."""
        return _own(t, self.dtype)

    def _cast_layer(self, layer: _Layer) -> _Layer:
        if self.dtype == torch.float32:
            return layer
        w_prev = None if layer.w_prev is None else self._cast(layer.w_prev)
        w_enc = None if layer.w_enc is None else self._cast(layer.w_enc)
        main = w_enc if w_prev is None else w_prev
        # DeepSDF's norm layers (LayerNorm between product and ReLU) keep the plain path.
        fuse = self._fused and main is not None and layer.norm is None
        w_main = cast(torch.Tensor, main).T.contiguous() if fuse else None
        return _Layer(w_prev, w_enc, self._cast(layer.bias), layer.norm, w_main)

    def _fold_layer(self, decoder: SdfColourDecoder, i: int, layer: nn.Linear, latent: torch.Tensor) -> _Layer:
        weight, bias = layer.weight.detach(), layer.bias.detach()
        key = decoder._norm_keys[i]
        norm = None
        if key is not None:
            ln = cast(nn.LayerNorm, decoder.layer_norms[key])
            norm = (_own(ln.weight), _own(ln.bias))
        reads_input = i == 0 or i in decoder.latent_in
        if not reads_input:
            prev = weight.shape[1] - (decoder.encoding.out_dim if decoder.xyz_in_all else 0)
            w_enc = weight[:, prev:] if decoder.xyz_in_all else None
            return _Layer(_own(weight[:, :prev].T), None if w_enc is None else _own(w_enc.T), _own(bias), norm)
        prev = 0 if i == 0 else weight.shape[1] - decoder.latent_dim - decoder.encoding.out_dim
        lat_end = prev + decoder.latent_dim
        folded = weight[:, prev:lat_end] @ latent.to(weight) + bias
        w_prev = _own(weight[:, :prev].T) if prev else None
        return _Layer(w_prev, _own(weight[:, lat_end:].T), _own(folded), norm)

    def _fold_colour(self, decoder: SdfColourDecoder, colour_code: torch.Tensor) -> _ColourHead | None:
        head = decoder.colour_head
        if head is None:
            return None
        first = cast(nn.Linear, head[0])
        weight = first.weight.detach()
        f_end = cast(nn.Linear, decoder.layers[decoder.colour_layer]).out_features
        c_end = f_end + colour_code.shape[-1]
        e_end = c_end + decoder.encoding.out_dim
        bias = weight[:, f_end:c_end] @ colour_code.to(weight) + first.bias.detach()
        hidden = [cast(nn.Linear, head[2]), cast(nn.Linear, head[4])]
        return _ColourHead(
            w_feat=self._cast(weight[:, :f_end].T),
            w_enc=self._cast(weight[:, c_end:e_end].T),
            bias=self._cast(bias),  # folded: a new tensor
            hidden=[(self._cast(lin.weight.T), self._cast(lin.bias)) for lin in hidden],
        )

    # -- evaluation ---------------------------------------------------------------------------------------
    @property
    def has_colour(self) -> bool:
        return self._colour is not None

    def _trunk(self, xyz: torch.Tensor, exact: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """-> (last trunk features, colour-layer features, encoded xyz), all in the layers' dtype.

        The colour-layer features are None only for a model without a colour head whose
        ``colour_from_layer`` lies past the trunk (the decoder checks it only when it builds the head).

        Activations stay in the compute dtype from layer to layer (a cast per layer costs as much
        memory traffic as the product saves); each ``addmm`` accumulates in float32 inside oneDNN.
        """
        layers = self._layers32 if exact else self._layers
        dtype = torch.float32 if exact else self.dtype
        enc = self._encoding(xyz.to(torch.float32)).to(dtype)
        x = None
        features = None
        for i, layer in enumerate(layers):
            if layer.w_main is not None and not xyz.requires_grad:
                x = self._fused_layer(layer, enc if x is None else x, enc)
            else:
                x = self._plain_layer(layer, x, enc, dtype)
            if i == self._decoder.colour_layer:
                features = x
        assert x is not None  # the trunk has at least one layer
        return x, features, enc

    @staticmethod
    def _plain_layer(layer: _Layer, x: torch.Tensor | None, enc: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """One layer by ``addmm`` (autograd-safe); the first layer reads only [latent, enc], later ones x."""
        if x is None:
            out = torch.addmm(layer.bias, enc, cast(torch.Tensor, layer.w_enc))
        else:
            out = torch.addmm(layer.bias, x, cast(torch.Tensor, layer.w_prev))
            if layer.w_enc is not None:
                out = out.addmm_(enc, layer.w_enc) if not out.requires_grad else out + enc @ layer.w_enc
        if layer.norm is not None:
            out = F.layer_norm(out.float(), out.shape[-1:], layer.norm[0], layer.norm[1]).to(dtype)
        return torch.relu(out) if out.requires_grad else torch.relu_(out)

    @staticmethod
    def _fused_layer(layer: _Layer, x: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
        """One layer through oneDNN's fused kernel: the ReLU inside the product, unless a latent_in layer's
        second product (the encoded xyz) comes between."""
        linear = torch.ops.mkldnn._linear_pointwise
        w_main = cast(torch.Tensor, layer.w_main)
        if layer.w_prev is None or layer.w_enc is None:
            return linear(x, w_main, layer.bias, "relu", [], "")
        return torch.relu_(linear(x, w_main, layer.bias, "none", [], "").addmm_(enc, layer.w_enc))

    def _sdf_head(self, x: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
        if self._decoder.xyz_in_all:
            x = torch.cat([x, enc], dim=-1)
        sdf = (x @ self._sdf_w.to(x.dtype)).float() + self._sdf_b
        if self._config.output_tanh_twice:
            sdf = torch.tanh(sdf)
        return torch.tanh(sdf).reshape(-1)

    def _colour_head(self, c: _ColourHead, features: torch.Tensor | None, enc: torch.Tensor) -> torch.Tensor:
        # A colour head exists only when the decoder built one, which checked that its colour layer is in the trunk.
        assert features is not None
        dtype = c.w_feat.dtype
        hidden = torch.addmm(c.bias, features.detach().to(dtype), c.w_feat).addmm_(enc.to(dtype), c.w_enc)
        hidden = torch.relu_(hidden)
        (w1, b1), (w2, b2) = c.hidden
        hidden = torch.relu_(torch.addmm(b1, hidden, w1))
        return torch.sigmoid(torch.addmm(b2, hidden, w2).float())

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N,) float32 signed distances in the compute dtype's precision; no autograd."""
        with torch.no_grad():
            x, _, enc = self._trunk(points)
            return self._sdf_head(x, enc)

    def sdf_exact(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N,) float32 signed distances computed in float32 throughout (the decoder's own numbers)."""
        with torch.no_grad():
            x, _, enc = self._trunk(points, exact=True)
            return self._sdf_head(x, enc)

    @property
    def is_reduced_precision(self) -> bool:
        """True when :meth:`sdf` is cheaper and less precise than :meth:`sdf_exact`."""
        return self.dtype != torch.float32

    def colour(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N, 3) RGB in [0, 1]; no autograd. Requires a colour code."""
        if self._colour is None:
            raise ValueError("this field has no colour (no colour code, or the model has no colour head)")
        with torch.no_grad():
            _, features, enc = self._trunk(points)
            return self._colour_head(self._colour, features, enc)

    def surface(self, points: torch.Tensor, with_colour: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """SDF gradients (N, 3) and colours (N, 3) | None at points, from one trunk pass.

        The gradient is taken through the trunk in the compute dtype (a direction: bfloat16's
        relative error of ~0.4 % tilts a normal by a fraction of a degree); the colour head reads
        the same features, so the trunk runs once for both.
        """
        with torch.enable_grad():
            p = points.detach().to(torch.float32).requires_grad_(True)
            x, features, enc = self._trunk(p)
            sdf = self._sdf_head(x, enc)
            (grad,) = torch.autograd.grad(sdf.sum(), p)
        rgb = None
        if self._colour is not None and with_colour:
            with torch.no_grad():
                rgb = self._colour_head(self._colour, features, enc.detach())
        return grad, rgb
