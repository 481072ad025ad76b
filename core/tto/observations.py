"""What test-time optimisation fits a code to: SDF samples of one shape, unit-sphere frame.

An :class:`Observation` is built from one of four inputs:

* a preprocessed sample file (``.npz`` with ``pos`` / ``neg``, see ``docs/architecture.md``):
  :func:`from_npz`;
* a mesh file, sampled by the function preprocessing uses (load → normalise → DeepSDF
  sampling → signed distances → colours, :func:`core.data.samples.sample_shape`): :func:`from_mesh`;
* a point cloud with (or without) normals: :func:`from_point_cloud` /
  :func:`from_point_cloud_file`. SDF samples are made as DeepSDF does for shape completion:
  each point stepped along its normal by ``+eta`` (sdf ``+eta``) and ``-eta`` (sdf ``-eta``)
  for a few ``eta``; a cloud without normals gets PCA normals, oriented consistently;
* a single-view depth scan of a mesh (:mod:`core.tto.scan`), which adds free-space samples
  along the camera rays: :func:`from_scan`.

:func:`load_observation` picks the builder from the file. Every builder ends in
:meth:`Observation.validate`, so bad input fails here with an :class:`ObservationError`
naming the input and the fix, never inside the optimiser.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial import cKDTree

from core.data.mesh_io import MESH_SUFFIXES, LoadedMesh
from core.data.normalization import Normalization, compute_normalization
from core.data.samples import SampleSet, empty_side
from core.utils.errors import DataSetError, ExplorerError, ObservationError

if TYPE_CHECKING:
    from core.data.samples import ShapeSamples

__all__ = [
    "Observation",
    "DEFAULT_ETAS",
    "POINT_CLOUD_SUFFIXES",
    "from_sample_set",
    "from_npz",
    "from_mesh",
    "from_point_cloud",
    "from_point_cloud_file",
    "from_scan",
    "scan_observation",
    "load_observation",
    "estimate_normals",
]

DEFAULT_ETAS: tuple[float, ...] = (0.005, 0.0125, 0.025)
"""Step lengths along the normals (unit-sphere frame). DeepSDF's shape completion used
``eta = 0.025``; the shorter steps pin the zero level set more tightly on thin parts."""

POINT_CLOUD_SUFFIXES: tuple[str, ...] = (".xyz", ".txt", ".npy", ".pts")
"""Point tables :func:`read_point_cloud` reads by suffix; a ``.ply`` without faces and an ``.npz`` with
``points`` are clouds too. Mesh files are :data:`core.data.mesh_io.MESH_SUFFIXES`."""


@dataclass
class Observation:
    """SDF samples of one shape plus what the surface / normal terms and the metrics need.

    All arrays are in the unit-sphere frame (``normalization`` maps the original frame there).
    The samples are those of a :class:`core.data.samples.SampleSet` held as one list (what the
    optimiser draws from): :func:`from_sample_set` and :meth:`sample_set` convert.

    Attributes
    ----------
    points : (N, 3) float32
        SDF sample positions.
    sdf : (N,) float32
        Signed distance at ``points``, negative inside.
    colours : (N, 3) float32 in [0, 1] or None
        Colour of the nearest surface point of each sample.
    surface_points : (S, 3) float32 or None
        Observed surface points (the whole surface for npz / mesh input, the seen part for
        clouds and scans).
    surface_normals : (S, 3) float32 or None
        Outward unit normals at ``surface_points``.
    surface_colours : (S, 3) float32 or None
    normalization : Normalization or None
        Original frame → unit-sphere frame; ``None`` when the input was already normalised
        and its transform is unknown.
    source : str
        Where the observation came from (file name, or a description).
    kind : str
        ``npz`` / ``mesh`` / ``point_cloud`` / ``scan``.
    class_name, text : str or None
        Labels carried by the input (a sample file's manifest record), if any.
    extra : dict
        Builder-specific details (etas, camera, counts of free-space samples, ...).
    surface_offset : float
        How far outside the true surface the zero level set of ``sdf`` lies: the ``ε`` of a sample
        file's dilated field (:mod:`core.data.open_mesh_sdf`), 0 for true distances (point clouds, scans).
        Fitting moves the samples to the model's own offset (:meth:`for_surface_offset`).
    """

    points: np.ndarray
    sdf: np.ndarray
    colours: np.ndarray | None = None
    surface_points: np.ndarray | None = None
    surface_normals: np.ndarray | None = None
    surface_colours: np.ndarray | None = None
    normalization: Normalization | None = None
    source: str = "<arrays>"
    kind: str = "arrays"
    class_name: str | None = None
    text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    surface_offset: float = 0.0

    def __len__(self) -> int:
        return len(self.sdf)

    @property
    def has_colour(self) -> bool:
        return self.colours is not None

    def for_surface_offset(self, offset: float) -> "Observation":
        """The same observation with its sdf values measured to the surface dilated by ``offset``.

        Dilating a surface by ``d`` lowers its signed distance by ``d`` near it (exactly outside, to
        first order inside), so the samples shift down by ``offset - surface_offset``: a model trained
        on dilated fields fits a point cloud's true distances. The other way is not done: undoing a
        dilation would leave an open sheet's slab with no inside at all (its samples all lie within
        ε of the sheet), so an undilated model fits a dilated observation as it is, and its surface
        comes out that much outside (``surface_offset`` tells by how much).
        """
        shift = float(self.surface_offset) - float(offset)
        if shift >= 0.0:
            return self
        return replace(self, sdf=(np.asarray(self.sdf, np.float32) + np.float32(shift)), surface_offset=float(offset))

    @property
    def has_surface(self) -> bool:
        return self.surface_points is not None and len(self.surface_points) > 0

    @property
    def has_normals(self) -> bool:
        return self.has_surface and self.surface_normals is not None

    @property
    def positive(self) -> np.ndarray:
        """(N,) bool: samples outside or on the surface (DeepSDF's ``pos``: sdf >= 0)."""
        return self.sdf >= 0

    def validate(self) -> "Observation":
        """Check shapes and values; return ``self``.

        Raises
        ------
        ObservationError
            No samples, mismatched shapes, NaN / inf values, or all samples on one side of
            the surface (an SDF fit needs both inside and outside samples).
        """
        src = self.source
        points = np.asarray(self.points)
        sdf = np.asarray(self.sdf)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
            raise ObservationError(
                f"{src}: no SDF samples (points have shape {points.shape}). "
                "Give a mesh, a sample file with 'pos'/'neg' rows, or a point cloud with at least a few points."
            )
        if sdf.shape != (len(points),):
            raise ObservationError(f"{src}: {len(points)} points but sdf has shape {sdf.shape}; they must match.")
        for name in ("points", "sdf", "colours", "surface_points", "surface_normals", "surface_colours"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                bad = int(np.sum(~np.isfinite(np.asarray(value, np.float64)).reshape(len(value), -1).any(axis=1)))
                raise ObservationError(
                    f"{src}: {bad} rows of '{name}' are NaN or infinite. "
                    "Remove those points (or re-export the file) and try again."
                )
        if self.colours is not None and np.shape(self.colours) != (len(points), 3):
            raise ObservationError(f"{src}: colours have shape {np.shape(self.colours)}, expected ({len(points)}, 3).")
        if self.surface_points is not None and self.surface_normals is not None:
            if np.shape(self.surface_normals) != np.shape(self.surface_points):
                raise ObservationError(
                    f"{src}: {len(self.surface_points)} surface points but normals of shape "
                    f"{np.shape(self.surface_normals)}; give one normal per point."
                )
        n_pos = int(np.sum(sdf >= 0))
        side = empty_side(n_pos, len(sdf) - n_pos)
        if side is not None:
            raise ObservationError(
                f"{src}: all {len(sdf)} SDF samples lie {side}; a fit needs samples on both sides of the surface. "
                "Check the sign convention (negative inside), that normals point outward, or that the mesh is closed."
            )
        return self

    def sample_set(self) -> SampleSet:
        """The samples in DeepSDF's layout (split by sign, in their order), with the surface points,
        normals and colours; the inverse of :func:`from_sample_set` up to the order of the samples."""
        return SampleSet.from_flat(
            self.points,
            self.sdf,
            self.colours,
            surface_points=self.surface_points,
            surface_normals=self.surface_normals,
            surface_rgb=self.surface_colours,
        )

    def subset(self, index: np.ndarray) -> "Observation":
        """The same observation restricted to the samples ``index`` (surface arrays kept)."""
        return replace(
            self,
            points=self.points[index],
            sdf=self.sdf[index],
            colours=None if self.colours is None else self.colours[index],
            extra=dict(self.extra),
        )

    def summary(self) -> dict[str, Any]:
        """Counts for logs and ``codes.json``."""
        return {
            "source": self.source,
            "kind": self.kind,
            "n_samples": int(len(self.sdf)),
            "n_pos": int(np.sum(self.sdf >= 0)),
            "n_neg": int(np.sum(self.sdf < 0)),
            "n_surface": 0 if self.surface_points is None else int(len(self.surface_points)),
            "has_colour": self.has_colour,
            "has_normals": self.has_normals,
            "normalization": None if self.normalization is None else self.normalization.to_dict(),
        }


# --------------------------------------------------------------------------- npz


def from_npz(path: str | Path) -> Observation:
    """Observation from a preprocessed sample file (``pos`` / ``neg`` rows of x, y, z, sdf).

    Read by :func:`core.data.samples.read_samples`, the one reader of the format; an ``.npz`` with
    ``points`` instead is read as a point cloud.

    Raises
    ------
    ObservationError
        Missing, unreadable or damaged file, no ``pos`` / ``neg`` keys, bad values.
    """
    from core.data.samples import NotASampleFileError, read_samples

    path = Path(path)
    if not path.is_file():
        raise ObservationError(
            f"{path}: no such sample file. Check the path (preprocess meshes with 'main.py preprocess')."
        )
    try:
        samples = read_samples(path)
    except NotASampleFileError as exc:
        if "points" in exc.keys:  # a point cloud saved as npz
            return from_point_cloud_file(path)
        raise ObservationError(
            f"{path}: no 'pos'/'neg' arrays (keys: {exc.keys}). "
            "Give a DeepSDF sample file from 'main.py preprocess', or a point cloud npz with 'points' (and 'normals')."
        ) from exc
    except DataSetError as exc:
        raise ObservationError(str(exc)) from exc
    return _from_shape_samples(samples, source=str(path), kind="npz")


def from_sample_set(
    samples: SampleSet,
    source: str = "<samples>",
    kind: str = "samples",
    normalization: Normalization | None = None,
    surface_offset: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> Observation:
    """The observation of a shape's samples: a sample file's :class:`~core.data.samples.ShapeSamples`,
    training's :class:`~core.data.training_set.TrainingShape` (uint8 colours come back in [0, 1]) or any
    :class:`~core.data.samples.SampleSet`; ``pos`` rows first, empty surface arrays dropped.

    Raises
    ------
    ObservationError
        As :meth:`Observation.validate`.
    """
    points, sdf, colours = samples.flat()
    obs = Observation(
        points=points,
        sdf=sdf,
        colours=colours,
        surface_points=_opt(samples.surface_points),
        surface_normals=_opt(samples.surface_normals),
        surface_colours=_opt(samples.surface_rgb),
        normalization=normalization,
        source=source,
        kind=kind,
        extra=dict(extra or {}),
        surface_offset=surface_offset,
    )
    return obs.validate()


def _from_shape_samples(samples: ShapeSamples, source: str, kind: str) -> Observation:
    """A sample file's content as an observation, with its normalisation, surface offset and colour path."""
    return from_sample_set(
        samples,
        source=source,
        kind=kind,
        normalization=samples.normalization,
        surface_offset=samples.surface_offset,
        extra={"colour_path": samples.colour_path},
    )


def _opt(value: np.ndarray | None) -> np.ndarray | None:
    return None if value is None or value.size == 0 else np.asarray(value, dtype=np.float32)


# --------------------------------------------------------------------------- mesh


def from_mesh(
    path: str | Path,
    n_samples: int = 100_000,
    n_surface: int = 30_000,
    backend: str = "auto",
    seed: int = 0,
) -> Observation:
    """Observation of a whole mesh, sampled exactly as the training data is.

    Runs :func:`core.data.samples.sample_shape`, the function preprocessing uses, so test-time
    samples follow the training distribution (DeepSDF: 47/50 near-surface).

    Parameters
    ----------
    n_samples : SDF samples (DeepSDF preprocesses 500,000; a fit draws 8,000 per iteration,
        so fewer suffice and are faster to compute).
    n_surface : surface points kept for the surface / normal terms and the metrics.
    seed : the samples are a function of the mesh and this seed.

    Raises
    ------
    ObservationError
        The mesh cannot be loaded or sampled (the message carries the loader's reason).
    """
    from core.data.mesh_io import load_mesh
    from core.data.samples import MAX_FACES, sample_shape, shape_rng
    from core.data.sampling import SamplingConfig

    path = Path(path)
    try:
        config = SamplingConfig(n_samples=max(100, int(n_samples)), n_surface=int(n_surface), backend=backend)
        rng = shape_rng(seed, "input", path.stem or "shape")  # as preprocessing seeds a shape of class "input"
        samples = sample_shape(load_mesh(path), config, rng, max_faces=MAX_FACES)
    except ObservationError:
        raise
    except ExplorerError as exc:
        raise ObservationError(f"{path}: cannot be used as an observation: {exc}") from exc
    except ValueError as exc:
        raise ObservationError(f"{path}: cannot be sampled ({exc}). Check that it is a closed surface mesh.") from exc
    return _from_shape_samples(samples, source=str(path), kind="mesh")


# --------------------------------------------------------------------------- point clouds


def estimate_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """Unit normals of an unoriented cloud: PCA of the ``k`` nearest neighbours, oriented.

    Orientation is made consistent by propagating along a minimum spanning tree of the kNN
    graph weighted by ``1 - |n_i . n_j|`` (Hoppe et al. 1992), starting from the point
    farthest from the centroid, whose normal is turned away from the centroid. The global
    sign is then chosen so that most normals point away from the centroid.

    Parameters
    ----------
    points : (N, 3) float, N >= 3.

    Returns
    -------
    (N, 3) float32 unit normals.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    k = int(min(max(3, k), n))
    tree = cKDTree(p)
    _, idx = tree.query(p, k=k)
    nbrs = p[idx]  # (N, k, 3)
    centred = nbrs - nbrs.mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", centred, centred)
    _, vecs = np.linalg.eigh(cov)
    normals = vecs[:, :, 0]  # eigenvector of the smallest eigenvalue
    centroid = p.mean(axis=0)

    # Propagate orientation over an MST of the symmetric kNN graph.
    rows = np.repeat(np.arange(n), k)
    cols = idx.reshape(-1)
    keep = rows != cols
    rows, cols = rows[keep], cols[keep]
    weight = 1.0 - np.abs(np.sum(normals[rows] * normals[cols], axis=1)) + 1e-6
    graph = coo_matrix((weight, (rows, cols)), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T)
    mst = minimum_spanning_tree(graph)
    mst = mst + mst.T
    n_comp, labels = connected_components(mst, directed=False)
    radial = p - centroid
    for comp in range(n_comp):
        members = np.flatnonzero(labels == comp)
        root = members[np.argmax(np.einsum("ij,ij->i", radial[members], radial[members]))]
        if np.dot(normals[root], radial[root]) < 0:
            normals[root] = -normals[root]
        order, parent = breadth_first_order(mst, root, directed=False, return_predecessors=True)
        for node in order[1:]:
            if np.dot(normals[node], normals[parent[node]]) < 0:
                normals[node] = -normals[node]
    if np.mean(np.sum(normals * radial, axis=1) > 0) < 0.5:
        normals = -normals
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return normals.astype(np.float32)


def from_point_cloud(
    points: np.ndarray,
    normals: np.ndarray | None = None,
    colours: np.ndarray | None = None,
    etas: tuple[float, ...] = DEFAULT_ETAS,
    normalization: Normalization | None | str = "fit",
    source: str = "<point cloud>",
    k_normals: int = 16,
    free_points: np.ndarray | None = None,
    free_sdf: np.ndarray | None = None,
) -> Observation:
    """SDF samples from an oriented point cloud, as DeepSDF does for shape completion.

    Each point ``p`` with outward normal ``n`` gives ``p + eta * n`` with sdf ``+eta`` and
    ``p - eta * n`` with sdf ``-eta``, for every ``eta`` in ``etas`` (unit-sphere frame).

    Parameters
    ----------
    points : (N, 3) float, original frame (or unit-sphere frame with ``normalization=None``).
    normals : (N, 3) outward normals, or None to estimate them (with a warning).
    colours : (N, 3) in [0, 1] (or 0..255, rescaled), optional.
    etas : step lengths, unit-sphere frame; each must be positive.
    normalization : ``"fit"`` normalises the cloud into the unit sphere (DeepSDF's transform
        of its bounding box), a :class:`Normalization` applies that one, None keeps the frame.
    free_points, free_sdf : extra positive samples (already in the unit-sphere frame), e.g. the
        free space in front of a scan.

    Raises
    ------
    ObservationError
        No points, NaNs, bad shapes, non-positive etas.
    """
    pts = _cloud_points(points, etas, source)
    pts, normalization = _normalised_cloud(pts, normalization, source)
    nrm = _cloud_normals(pts, normals, source, k_normals)
    rgb = _cloud_colours(colours, pts, source)
    sample_points, sample_sdf = _stepped_samples(pts, nrm, etas)
    sample_rgb = None if rgb is None else np.tile(rgb, (len(etas) * 2, 1))
    n_free = 0
    if free_points is not None and len(free_points):
        free_points = np.asarray(free_points, dtype=np.float64).reshape(-1, 3)
        free_sdf = np.asarray(free_sdf, dtype=np.float64).reshape(-1)
        n_free = len(free_points)
        sample_points = np.concatenate([sample_points, free_points])
        sample_sdf = np.concatenate([sample_sdf, free_sdf])
        if sample_rgb is not None and rgb is not None:
            # Free-space samples have no colour of their own: give them their nearest point's.
            _, near = cKDTree(pts).query(free_points)
            sample_rgb = np.concatenate([sample_rgb, rgb[near]])
    obs = Observation(
        points=sample_points.astype(np.float32),
        sdf=sample_sdf.astype(np.float32),
        colours=None if sample_rgb is None else sample_rgb.astype(np.float32),
        surface_points=pts.astype(np.float32),
        surface_normals=nrm.astype(np.float32),
        surface_colours=rgb,
        normalization=normalization,
        source=source,
        kind="point_cloud",
        extra={"etas": [float(e) for e in etas], "estimated_normals": normals is None, "n_free_space": n_free},
    )
    return obs.validate()


def _cloud_points(points: np.ndarray, etas: tuple[float, ...], source: str) -> np.ndarray:
    """``points`` as (N, 3) float64 after checking them and ``etas`` (:func:`from_point_cloud`'s errors)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[-1] != 3 or len(pts) == 0:
        raise ObservationError(
            f"{source}: no points (array of shape {pts.shape}). "
            "Give an (N, 3) cloud with N >= 3, with normals if possible."
        )
    if not np.all(np.isfinite(pts)):
        bad = int(np.sum(~np.isfinite(pts).all(axis=1)))
        raise ObservationError(f"{source}: {bad} points are NaN or infinite. Remove them and try again.")
    if len(pts) < 3:
        raise ObservationError(
            f"{source}: only {len(pts)} points; at least 3 are needed (and far more for a useful fit)."
        )
    if not etas or any(float(e) <= 0 for e in etas):
        raise ObservationError(f"{source}: etas must be positive step lengths, got {etas}.")
    return pts


def _normalised_cloud(
    pts: np.ndarray, normalization: Normalization | None | str, source: str
) -> tuple[np.ndarray, Normalization | None]:
    """The cloud in the unit-sphere frame and the transform used (``"fit"``: DeepSDF's, fitted to the cloud)."""
    if isinstance(normalization, str):
        if normalization != "fit":
            raise ValueError(f"normalization must be 'fit', a Normalization or None, got {normalization!r}")
        try:
            normalization = compute_normalization(pts)
        except ValueError as exc:
            raise ObservationError(f"{source}: all points coincide; there is no shape to fit.") from exc
    if normalization is not None:
        pts = normalization.apply(pts)
    return pts, normalization


def _cloud_normals(pts: np.ndarray, normals: np.ndarray | None, source: str, k_normals: int) -> np.ndarray:
    """(N, 3) float64 unit normals: ``normals`` checked and normalised, or estimated (with a warning)."""
    if normals is None:
        warnings.warn(
            f"{source}: the point cloud has no normals; estimating them from {k_normals} nearest neighbours "
            "(PCA, consistently oriented, outward from the centroid). Give normals for a reliable sign.",
            stacklevel=3,  # the caller of from_point_cloud
        )
        return estimate_normals(pts, k=k_normals).astype(np.float64)
    nrm = np.asarray(normals, dtype=np.float64)
    if nrm.shape != pts.shape:
        raise ObservationError(f"{source}: {len(pts)} points but normals of shape {nrm.shape}; give one per point.")
    if not np.all(np.isfinite(nrm)):
        raise ObservationError(
            f"{source}: some normals are NaN or infinite. Fix them or drop the normals to have them estimated."
        )
    length = np.linalg.norm(nrm, axis=1, keepdims=True)
    if np.any(length < 1e-12):
        raise ObservationError(
            f"{source}: {int(np.sum(length < 1e-12))} normals have zero length. "
            "Fix them or drop the normals to have them estimated."
        )
    return nrm / length


def _cloud_colours(colours: np.ndarray | None, pts: np.ndarray, source: str) -> np.ndarray | None:
    """(N, 3) float32 colours in [0, 1] (0..255 rescaled), or None."""
    if colours is None:
        return None
    rgb = np.asarray(colours, dtype=np.float32)[:, :3]
    if rgb.shape != pts.shape:
        raise ObservationError(f"{source}: {len(pts)} points but colours of shape {rgb.shape}.")
    if rgb.size and rgb.max() > 1.0:
        rgb = rgb / 255.0
    return np.clip(rgb, 0.0, 1.0)


def _stepped_samples(pts: np.ndarray, nrm: np.ndarray, etas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """DeepSDF's shape-completion samples: every point stepped by ``+eta`` then ``-eta`` along its normal.

    Returns points (2 E N, 3) and sdf (2 E N,) float64, grouped by step (all points at ``etas[0]`` first).
    """
    etas_arr = np.asarray(etas, dtype=np.float64)
    offsets = np.concatenate([etas_arr, -etas_arr])  # (2E,)
    sample_points = (pts[None, :, :] + offsets[:, None, None] * nrm[None, :, :]).reshape(-1, 3)
    return sample_points, np.repeat(offsets, len(pts))


def read_point_cloud(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(points (N, 3), normals (N, 3) | None, colours (N, 3) | None)`` from a cloud file.

    Formats: PLY (vertex ``x y z`` [``nx ny nz``] [``red green blue``]), XYZ / TXT / PTS
    (3, 6 or 9 whitespace-separated columns: xyz, normals, colours), NPY ((N, 3), (N, 6) or
    (N, 9) in that column order), NPZ (``points`` [``normals``] [``colours``]).
    """
    path = Path(path)
    if not path.is_file():
        raise ObservationError(f"{path}: no such point cloud file. Check the path.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path) as data:
                if "points" not in data.files:
                    raise ObservationError(
                        f"{path}: no 'points' array (keys: {data.files}). Save the cloud as points=(N, 3)."
                    )
                pts = data["points"]
                nrm = data["normals"] if "normals" in data.files else None
                rgb_key = next((k for k in ("colours", "colors") if k in data.files), None)
                rgb = data[rgb_key] if rgb_key is not None else None
            return np.asarray(pts, np.float64), _maybe(nrm), _maybe(rgb)
        if suffix == ".ply":
            return _read_ply_cloud(path)
        table = np.load(path) if suffix == ".npy" else np.loadtxt(path, ndmin=2, comments=("#", "//"))
    except ObservationError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ObservationError(f"{path}: cannot read it as a point cloud ({exc}).") from exc
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] not in (3, 6, 7, 9, 10):
        raise ObservationError(
            f"{path}: a point table needs 3 (xyz), 6 (xyz + normals) or 9 (xyz + normals + rgb) columns, "
            f"got shape {table.shape}."
        )
    normals = table[:, 3:6] if table.shape[1] >= 6 else None
    colours = table[:, 6:9] if table.shape[1] >= 9 else None
    return table[:, :3], normals, colours


def _maybe(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, np.float64)


def _read_ply_cloud(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    import trimesh

    loaded = trimesh.load(str(path), process=False)
    raw = (getattr(loaded, "metadata", {}) or {}).get("_ply_raw", {})
    vertex = raw.get("vertex", {}).get("data") if isinstance(raw, dict) else None
    points = np.asarray(getattr(loaded, "vertices", np.empty((0, 3))), dtype=np.float64)  # a scene has none
    normals = colours = None
    columns: dict[str, np.ndarray] = {}
    if isinstance(vertex, dict):  # ASCII PLY: one (N, 1) array per property
        columns = {k: np.asarray(v).reshape(-1) for k, v in vertex.items()}
    elif vertex is not None and getattr(vertex, "dtype", None) is not None and vertex.dtype.names:
        columns = {k: np.asarray(vertex[k]).reshape(-1) for k in vertex.dtype.names}
    if all(n in columns for n in ("nx", "ny", "nz")):
        normals = np.stack([columns[n] for n in ("nx", "ny", "nz")], axis=1).astype(np.float64)
    if all(n in columns for n in ("red", "green", "blue")):
        colours = np.stack([columns[n] for n in ("red", "green", "blue")], axis=1).astype(np.float64)
    if colours is None:
        vc = getattr(getattr(loaded, "visual", None), "vertex_colors", None)
        if vc is None:
            vc = getattr(loaded, "colors", None)
        if vc is not None and len(vc) == len(points) and np.ptp(np.asarray(vc)[:, :3]) > 0:
            colours = np.asarray(vc, np.float64)[:, :3]
    return points, normals, colours


def from_point_cloud_file(path: str | Path, etas: tuple[float, ...] = DEFAULT_ETAS, k_normals: int = 16) -> Observation:
    """:func:`from_point_cloud` on a PLY / XYZ / TXT / NPY / NPZ file (see :func:`read_point_cloud`)."""
    points, normals, colours = read_point_cloud(path)
    return from_point_cloud(points, normals, colours, etas=etas, source=str(path), k_normals=k_normals)


# --------------------------------------------------------------------------- scans


def from_scan(
    mesh_path: str | Path,
    direction: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 1.0),
    resolution: int = 128,
    etas: tuple[float, ...] = DEFAULT_ETAS,
    free_space_per_ray: int = 2,
    seed: int = 0,
    up: tuple[float, float, float] | None = None,
) -> Observation:
    """Observation of a single-view depth scan of a mesh (shape completion from one side).

    The mesh is normalised into the unit sphere, scanned by :func:`core.tto.scan.depth_scan`
    from the camera at ``direction`` (on the unit sphere, looking at the origin), the depth
    map back-projected to points with normals facing the camera, stepped along the normals
    (:func:`from_point_cloud`), and free-space samples along the rays in front of the
    surface added as positive samples. The observation keeps the *mesh's* normalisation, so
    its reconstruction compares directly with the full shape.
    """
    from core.data.mesh_io import load_mesh
    from core.data.normalization import normalize_mesh

    try:
        mesh = load_mesh(mesh_path)
    except ExplorerError as exc:
        raise ObservationError(f"{mesh_path}: cannot scan it: {exc}") from exc
    mesh, normalization = normalize_mesh(mesh)
    obs = scan_observation(mesh, direction, resolution, etas, free_space_per_ray, seed, up, source=str(mesh_path))
    obs.normalization = normalization
    return obs


def scan_observation(
    mesh: LoadedMesh,
    direction: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 1.0),
    resolution: int = 128,
    etas: tuple[float, ...] = DEFAULT_ETAS,
    free_space_per_ray: int = 2,
    seed: int = 0,
    up: tuple[float, float, float] | None = None,
    source: str = "mesh",
) -> Observation:
    """A single-view depth scan of ``mesh`` as it lies (already in the frame the fit works in; the
    evaluation's partial scans pass the source mesh in its sample file's frame). See :func:`from_scan`.
    Its ``surface_points`` are what the camera saw (the unseen side is the rest of the surface)."""
    from core.tto.scan import depth_scan, free_space_samples

    scan = depth_scan(mesh.vertices, mesh.faces, direction=direction, resolution=resolution, up=up)
    if len(scan.points) < 3:
        raise ObservationError(
            f"{source}: the scan from direction {tuple(np.round(scan.direction, 3))} "
            f"sees {len(scan.points)} surface points. "
            "Raise --scan-resolution or pick another direction."
        )
    colours = mesh.colours_at(scan.face_index, scan.barycentric)
    rng = np.random.default_rng(seed)
    free_points, free_sdf = free_space_samples(scan, per_ray=free_space_per_ray, rng=rng)
    obs = from_point_cloud(
        scan.points,
        scan.normals,
        colours,
        etas=etas,
        normalization=None,
        source=f"{source} (scan from {tuple(np.round(scan.direction, 3))})",
        free_points=free_points,
        free_sdf=free_sdf,
    )
    obs.kind = "scan"
    obs.extra.update(camera=scan.camera.tolist(), direction=scan.direction.tolist(), resolution=int(resolution))
    return obs


# --------------------------------------------------------------------------- dispatch


def load_observation(
    path: str | Path,
    n_samples: int = 100_000,
    etas: tuple[float, ...] = DEFAULT_ETAS,
    scan_direction: tuple[float, float, float] | None = None,
    seed: int = 0,
) -> Observation:
    """Observation from any supported file, by its content.

    * ``.npz`` with ``pos`` / ``neg``: a sample file; with ``points``: a point cloud;
    * ``.xyz`` / ``.txt`` / ``.pts`` / ``.npy``: a point cloud;
    * ``.ply``: a mesh when it has faces, else a point cloud;
    * other mesh formats: the mesh (or, with ``scan_direction``, a single-view scan of it).
    """
    path = Path(path)
    if not path.exists():
        raise ObservationError(f"{path}: no such file. Check the path given to --input.")
    if not path.is_file():  # a FIFO would block np.load until a writer comes; a folder fails obscurely
        raise ObservationError(
            f"{path}: not a regular file (a folder, FIFO or device). Give a mesh, sample or point file to --input."
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return from_npz(path)
    if suffix in POINT_CLOUD_SUFFIXES:
        return from_point_cloud_file(path, etas=etas)
    if suffix == ".ply" and not _ply_has_faces(path):
        return from_point_cloud_file(path, etas=etas)
    if suffix in MESH_SUFFIXES:
        if scan_direction is not None:
            return from_scan(path, direction=scan_direction, etas=etas, seed=seed)
        return from_mesh(path, n_samples=n_samples, seed=seed)
    raise ObservationError(
        f"{path}: unknown input type '{suffix}'. Give a mesh ({', '.join(MESH_SUFFIXES)}), a sample file (.npz) "
        f"or a point cloud ({', '.join(POINT_CLOUD_SUFFIXES)}, .ply, .npz)."
    )


def _ply_has_faces(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            header = handle.read(4096).split(b"end_header")[0].decode("ascii", "replace")
    except OSError:
        return True
    for line in header.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "element" and parts[1] == "face":
            return int(parts[2]) > 0
    return False
