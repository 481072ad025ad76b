"""How plausible is a code? Its Mahalanobis distance under its class's code Gaussian.

The Gaussian is diagonal: a class of the demo model has 16 training codes of 64 values, so a
full covariance would be singular (rank 15) and its inverse meaningless. The distance is
shown next to the range of the class's own training codes, which is the comparison a user
needs: "inside the training range" means the edited shape is as typical as the shapes the
model was trained on. The same Gaussian gives the code regulariser of every edit (squared
distance divided by the code size: about 1 for a typical code).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

__all__ = ["CodeGaussian", "Plausibility", "class_gaussian"]

VARIANCE_FLOOR = 1e-4
"""Added to every per-dimension variance so a dimension the class never uses cannot blow up."""


@dataclass
class Plausibility:
    """A code's Mahalanobis distance and the training codes' range of the same distance."""

    distance: float
    train_min: float
    train_median: float
    train_max: float
    class_name: str | None
    kind: str = "shape"

    @property
    def within_training_range(self) -> bool:
        return self.distance <= self.train_max

    def to_dict(self) -> dict:
        return {**asdict(self), "within_training_range": self.within_training_range}

    def text(self) -> str:
        where = "inside" if self.within_training_range else "OUTSIDE"
        return (
            f"{self.kind} code Mahalanobis {self.distance:.2f} ({where} the {self.class_name or 'all-class'} "
            f"training range {self.train_min:.2f}–{self.train_max:.2f}, median {self.train_median:.2f})"
        )


class CodeGaussian:
    """Per-dimension mean and variance of a set of codes (K, D)."""

    def __init__(self, codes: torch.Tensor, class_name: str | None = None, kind: str = "shape") -> None:
        codes = codes.detach().to(torch.float32).cpu()
        self.mean = codes.mean(dim=0)
        var = codes.var(dim=0) if len(codes) > 1 else torch.zeros_like(self.mean)
        self.var = var + VARIANCE_FLOOR
        self.class_name = class_name
        self.kind = kind
        train = self.distance(codes)
        self.train_range = (float(train.min()), float(train.median()), float(train.max()))

    def squared(self, code: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of ``code`` (..., D), differentiable."""
        mean, var = self.mean.to(code.device), self.var.to(code.device)
        return (((code - mean) ** 2) / var).sum(dim=-1)

    def distance(self, code: torch.Tensor) -> torch.Tensor:
        return self.squared(code).sqrt()

    def regulariser(self, code: torch.Tensor) -> torch.Tensor:
        """Squared distance / D: ~1 for a typical training code, grows as the code leaves the class."""
        return self.squared(code) / code.shape[-1]

    def assess(self, code: torch.Tensor) -> Plausibility:
        lo, med, hi = self.train_range
        return Plausibility(float(self.distance(code.detach().cpu().float())), lo, med, hi, self.class_name, self.kind)


def class_gaussian(model, class_name: str | None, kind: str = "shape") -> CodeGaussian:
    """The Gaussian of ``model``'s training codes of ``class_name`` (all codes when None or unknown)."""
    codes = model.shape_codes if kind == "shape" else model.colour_codes
    if codes is None:
        raise ValueError("the model has no colour codes")
    idx = model.codes_of_class(class_name) if class_name else []
    if len(idx) < 2:
        idx, class_name = list(range(len(codes))), None
    return CodeGaussian(codes[idx], class_name, kind)
