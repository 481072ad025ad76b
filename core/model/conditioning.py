"""Class conditioning: the vector appended to the shape code (none | onehot | embedding | text).

* ``onehot``: the seed's fixed one-hot class vector (size = number of classes).
* ``embedding``: a learned vector per class (``condition_size``), initialised small.
* ``text``: a frozen 384-d sentence embedding (of the class prompt or of each shape's own
  description) through a learned linear projection to ``condition_size``; any new prompt can be
  projected the same way, which is what makes zero-shot classes possible.
"""

from __future__ import annotations

import torch
from torch import nn

from core.model.text_encoder import TEXT_DIM

__all__ = ["ClassConditioner"]


class ClassConditioner(nn.Module):
    """Maps a class index (or a shape's text embedding) to the condition vector."""

    class_text_embeddings: torch.Tensor
    """(C, 384) buffer, text mode only."""
    shape_text_embeddings: torch.Tensor
    """(S, 384) buffer, text mode only (empty unless conditioned on each shape's description)."""

    def __init__(
        self, mode: str, num_classes: int, condition_size: int, num_shapes: int = 0, text_source: str = "class"
    ) -> None:
        super().__init__()
        self.mode = mode
        self.num_classes = int(num_classes)
        self.text_source = text_source
        if mode == "none":
            self.out_dim = 0
        elif mode == "onehot":
            self.out_dim = self.num_classes
        elif mode == "embedding":
            self.out_dim = int(condition_size)
            self.embedding = nn.Embedding(self.num_classes, self.out_dim)
            nn.init.normal_(self.embedding.weight, 0.0, 0.1)
        elif mode == "text":
            self.out_dim = int(condition_size)
            self.projection = nn.Linear(TEXT_DIM, self.out_dim)
            self.register_buffer("class_text_embeddings", torch.zeros(self.num_classes, TEXT_DIM))
            self.register_buffer("shape_text_embeddings", torch.zeros(int(num_shapes), TEXT_DIM))
        else:
            raise ValueError(f"unknown conditioning mode {mode!r}")

    def forward(self, class_index: torch.Tensor, shape_index: torch.Tensor | None = None) -> torch.Tensor | None:
        """(B,) long -> (B, out_dim), or None in ``none`` mode."""
        if self.mode == "none":
            return None
        if self.mode == "onehot":
            return torch.nn.functional.one_hot(class_index, self.num_classes).float()
        if self.mode == "embedding":
            return self.embedding(class_index)
        if self.text_source == "description" and shape_index is not None and len(self.shape_text_embeddings):
            return self.projection(self.shape_text_embeddings[shape_index])
        return self.projection(self.class_text_embeddings[class_index])

    def from_text_embedding(self, embedding: torch.Tensor) -> torch.Tensor:
        """(384,) sentence embedding -> (out_dim,) condition (text mode only)."""
        if self.mode != "text":
            raise ValueError("free text prompts need a model trained with conditioning='text'")
        return self.projection(embedding.to(self.projection.weight))
