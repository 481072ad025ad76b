"""The colour head on its own: its input rows at fixed surface points, captured once, so a fine-tuning of the
head (paint's detail stage, test-time colour fitting) runs only the head's three small layers a step.

Why it pays: with the trunk fixed, the head's input at a point (trunk features ++ colour code ++ encoded xyz)
never changes, and the trunk is 6 x 256 against the head's 128-wide layers — a step on 4,096 points costs
the head alone instead of the whole decoder.
"""

from __future__ import annotations

import torch

from core.model.trained_model import TrainedModel

__all__ = ["ColourHeadInputs", "private_copy"]


def private_copy(model: TrainedModel) -> TrainedModel:
    """``model`` with a private copy of its decoder (the shared model is never changed by a fine-tuning)."""
    return model.with_decoder({k: v.detach().clone() for k, v in model.decoder.state_dict().items()})


class ColourHeadInputs:
    """The colour head's inputs at ``points`` under fixed codes, and its predictions from them.

    Captured with a forward pre-hook on the decoder's own pass, then checked: ``sigmoid(head(inputs))`` must
    give the decoder's colours (a decoder whose colour path does anything else, or a head called more than
    once, falls back to decoding the points every step — slower, the same result).
    """

    def __init__(
        self,
        model: TrainedModel,
        points: torch.Tensor,
        shape_code: torch.Tensor,
        colour_code: torch.Tensor,
        condition: torch.Tensor | None,
    ) -> None:
        head = model.decoder.colour_head
        if head is None:
            raise ValueError("the model has no colour head")
        self.model, self.head, self.points = model, head, points
        self.shape_code, self.colour_code, self.condition = shape_code, colour_code, condition
        captured: list[torch.Tensor] = []
        hook = head.register_forward_pre_hook(lambda _module, args: captured.append(args[0].detach()))
        try:
            with torch.no_grad():
                rgb = model.decode(points, shape_code, colour_code, condition)[1]
        finally:
            hook.remove()
        self.inputs: torch.Tensor | None = captured[0] if len(captured) == 1 else None
        if self.inputs is not None and rgb is not None:
            with torch.no_grad():
                if not torch.allclose(torch.sigmoid(head(self.inputs)), rgb, atol=1e-5):
                    self.inputs = None

    @property
    def captured(self) -> bool:
        """True when steps run the head alone (the fast path)."""
        return self.inputs is not None

    def predict(self, pick: torch.Tensor) -> torch.Tensor:
        """(len(pick), 3) colours in [0, 1] at ``points[pick]``, differentiable in the head's weights."""
        if self.inputs is not None:
            return torch.sigmoid(self.head(self.inputs[pick]))
        rgb = self.model.decode(self.points[pick], self.shape_code, self.colour_code, self.condition)[1]
        assert rgb is not None  # the model has a colour head (checked in __init__)
        return rgb
