"""What the user asks of an edit: drag handles, pins, paint brushes, graft regions.

Plain frozen dataclasses in the unit-sphere frame, each validated on construction, so a bad
value (NaN, a radius <= 0, a point far outside the grid) is refused before any optimisation
starts, with a message that names the constraint, the reason and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from core.utils.errors import ExplorerError

__all__ = ["EditError", "Handle", "Pin", "Brush", "Region", "as_point", "as_colour"]

GRID_LIMIT = 1.5
"""Points must lie within [-1.5, 1.5]^3: the decoder was trained on [-1, 1]^3 (plus a margin)."""


class EditError(ExplorerError):
    """A shape edit cannot run as asked (bad point, radius, colour, unknown code, empty shape)."""


def as_point(value: Sequence[float] | np.ndarray | torch.Tensor, what: str) -> tuple[float, float, float]:
    """Three finite floats inside the grid margin; raises :class:`EditError` naming ``what``."""
    try:
        values = tuple(float(v) for v in (value.tolist() if hasattr(value, "tolist") else value))
    except (TypeError, ValueError):
        raise EditError(f"{what}: {value!r} is not a point; give three numbers x,y,z") from None
    if len(values) != 3:
        raise EditError(f"{what}: a point needs three numbers x,y,z, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise EditError(f"{what}: {values} contains NaN or infinity; give finite coordinates")
    if max(abs(v) for v in values) > GRID_LIMIT:
        raise EditError(
            f"{what}: {values} lies outside the model's space [-{GRID_LIMIT}, {GRID_LIMIT}]^3 "
            "(unit-sphere frame); give a point near the shape"
        )
    return values


def _positive(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise EditError(f"{what}: {value} must be a finite number > 0")
    return value


def as_colour(value: Sequence[float] | str, what: str) -> tuple[float, float, float]:
    """An RGB triple in [0, 1] from floats or ``#rrggbb``; raises :class:`EditError`."""
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise EditError(f"{what}: {value!r} is not a colour; write it as #rrggbb (e.g. #ff8000)")
        return int(text[0:2], 16) / 255.0, int(text[2:4], 16) / 255.0, int(text[4:6], 16) / 255.0
    rgb = tuple(float(v) for v in value)
    if len(rgb) != 3 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in rgb):
        raise EditError(f"{what}: {value!r} must be three numbers in [0, 1] (or #rrggbb)")
    return rgb


@dataclass(frozen=True)
class Handle:
    """Drag the surface at ``source`` (a point picked on it) to ``target``: SDF(target) = 0 after."""

    source: tuple[float, float, float]
    target: tuple[float, float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", as_point(self.source, "drag handle source"))
        object.__setattr__(self, "target", as_point(self.target, "drag handle target"))


@dataclass(frozen=True)
class Pin:
    """A surface point that must stay on the surface: SDF(point) = 0 after the edit."""

    point: tuple[float, float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", as_point(self.point, "pin"))


@dataclass(frozen=True)
class Brush:
    """Paint ``colour`` (RGB in [0, 1]) on the surface within ``radius`` of ``centre``."""

    centre: tuple[float, float, float]
    radius: float
    colour: tuple[float, float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", as_point(self.centre, "paint brush centre"))
        object.__setattr__(self, "radius", _positive(self.radius, "paint brush radius"))
        object.__setattr__(self, "colour", as_colour(self.colour, "paint brush colour"))


@dataclass(frozen=True)
class Region:
    """A sphere (``size`` = radius) or an axis-aligned box (``size`` = half extents x, y, z)."""

    kind: str
    centre: tuple[float, float, float]
    size: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("sphere", "box"):
            raise EditError(f"graft region: unknown kind {self.kind!r}; use 'sphere' or 'box'")
        object.__setattr__(self, "centre", as_point(self.centre, f"graft {self.kind} centre"))
        want = 1 if self.kind == "sphere" else 3
        size = tuple(self.size) if isinstance(self.size, (tuple, list)) else (self.size,)
        if len(size) == 1 and want == 3:
            size = size * 3
        if len(size) != want:
            raise EditError(f"graft {self.kind}: needs {want} size value(s), got {len(size)}")
        name = "radius" if self.kind == "sphere" else "half extent"
        object.__setattr__(self, "size", tuple(_positive(s, f"graft {self.kind} {name}") for s in size))

    def signed_distance(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) distance to the region's boundary, negative inside; ``points`` (N, 3)."""
        c = torch.tensor(self.centre, dtype=points.dtype, device=points.device)
        if self.kind == "sphere":
            return (points - c).norm(dim=-1) - self.size[0]
        q = (points - c).abs() - torch.tensor(self.size, dtype=points.dtype, device=points.device)
        return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)
