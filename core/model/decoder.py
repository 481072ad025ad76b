"""The DeepSDF trunk with an SDF head and a colour head.

Layout (Park et al. 2019, ``networks/deep_sdf_decoder.py``): input = [latent, xyz]; fully
connected layers with weight normalisation, ReLU and dropout; the input is concatenated again at
the ``latent_in`` layers; a tanh on the SDF output. Here ``latent`` = shape code ++ class
condition, xyz may be Fourier-encoded, and a colour head reads trunk features + colour code
(+ viewing direction in the view-dependent variant). DeepSDF's other NetworkSpecs switches
(``norm_layers``, the ``dropout`` list, ``xyz_in_all``, ``use_tanh``) are config fields, so an
imported experiment of the original code (``core/interop/deepsdf.py``) runs with its own weights.

Speed: when one latent is shared by all points (meshing, TTO) the latent's part of every layer
that reads it is folded into that layer's bias (``W_latent @ z + b``), so those layers cost only
the xyz columns per point. This is the same arithmetic, not an approximation.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from core.model.config import ModelConfig

__all__ = ["FourierFeatures", "SdfColourDecoder"]


class FourierFeatures(nn.Module):
    """xyz -> [xyz, sin(2^k pi xyz), cos(2^k pi xyz)] for k < F (NeRF's encoding); F=0 is identity."""

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
        layers, layer_norms = [], {}
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
            feat = self.layers[self.colour_layer].weight.shape[0]
            colour_in = feat + config.colour_code_size + self.encoding.out_dim + (3 if config.view_dependent else 0)
            self.colour_head = nn.Sequential(
                nn.Linear(colour_in, config.colour_hidden), nn.ReLU(),
                nn.Linear(config.colour_hidden, config.colour_hidden), nn.ReLU(),
                nn.Linear(config.colour_hidden, 3),
            )
        else:
            self.colour_head = None

    @property
    def has_colour(self) -> bool:
        return self.colour_head is not None

    def _layer(self, i: int, layer: nn.Module, x: torch.Tensor | None, enc: torch.Tensor,
               latent: torch.Tensor, latent_row: torch.Tensor | None) -> torch.Tensor:
        """One trunk layer; ``x`` None means the first layer (input = [latent, enc])."""
        reads_input = x is None or i in self.latent_in
        if not reads_input:
            return layer(torch.cat([x, enc], dim=-1) if self.xyz_in_all else x)
        weight, bias = layer.weight, layer.bias
        prev = 0 if x is None else x.shape[-1]
        lat_end = prev + self.latent_dim
        w_prev, w_lat, w_enc = weight[:, :prev], weight[:, prev:lat_end], weight[:, lat_end:]
        out = enc @ w_enc.T
        if x is not None:
            out = out + x @ w_prev.T
        if latent.dim() == 1:
            out = out + (w_lat @ latent + bias)  # folded: one mat-vec for all points
        elif latent_row is not None:
            out = out + (latent @ w_lat.T + bias)[latent_row]  # folded per shape, gathered per point
        else:
            out = out + latent @ w_lat.T + bias
        return out

    def forward(self, xyz: torch.Tensor, latent: torch.Tensor, colour_code: torch.Tensor | None = None,
                view_dirs: torch.Tensor | None = None, with_colour: bool = True,
                latent_row: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Evaluate the fields.

        Parameters
        ----------
        xyz : (N, 3) float32, unit-sphere frame.
        latent : (N, L) or (L,) shape code ++ condition; a 1-D latent is shared by all points;
            with ``latent_row`` (N,) long, ``latent`` is (B, L) and point n reads row latent_row[n].
        colour_code : (N, Dc), (B, Dc) with ``latent_row``, or (Dc,); None skips the colour head.
        view_dirs : (N, 3) unit vectors (view-dependent head only; zeros when omitted).

        Returns
        -------
        sdf (N,), rgb (N, 3) in [0, 1] or None.
        """
        enc = self.encoding(xyz)
        x = None
        features = None
        for i, layer in enumerate(self.layers):
            x = self._layer(i, layer, x, enc, latent, latent_row)
            if self._norm_keys[i] is not None:
                x = self.layer_norms[self._norm_keys[i]](x)
            x = torch.relu(x)
            if self.dropout_layers is None or i in self.dropout_layers:
                x = self.dropout(x)
            if i == self.colour_layer:
                features = x
        sdf = self.sdf_out(torch.cat([x, enc], dim=-1) if self.xyz_in_all else x)
        if self.config.output_tanh_twice:
            sdf = torch.tanh(sdf)
        sdf = torch.tanh(sdf).squeeze(-1)
        if not with_colour or self.colour_head is None or colour_code is None:
            return sdf, None
        if self.config.colour_detach_trunk:
            features = features.detach()
        n = xyz.shape[0]
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
