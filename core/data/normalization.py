"""DeepSDF normalisation: move a mesh into the unit-sphere frame.

DeepSDF (``NormalizationParameters`` in its preprocessing) centres a shape on its
bounding-box centre and scales it so that the farthest vertex lies at ``1 / 1.03``;
the 3 % margin keeps the surface strictly inside the unit sphere, so queries sampled
near the surface never fall outside the decoder's training domain.

``normalised = (original + offset) * scale``, ``offset = -bbox_centre``,
``scale = 1 / (1.03 * max_i |v_i - bbox_centre|)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # only for the annotation; mesh_io does not import this module
    from core.data.mesh_io import LoadedMesh

__all__ = ["MARGIN", "Normalization", "compute_normalization", "normalize_mesh"]

MARGIN: float = 1.03
"""Radius of the farthest vertex is ``1 / MARGIN`` after normalisation (DeepSDF's value)."""


@dataclass(frozen=True)
class Normalization:
    """Similarity transform from a mesh's original frame into the unit-sphere frame.

    Attributes
    ----------
    offset : np.ndarray
        (3,) float64, added to original points first (``-bbox_centre``).
    scale : float
        Multiplies the offset points (``1 / (1.03 * max radius)``).
    """

    offset: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        offset = np.asarray(self.offset, dtype=np.float64).reshape(3)
        scale = float(self.scale)
        if not (np.isfinite(offset).all() and np.isfinite(scale) and scale > 0):
            raise ValueError(f"Normalization needs a finite offset and positive scale, got {offset}, {scale}")
        # frozen dataclass: set the cleaned values through object.__setattr__
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "scale", scale)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points from the original frame into the unit-sphere frame.

        Parameters
        ----------
        points : np.ndarray
            (..., 3) points, original frame.

        Returns
        -------
        np.ndarray
            (..., 3) points, unit-sphere frame; float32 input stays float32, else float64.
        """
        points = np.asarray(points)
        out = (points.astype(np.float64) + self.offset) * self.scale
        return out.astype(_float_dtype(points), copy=False)

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Map points from the unit-sphere frame back into the original frame.

        Parameters
        ----------
        points : np.ndarray
            (..., 3) points, unit-sphere frame.

        Returns
        -------
        np.ndarray
            (..., 3) points, original frame; float32 input stays float32, else float64.
        """
        points = np.asarray(points)
        out = points.astype(np.float64) / self.scale - self.offset
        return out.astype(_float_dtype(points), copy=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``{"offset": [x, y, z], "scale": s}``."""
        return {"offset": [float(x) for x in self.offset], "scale": float(self.scale)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        return cls(offset=np.asarray(data["offset"], dtype=np.float64), scale=float(data["scale"]))


def compute_normalization(vertices: np.ndarray) -> Normalization:
    """DeepSDF normalisation of a vertex set.

    Parameters
    ----------
    vertices : np.ndarray
        (V, 3) vertex positions, original frame, finite, not all equal.

    Returns
    -------
    Normalization
        ``offset = -bbox_centre``, ``scale = 1 / (1.03 * max |v - bbox_centre|)``.

    Raises
    ------
    ValueError
        If there are no vertices, they are not finite, or they all coincide
        (``load_mesh`` already rejects such meshes, so this is a programming error).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise ValueError(f"compute_normalization needs (V, 3) vertices, V > 0; got shape {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError("compute_normalization got non-finite vertices")
    centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    radius = float(np.linalg.norm(vertices - centre, axis=1).max())
    if radius <= 0.0:
        raise ValueError("compute_normalization got vertices that all coincide; there is no scale")
    return Normalization(offset=-centre, scale=1.0 / (MARGIN * radius))


def normalize_mesh(mesh: LoadedMesh) -> tuple[LoadedMesh, Normalization]:
    """Move a loaded mesh into the unit-sphere frame.

    Parameters
    ----------
    mesh : LoadedMesh
        Mesh in its original frame.

    Returns
    -------
    tuple[LoadedMesh, Normalization]
        The same mesh (faces, colours, parts) with normalised vertices, and the transform used.
    """
    norm = compute_normalization(mesh.vertices)
    return mesh.transformed(norm.apply(mesh.vertices)), norm


def _float_dtype(points: np.ndarray) -> np.dtype:
    """float32 stays float32 (GPU batches); everything else becomes float64."""
    return np.dtype(np.float32) if points.dtype == np.float32 else np.dtype(np.float64)
