"""An SDF sampled on an axis-aligned plane through [-1, 1]^2 (the viewer's slice view).

The viewer only schedules this on a worker and draws the result; the sampling lives here so
it is tested and usable without Qt (figures, notebooks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.meshing.grid import SdfFn, evaluate_points, resolve_device

__all__ = ["SdfSlice", "plane_points", "sdf_slice"]

SLICE_BATCH = 16384
"""Points per ``sdf_fn`` call (a 160 x 160 slice in two calls)."""


@dataclass
class SdfSlice:
    """SDF values on a square plane ``x[axis] = position``, unit-sphere frame."""

    grid: np.ndarray
    """(size, size) float32; ``grid[i, j]`` is at ``coords[i]`` on the first other axis and
    ``coords[j]`` on the second (axes in increasing order, e.g. (y, z) for ``axis = 0``)."""
    coords: np.ndarray
    """(size,) float32, evenly spaced over [-1, 1]."""
    axis: int
    """0, 1 or 2: the axis the plane is normal to."""
    position: float
    """Where the plane cuts ``axis``."""

    def as_dict(self) -> dict:
        """``{"grid", "coords", "axis", "position"}`` (what :meth:`viewer.scene.Scene.show_slice` takes)."""
        return {"grid": self.grid, "coords": self.coords, "axis": self.axis, "position": self.position}


def _check(axis: int, size: int) -> None:
    if axis not in (0, 1, 2):
        raise ValueError(f"slice axis must be 0 (x), 1 (y) or 2 (z), got {axis!r}")
    if size < 2:
        raise ValueError(f"slice size must be at least 2 samples per side, got {size}")


def plane_points(axis: int, position: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size * size, 3) float32 points of the plane in ``grid`` order, and the (size,) coordinates."""
    _check(axis, size)
    u = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    a, b = np.meshgrid(u, u, indexing="ij")
    pts = np.zeros((size * size, 3), np.float32)
    others = [i for i in range(3) if i != axis]
    pts[:, others[0]] = a.ravel()
    pts[:, others[1]] = b.ravel()
    pts[:, axis] = position
    return pts, u


def sdf_slice(
    sdf_fn: SdfFn,
    axis: int,
    position: float,
    size: int = 160,
    device: str | torch.device | None = None,
    max_batch: int = SLICE_BATCH,
) -> SdfSlice:
    """Sample ``sdf_fn`` (Tensor (N, 3) -> Tensor (N,)) on the plane ``x[axis] = position``, no autograd.

    ``device``: where the points are made (the model's device; None: CUDA when present).

    Raises
    ------
    ValueError
        ``axis`` not 0, 1 or 2, or ``size`` under 2.
    """
    pts, coords = plane_points(axis, position, size)
    points = torch.from_numpy(pts).to(resolve_device(device))
    sdf = evaluate_points(sdf_fn, points, max_batch).cpu().numpy()
    return SdfSlice(sdf.reshape(size, size).astype(np.float32), coords, int(axis), float(position))
