"""The trainable whole: decoder + class conditioner + per-shape shape and colour codes.

Codes are free parameters (``nn.Embedding``), initialised N(0, (1/sqrt(D))^2) as DeepSDF's
``CodeInitStdDev / sqrt(latent_size)``. They stay dense and replicated under
DistributedDataParallel: each rank's gradient for a code it did not see is zero, and DDP's
averaged all-reduce then equals the gradient of the global mean loss, so a multi-process run
matches a single-process one. (Sharding pays off only beyond ~10^5 shapes x 256 dims, where
the all-reduce of the codes starts to cost more than the decoder's.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.model.conditioning import ClassConditioner
from core.model.config import ModelConfig
from core.model.decoder import SdfColourDecoder

__all__ = ["AutoDecoder"]


class AutoDecoder(nn.Module):
    """Everything that training optimises."""

    colour_codes: nn.Embedding | None

    def __init__(self, config: ModelConfig, num_shapes: int, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.conditioner = ClassConditioner(
            config.conditioning,
            num_classes,
            config.condition_size,
            num_shapes=num_shapes,
            text_source=config.text_source,
        )
        self.decoder = SdfColourDecoder(config, self.conditioner.out_dim)
        self.shape_codes = nn.Embedding(num_shapes, config.code_size)
        nn.init.normal_(self.shape_codes.weight, 0.0, 1.0 / math.sqrt(config.code_size))
        if config.colour:
            self.colour_codes = nn.Embedding(num_shapes, config.colour_code_size)
            nn.init.normal_(self.colour_codes.weight, 0.0, 1.0 / math.sqrt(config.colour_code_size))
        else:
            self.colour_codes = None

    def latent(
        self, shape_index: torch.Tensor, class_index: torch.Tensor, code_noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,) -> (B, code_size + condition_dim); ``code_noise`` (B, code_size) is added to the codes."""
        code = self.shape_codes(shape_index)
        if code_noise is not None:
            code = code + code_noise
        cond = self.conditioner(class_index, shape_index)
        return code if cond is None else torch.cat([code, cond], dim=-1)

    def forward(
        self,
        xyz: torch.Tensor,
        shape_index: torch.Tensor,
        class_index: torch.Tensor,
        point_row: torch.Tensor,
        view_dirs: torch.Tensor | None = None,
        with_colour: bool = True,
        code_noise: torch.Tensor | None = None,
    ):
        """Evaluate a batch of B shapes.

        xyz (N, 3); shape_index, class_index (B,) long; point_row (N,) long: which of the B
        shapes point n belongs to. Returns (sdf (N,), rgb (N, 3) | None).
        """
        latent = self.latent(shape_index, class_index, code_noise)
        colour = self.colour_codes(shape_index) if (self.colour_codes is not None and with_colour) else None
        return self.decoder(xyz, latent, colour, view_dirs, with_colour=with_colour, latent_row=point_row)
