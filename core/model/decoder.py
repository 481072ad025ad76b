"""The DeepSDF trunk with an SDF head and a colour head.

Layout (Park et al. 2019, ``networks/deep_sdf_decoder.py``): input = [latent, xyz]; fully
connected layers with weight normalisation, ReLU and dropout; the input is concatenated again at
the ``latent_in`` layers; a tanh on the SDF output. Here ``latent`` = shape code ++ class
condition, xyz may be Fourier-encoded, and a colour head reads trunk features + colour code
(+ viewing direction in the view-dependent variant). DeepSDF's other NetworkSpecs switches
(``norm_layers``, the ``dropout`` list, ``xyz_in_all``, ``use_tanh``) are config fields, so an
imported experiment of the original code (``core/model/deepsdf_format.py``) runs with its own weights.

Speed: when one latent is shared by all points (meshing, TTO) the latent's part of every layer
that reads it is folded into that layer's bias (``W_latent @ z + b``), so those layers cost only
the xyz columns per point. This is the same arithmetic, not an approximation.
In training a batch holds B shapes and each point reads its shape's latent: the latent's part is
computed once per shape, and when the points come as B equal contiguous blocks (the trainer's
``row = arange(B).repeat_interleave(n)``) it is added by broadcasting over a (B, n, H) view, whose
backward is a plain sum over n. Other row layouts gather it per point (``[latent_row]``), whose
backward accumulates with ``index_put_`` (slower, and deterministic only with deterministic
algorithms on). The colour head's first layer is split the same way, so the colour code is never
copied per point.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from core.model.config import ModelConfig

__all__ = ["FourierFeatures", "SdfColourDecoder"]


class FourierFeatures(nn.Module):
    """xyz -> [xyz, sin(2^k pi xyz), cos(2^k pi xyz)] for k < F (NeRF's encoding); F=0 is identity."""

    scales: torch.Tensor

    def __init__(self, frequencies: int) -> None:
        super().__init__()
        self.frequencies = int(frequencies)
        scales = (2.0 ** torch.arange(self.frequencies, dtype=torch.float32)) * math.pi
        self.register_buffer("scales", scales, persistent=False)

    @property
    def out_dim(self) -> int:
        return 3 + 6 * self.frequencies

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        if self.frequencies == 0:
            return xyz
        angles = (xyz[..., None, :] * self.scales[:, None]).flatten(-2)  # (N, 3F)
        return torch.cat([xyz, torch.sin(angles), torch.cos(angles)], dim=-1)


def _add_product(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``out + a @ b``: in place on the fresh ``out`` (mm keeps its inputs for backward, not its output),
    out of place under CPU autocast (test-time optimisation in bfloat16), whose in-place ``addmm_``
    would meet a bfloat16 ``out`` with float32 operands."""
    if torch.is_autocast_enabled(out.device.type):
        return out + a @ b
    return out.addmm_(a, b)


def _linear(in_dim: int, out_dim: int, use_weight_norm: bool) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    return weight_norm(layer) if use_weight_norm else layer


class SdfColourDecoder(nn.Module):
    """f(latent, xyz) -> (sdf, rgb).

    Parameters
    ----------
    config : the model config.
    condition_dim : size of the class condition appended to the shape code (0 for none).
    """

    layers: nn.ModuleList
    layer_norms: nn.ModuleDict
    colour_head: nn.Sequential | None

    def __init__(self, config: ModelConfig, condition_dim: int = 0) -> None:
        super().__init__()
        self.config = config
        self.encoding = FourierFeatures(config.fourier_frequencies)
        self.latent_dim = config.code_size + int(condition_dim)
        self.input_dim = self.latent_dim + self.encoding.out_dim
        hidden = list(config.hidden_dims)
        self.latent_in = set(config.latent_in)
        # DeepSDF's xyz_in_all: every later layer also reads xyz, so each layer gives up that many outputs.
        self.xyz_in_all = bool(config.xyz_in_all)
        xyz_dim = self.encoding.out_dim if self.xyz_in_all else 0
        norm = set(range(len(hidden))) if config.norm_layers is None else set(config.norm_layers)
        layers: list[nn.Linear] = []
        layer_norms: dict[str, nn.Module] = {}
        prev = self.input_dim
        for i, width in enumerate(hidden):
            # DeepSDF shrinks the layer before a skip so the concatenation keeps the width.
            out = width - self.input_dim if (i + 1) in self.latent_in else width - xyz_dim
            if out < 1:
                out = width
            in_dim = prev + self.input_dim if i in self.latent_in else prev + (xyz_dim if i > 0 else 0)
            layers.append(_linear(in_dim, out, config.weight_norm and i in norm))
            if not config.weight_norm and config.norm_layers is not None and i in norm:
                layer_norms[str(i)] = nn.LayerNorm(out)  # DeepSDF's "bn<i>" (a LayerNorm despite the name)
            prev = out
        self.layers = nn.ModuleList(layers)
        self.layer_norms = nn.ModuleDict(layer_norms)
        self._norm_keys = [str(i) if str(i) in layer_norms else None for i in range(len(hidden))]
        out_norm = config.weight_norm and config.norm_layers is not None and len(hidden) in norm
        self.sdf_out = _linear(prev + xyz_dim, 1, out_norm)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.dropout_layers = None if config.dropout_layers is None else set(config.dropout_layers)
        self.colour_layer = (len(hidden) - 1) if config.colour_from_layer < 0 else int(config.colour_from_layer)
        if config.colour:
            feat = layers[self.colour_layer].out_features
            colour_in = feat + config.colour_code_size + self.encoding.out_dim + (3 if config.view_dependent else 0)
            self.colour_head = nn.Sequential(
                nn.Linear(colour_in, config.colour_hidden),
                nn.ReLU(),
                nn.Linear(config.colour_hidden, config.colour_hidden),
                nn.ReLU(),
                nn.Linear(config.colour_hidden, 3),
            )
        else:
            self.colour_head = None
        self.fold_blocks = True
        """Broadcast the per-shape terms over equal contiguous row blocks (False: always gather per point;
        the same numbers, kept as the reference path for tests and benchmarks)."""

    @property
    def has_colour(self) -> bool:
        return self.colour_head is not None

    def _layer(
        self,
        i: int,
        layer: nn.Linear,
        x: torch.Tensor | None,
        enc: torch.Tensor,
        latent: torch.Tensor,
        latent_row: torch.Tensor | None,
        block: int,
    ) -> torch.Tensor:
        """One trunk layer; ``x`` None means the first layer (input = [latent, enc]).

        x (N, P) or (B, n, P), enc (N, E). ``block`` = n > 0: the points are B contiguous blocks of n,
        block b reading latent row b; a layer that reads the latent then returns (B, n, H), where the
        per-shape term broadcasts, else (N, H). Always a fresh tensor, never a view (see the ReLU).
        """
        if x is not None:
            x = x.flatten(0, -2)
            if i not in self.latent_in:  # reads only the previous layer (and xyz with xyz_in_all)
                return layer(torch.cat([x, enc], dim=-1) if self.xyz_in_all else x)
        weight, bias = layer.weight, layer.bias
        prev = 0 if x is None else x.shape[-1]
        lat_end = prev + self.latent_dim
        w_prev, w_lat, w_enc = weight[:, :prev], weight[:, prev:lat_end], weight[:, lat_end:]
        out = enc @ w_enc.T  # (N, H), a fresh tensor
        if x is not None:
            out = _add_product(out, x, w_prev.T)
        if latent.dim() == 1:
            # Folded: one mat-vec for all points. Under autocast the float32 bias promotes this layer's output to
            # float32 (the next layer casts it back); passed as the product's bias instead, all stays bfloat16:
            # a code step 8-19 % faster in A/Bs, no whole fit measurably faster, and fits' F@1 and thin F@1 moved
            # (docs/experiments/2026-12-05-fit-arithmetic-and-code-steps.md). Kept as it is.
            return out + (w_lat @ latent + bias)
        if latent_row is None:
            return out + latent @ w_lat.T + bias
        per_shape = torch.addmm(bias, latent, w_lat.T)  # (B, H): folded per shape
        if block:  # broadcast over each shape's block: backward is a sum over the block
            return out.view(-1, block, out.shape[-1]) + per_shape[:, None, :]
        return out + per_shape[latent_row]  # gathered per point: backward accumulates with index_put_

    def _row_block(self, n: int, latent: torch.Tensor, latent_row: torch.Tensor | None) -> int:
        """Points per shape when ``latent_row`` is ``arange(B).repeat_interleave(n // B)``, else 0.

        latent (B, L); latent_row (n,) long. One O(n) comparison per forward pass.
        """
        if not self.fold_blocks or latent_row is None or latent.dim() != 2:
            return 0
        shapes = latent.shape[0]
        if shapes == 0 or n == 0 or n % shapes or latent_row.shape != (n,):
            return 0
        block = n // shapes
        expected = torch.arange(shapes, device=latent_row.device).repeat_interleave(block)
        return block if torch.equal(latent_row, expected) else 0

    def forward(
        self,
        xyz: torch.Tensor,
        latent: torch.Tensor,
        colour_code: torch.Tensor | None = None,
        view_dirs: torch.Tensor | None = None,
        with_colour: bool = True,
        latent_row: torch.Tensor | None = None,
        colour_rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Evaluate the fields.

        Parameters
        ----------
        xyz : (N, 3) float32, unit-sphere frame.
        latent : (N, L) or (L,) shape code ++ condition; a 1-D latent is shared by all points;
            with ``latent_row`` (N,) long, ``latent`` is (B, L) and point n reads row latent_row[n].
        colour_code : (N, Dc), (B, Dc) with ``latent_row``, or (Dc,); None skips the colour head.
        view_dirs : (N, 3) unit vectors (view-dependent head only; zeros when omitted).
        colour_rows : (M,) long: the colour head runs on these points only (test-time optimisation
            compares colours near the surface only, about a third of a batch); rgb is then (M, 3).

        Returns
        -------
        sdf (N,), rgb (N, 3) (or (M, 3) with ``colour_rows``) in [0, 1], or None.
        """
        n = xyz.shape[0]
        block = self._row_block(n, latent, latent_row)
        enc = self.encoding(xyz)
        x, features = self._run_layers(0, len(self.layers), None, enc, latent, latent_row, block)
        sdf = self._sdf_head(x, enc, n)
        if not with_colour or self.colour_head is None or colour_code is None:
            return sdf, None
        # The colour layer lies in the trunk (checked in __init__ by indexing it), so a full pass sets it.
        assert features is not None
        if self.config.colour_detach_trunk:
            features = features.detach()
        features = features.flatten(0, -2)
        if colour_rows is not None:
            features, enc, xyz = features[colour_rows], enc[colour_rows], xyz[colour_rows]
            view_dirs = None if view_dirs is None else view_dirs[colour_rows]
            if colour_code.dim() == 2:
                colour_code = colour_code[colour_rows if latent_row is None else latent_row[colour_rows]]
            latent_row, block, n = None, 0, int(colour_rows.shape[0])
        if block and colour_code.dim() == 2:
            hidden = self._colour_first_layer(features, colour_code, enc, view_dirs, block)
            return sdf, torch.sigmoid(self.colour_head[1:](hidden)).reshape(n, 3)
        if colour_code.dim() == 1:
            code = colour_code.expand(n, -1)
        elif latent_row is not None:
            code = colour_code[latent_row]
        else:
            code = colour_code
        parts = [features, code, enc]
        if self.config.view_dependent:
            parts.append(view_dirs if view_dirs is not None else torch.zeros_like(xyz))
        rgb = torch.sigmoid(self.colour_head(torch.cat(parts, dim=-1)))
        return sdf, rgb

    def _run_layers(
        self,
        start: int,
        stop: int,
        x: torch.Tensor | None,
        enc: torch.Tensor,
        latent: torch.Tensor,
        latent_row: torch.Tensor | None,
        block: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Trunk layers ``start`` .. ``stop - 1`` from ``x`` (None before layer 0) -> (x, colour-layer features)."""
        features = None
        for i in range(start, stop):
            h = self._layer(i, cast(nn.Linear, self.layers[i]), x, enc, latent, latent_row, block)
            key = self._norm_keys[i]
            if key is not None:
                h = self.layer_norms[key](h)
            # In place where h is a fresh tensor (an output of addmm / add / layer norm, none of which keeps its
            # output for backward); on a view autograd would copy the whole base in the backward.
            h = torch.relu(h) if h._base is not None else torch.relu_(h)
            if self.dropout_layers is None or i in self.dropout_layers:
                h = self.dropout(h)
            if i == self.colour_layer:
                features = h
            x = h
        # Callers run at least one layer (forward all, trunk_prefix stop >= 1) or pass x (sdf_from).
        assert x is not None
        return x, features

    def _sdf_head(self, x: torch.Tensor, enc: torch.Tensor, n: int) -> torch.Tensor:
        x = x.flatten(0, -2)
        sdf = self.sdf_out(torch.cat([x, enc], dim=-1) if self.xyz_in_all else x)
        if self.config.output_tanh_twice:
            sdf = torch.tanh(sdf)
        return torch.tanh(sdf).reshape(n)

    def trunk_prefix(self, xyz: torch.Tensor, latent: torch.Tensor, stop: int) -> torch.Tensor:
        """(N, H) output of trunk layers 0 .. ``stop - 1`` for one shared latent (L,), ``stop`` >= 1.

        With :meth:`sdf_from` it splits the forward pass: fine-tuning at test time trains only the
        last layers, so the frozen prefix of every sample it can draw is computed once.
        """
        x, _ = self._run_layers(0, stop, None, self.encoding(xyz), latent, None, 0)
        return x

    def sdf_from(self, start: int, x: torch.Tensor, xyz: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """(N,) SDF from the output ``x`` (N, H) of layer ``start - 1`` (:meth:`trunk_prefix`) at ``xyz`` (N, 3)."""
        enc = self.encoding(xyz)
        x, _ = self._run_layers(start, len(self.layers), x, enc, latent, None, 0)
        return self._sdf_head(x, enc, xyz.shape[0])

    def _colour_first_layer(
        self,
        features: torch.Tensor,
        colour_code: torch.Tensor,
        enc: torch.Tensor,
        view_dirs: torch.Tensor | None,
        block: int,
    ) -> torch.Tensor:
        """The colour head's first linear layer on [features, code, enc(, view)] in block layout.

        features (N, F), colour_code (B, Dc), enc (N, E), view_dirs (N, 3) or None -> (B, n, hidden):
        the code's part is computed once per shape and broadcast over its block, so the (N, F + Dc + E)
        input and the per-point copies of the code are never built.
        """
        assert self.colour_head is not None  # called from forward's colour branch only
        first = cast(nn.Linear, self.colour_head[0])
        weight = first.weight
        f_end = features.shape[-1]
        c_end = f_end + colour_code.shape[-1]
        e_end = c_end + enc.shape[-1]
        out = features @ weight[:, :f_end].T  # (N, hidden), fresh
        out = _add_product(out, enc, weight[:, c_end:e_end].T)
        if self.config.view_dependent and view_dirs is not None:  # zeros (the default) add nothing
            out = _add_product(out, view_dirs, weight[:, e_end:].T)
        per_shape = torch.addmm(first.bias, colour_code, weight[:, f_end:c_end].T)  # (B, hidden)
        return out.view(-1, block, out.shape[-1]) + per_shape[:, None, :]
