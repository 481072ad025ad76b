"""The one owner of the per-shape sample file: what it holds, how it is made, written and read.

A sample file is an ``.npz`` in DeepSDF's layout (``pos`` / ``neg`` rows of x, y, z, sdf),
readable by the original DeepSDF code, plus colours, viewing directions, surface points and
the normalisation (every key in ``docs/architecture.md``). Every part of the project goes
through this module:

* :class:`SampleSet` is the in-memory core of the format (``pos`` / ``neg`` rows, their colours
  and viewing directions, surface points): :class:`ShapeSamples` (a file's whole content),
  :class:`core.data.training_set.TrainingShape` (training's compact copy) extend it, and
  :class:`core.tto.observations.Observation` converts from and to it (:meth:`SampleSet.flat`,
  :meth:`SampleSet.from_flat`);
* :func:`sample_shape` turns a loaded mesh into :class:`ShapeSamples` (pure: the result is a
  function of the mesh, the settings and the generator's state);
* :func:`write_samples` writes them atomically (preprocessing, the test fixtures);
* :func:`read_samples` reads and validates a file (training data set, TTO observations,
  evaluation ground truth); :func:`inspect_samples` does the same checks on the arrays'
  headers only, to decide cheaply whether a finished file can be kept on resume.

Both readers share one validation, so a damaged, truncated or incomplete file gets the same
:class:`~core.utils.errors.DataSetError` naming the file, the problem and the fix wherever it is read.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from core.data.normalization import Normalization
from core.utils.errors import DataSetError
from core.utils.io_utils import atomic_save_npz

if TYPE_CHECKING:
    from core.data.mesh_io import LoadedMesh
    from core.data.sampling import SamplingConfig
    from core.data.sdf_backends import SdfField

__all__ = [
    "SampleSet",
    "ShapeSamples",
    "SamplesInfo",
    "NotASampleFileError",
    "MAX_FACES",
    "shape_rng",
    "sample_shape",
    "mesh_sdf_field",
    "surface_offset_of",
    "sampling_record",
    "write_samples",
    "read_samples",
    "inspect_samples",
    "empty_side",
    "colour_to_float",
    "colour_to_uint8",
]

MAX_FACES = 2_000_000
"""Default limit on a mesh's faces (``preprocess --max-faces``); larger meshes are refused."""

_ROWS = ("pos", "neg")
# optional per-sample arrays: key -> which of pos / neg it goes with
_PER_SAMPLE = {"pos_rgb": "pos", "neg_rgb": "neg", "pos_view": "pos", "neg_view": "neg"}
_SURFACE = ("surface_points", "surface_normals", "surface_rgb")
_FIX = "Delete it and run `main.py preprocess` again (it redoes missing shapes)"


class NotASampleFileError(DataSetError):
    """A readable ``.npz`` without ``pos`` / ``neg``; ``keys`` lets a caller try another format."""

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys


_S = TypeVar("_S", bound="SampleSet")


@dataclass
class SampleSet:
    """One shape's signed-distance samples in DeepSDF's layout, unit-sphere frame: the core of the format.

    :class:`ShapeSamples` (a sample file's content) and :class:`core.data.training_set.TrainingShape`
    (training's compact copy) extend it; :class:`core.tto.observations.Observation` holds the same
    samples flat, converted by :meth:`flat` and :meth:`from_flat`.

    Attributes
    ----------
    pos, neg : (P, 4), (Q, 4) float32
        x, y, z, sdf with sdf >= 0 / sdf < 0 (DeepSDF's layout).
    pos_rgb, neg_rgb : (P, 3), (Q, 3), or None
        Colour of the nearest surface point: float32 in [0, 1] (uint8 0-255 in training's compact copy).
    pos_view, neg_view : (P, 3), (Q, 3) float32 (float16 in the compact copy) unit vectors, or None
        Viewing direction onto that point.
    surface_points, surface_normals, surface_rgb : (S, 3) float32, or None
        Area-weighted surface points (DeepSDF's SurfaceSamples), their normals and colours.
    """

    pos: np.ndarray
    neg: np.ndarray
    pos_rgb: np.ndarray | None = None
    neg_rgb: np.ndarray | None = None
    pos_view: np.ndarray | None = None
    neg_view: np.ndarray | None = None
    surface_points: np.ndarray | None = None
    surface_normals: np.ndarray | None = None
    surface_rgb: np.ndarray | None = None

    @property
    def has_colour(self) -> bool:
        return self.pos_rgb is not None and self.neg_rgb is not None

    @property
    def has_view(self) -> bool:
        return self.pos_view is not None and self.neg_view is not None

    @property
    def n_samples(self) -> int:
        return len(self.pos) + len(self.neg)

    def take(self: _S, pos_index: np.ndarray | None, neg_index: np.ndarray | None) -> _S:
        """The same set with only the ``pos`` rows ``pos_index`` and ``neg`` rows ``neg_index`` (None: all);
        their colours and viewing directions follow, the surface points are kept whole."""
        picked: dict[str, Any] = {}  # each field keeps its own Optional
        for side, index in (("pos", pos_index), ("neg", neg_index)):
            if index is None:
                continue
            for key in (side, f"{side}_rgb", f"{side}_view"):
                value = getattr(self, key)
                picked[key] = None if value is None else value[index]
        return replace(self, **picked) if picked else self

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The samples as one list, ``pos`` rows first: points (N, 3) float32, sdf (N,) float32 and
        colours (N, 3) float32 in [0, 1] (None without colours)."""
        rows = np.concatenate([self.pos, self.neg], axis=0)
        colours = None
        if self.has_colour:
            colours = np.concatenate([colour_to_float(self.pos_rgb), colour_to_float(self.neg_rgb)], axis=0)
        return rows[:, :3].astype(np.float32), rows[:, 3].astype(np.float32), colours

    @classmethod
    def from_flat(
        cls: type[_S], points: np.ndarray, sdf: np.ndarray, colours: np.ndarray | None = None, **fields: Any
    ) -> _S:
        """The set of samples given as one list: ``points`` (N, 3), ``sdf`` (N,), ``colours`` (N, 3) or None,
        split by sign (sdf >= 0 is ``pos``) in their order; ``fields`` fills the rest (surface points, ...)."""
        points = np.asarray(points, np.float32)
        sdf = np.asarray(sdf, np.float32)
        positive = sdf >= 0
        rows = np.concatenate([points, sdf[:, None]], axis=1)
        if colours is not None:
            colours = np.asarray(colours, np.float32)
            fields.update(pos_rgb=colours[positive], neg_rgb=colours[~positive])
        return cls(pos=rows[positive], neg=rows[~positive], **fields)


@dataclass
class ShapeSamples(SampleSet):
    """One shape's samples in the unit-sphere frame, as stored in its sample file.

    The samples themselves are :class:`SampleSet`'s fields (``pos``, ``neg``, their colours and
    viewing directions, the surface points, normals and colours, float32); besides them:

    Attributes
    ----------
    normalization : Normalization or None
        Original frame → unit-sphere frame.
    colour_path, sdf_backend : str or None
        Where the colours came from; which SDF method made the distances.
    stats : dict
        Counts and settings that go into the manifest (``stats_json`` in the file).
    """

    normalization: Normalization | None = None
    colour_path: str | None = None
    sdf_backend: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def surface_offset(self) -> float:
        """How far outside the mesh's surface the sdf's zero level set lies (the ``auto`` field's ``ε``;
        0 for the undilated back ends and for files written before the dilation)."""
        return surface_offset_of(self.stats)

    def arrays(self) -> dict[str, np.ndarray]:
        """The file's keys and arrays (only those present); plain arrays, no pickles."""
        out: dict[str, np.ndarray] = {"pos": self.pos, "neg": self.neg}
        for key in (*_PER_SAMPLE, *_SURFACE):
            value = getattr(self, key)
            if value is not None:
                out[key] = np.asarray(value, np.float32)
        if self.normalization is not None:
            out["offset"] = np.asarray(self.normalization.offset, np.float64)
            out["scale"] = np.asarray(self.normalization.scale, np.float64)
        if self.colour_path is not None:
            out["colour_path"] = np.asarray(self.colour_path)
        if self.sdf_backend is not None:
            out["sdf_backend"] = np.asarray(self.sdf_backend)
        if self.stats:
            out["stats_json"] = np.asarray(json.dumps(self.stats))
        return out


@dataclass
class SamplesInfo:
    """What :func:`inspect_samples` learns from a file without loading its arrays."""

    path: Path
    shapes: dict[str, tuple[int, ...]]
    stats: dict[str, Any]

    @property
    def n_samples(self) -> int:
        return self.shapes["pos"][0] + self.shapes["neg"][0]

    @property
    def n_surface(self) -> int:
        return self.shapes.get("surface_points", (0,))[0]


# --------------------------------------------------------------------------- making


def surface_offset_of(stats: dict[str, Any]) -> float:
    """The surface offset (``ε``) a sample file's stats record (``stats["sdf_field"]["epsilon"]``), else 0."""
    try:
        return float((stats.get("sdf_field") or {}).get("epsilon", 0.0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


def shape_rng(seed: int, class_name: str, shape_id: str) -> np.random.Generator:
    """The generator a shape is sampled with: from the base seed and the shape's name only.

    So a shape gets the same samples whatever the processing order, worker or shard.
    """
    digest = hashlib.sha1(f"{class_name}/{shape_id}".encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


def sample_shape(
    mesh: LoadedMesh, config: SamplingConfig, rng: np.random.Generator, max_faces: int | None = None
) -> ShapeSamples:
    """Samples of one mesh, DeepSDF's way: normalise, draw queries, signed distances, colours.

    Parameters
    ----------
    mesh : LoadedMesh
        Original frame, with colours (from :func:`core.data.mesh_io.load_mesh`).
    config : SamplingConfig
        Counts (``n_samples`` queries, ``n_surface`` surface points), spread and SDF back end.
    rng : np.random.Generator
        The only source of randomness: equal generators give equal samples.
    max_faces : int, optional
        Refuse larger meshes (the SDF of a huge mesh would run for hours).

    Raises
    ------
    DataSetError
        Too many faces, non-finite distances, or no sample inside (open / inside-out mesh);
        the message names ``mesh.source``.
    """
    from core.data.normalization import normalize_mesh
    from core.data.sampling import sample_sdf_queries, sample_surface

    source = mesh.source
    if max_faces is not None and len(mesh.faces) > max_faces:
        raise DataSetError(
            f"{source}: too large ({len(mesh.faces):,} faces > max_faces {max_faces:,}). "
            "Simplify the mesh or raise --max-faces."
        )
    mesh, normalization = normalize_mesh(mesh)
    cache: dict[str, Any] = {}  # what the query draws of one mesh share (its thickness)
    queries = sample_sdf_queries(mesh.vertices, mesh.faces, config.n_samples, rng, config, cache)
    field = mesh_sdf_field(mesh, config.backend)
    result = field(queries)
    sdf = np.asarray(result.sdf, dtype=np.float32)
    if not np.all(np.isfinite(sdf)):
        raise DataSetError(f"{source}: the SDF back end returned non-finite distances; the mesh is degenerate.")
    rgb = mesh.colours_at(result.closest_face, result.closest_barycentric).astype(np.float32)
    view = np.asarray(result.view_dirs, dtype=np.float32)
    if config.balance_sign:
        queries, sdf, rgb, view = _balance_sign(mesh, field, config, rng, queries, sdf, rgb, view, cache)
    surface = sample_surface(mesh.vertices, mesh.faces, config.n_surface, rng)
    surface_rgb = mesh.colours_at(surface.face_index, surface.barycentric).astype(np.float32)

    samples = np.concatenate([queries.astype(np.float32), sdf[:, None]], axis=1)
    positive = sdf >= 0
    if not (~positive).any():
        raise DataSetError(
            f"{source}: no sample fell inside the mesh (open or inside-out surface?). "
            "Repair the mesh (close holes, fix normals) or use --backend mesh_to_sdf."
        )
    stats: dict[str, Any] = {
        "n_pos": int(positive.sum()),
        "n_neg": int((~positive).sum()),
        "n_vertices": int(len(mesh.vertices)),
        "n_faces": int(len(mesh.faces)),
        "colour_path": mesh.colour_path,
        "sdf_backend": result.backend,
        "sdf_field": field.record(),
        "warnings": list(getattr(mesh, "warnings", []) or []),
    }
    if config.thin_aware or config.balance_sign:
        # only when not DeepSDF's scheme, so default files stay byte for byte as before
        stats["sampling"] = sampling_record(config)
    return ShapeSamples(
        pos=samples[positive],
        neg=samples[~positive],
        pos_rgb=rgb[positive],
        neg_rgb=rgb[~positive],
        pos_view=view[positive],
        neg_view=view[~positive],
        surface_points=np.asarray(surface.points, dtype=np.float32),
        surface_normals=np.asarray(surface.normals, dtype=np.float32),
        surface_rgb=surface_rgb,
        normalization=normalization,
        colour_path=mesh.colour_path,
        sdf_backend=result.backend,
        stats=stats,
    )


def mesh_sdf_field(mesh: LoadedMesh, backend: str) -> SdfField:
    """The signed-distance field of a loaded mesh (unit-sphere frame) by ``backend``.

    See-through parts (:data:`core.data.mesh_io.SEE_THROUGH_BELOW`) are passed on, so the open-mesh
    field lets its outside fill through glass instead of filling what is behind it.
    """
    from core.data.mesh_io import SEE_THROUGH_BELOW
    from core.data.sdf_backends import sdf_field

    see_through = mesh.face_opacity < SEE_THROUGH_BELOW
    return sdf_field(mesh.vertices, mesh.faces, backend, see_through=see_through if see_through.any() else None)


_BALANCE_ROUNDS = 8
"""Extra query rounds ``balance_sign`` draws at most to find enough samples of the rarer side."""


def sampling_record(config: SamplingConfig) -> dict[str, Any]:
    """The thin-aware settings a shape was made with (absent from a file: DeepSDF's defaults)."""
    return {
        "near_allocation": config.near_allocation,
        "thin_band_variance": float(config.thin_band_variance),
        "balance_sign": bool(config.balance_sign),
    }


def _balance_sign(
    mesh: LoadedMesh,
    field: SdfField,
    config: SamplingConfig,
    rng: np.random.Generator,
    queries: np.ndarray,
    sdf: np.ndarray,
    rgb: np.ndarray,
    view: np.ndarray,
    cache: dict[str, Any] | None = None,
) -> tuple[np.ndarray, ...]:
    """Equal inside / outside counts at the same total (``SamplingConfig.balance_sign``).

    Draws further rounds of the same query scheme (sized by the rarer side's rate so far) until
    ``n_samples // 2`` queries lie inside and outside each, then keeps a random subset of each
    side, in draw order. Shapes whose rarer side stays short after :data:`_BALANCE_ROUNDS`
    rounds keep that side whole and as many of the other (a smaller, still balanced total).
    """
    from core.data.sampling import sample_sdf_queries

    n_total = config.n_samples
    want_neg = n_total // 2
    want_pos = n_total - want_neg
    parts = [(queries, sdf, rgb, view)]
    for _ in range(_BALANCE_ROUNDS):
        all_sdf = np.concatenate([p[1] for p in parts])
        n_neg = int((all_sdf < 0).sum())
        n_pos = len(all_sdf) - n_neg
        if n_neg >= want_neg and n_pos >= want_pos:
            break
        rate = max(min(n_neg, n_pos), 1) / len(all_sdf)
        short = max(want_neg - n_neg, want_pos - n_pos)
        extra = sample_sdf_queries(
            mesh.vertices, mesh.faces, int(min(short / rate * 1.2 + 64, 4 * n_total)), rng, config, cache
        )
        result = field(extra)
        extra_sdf = np.asarray(result.sdf, dtype=np.float32)
        if not np.all(np.isfinite(extra_sdf)):
            break
        extra_rgb = mesh.colours_at(result.closest_face, result.closest_barycentric).astype(np.float32)
        parts.append((extra, extra_sdf, extra_rgb, np.asarray(result.view_dirs, dtype=np.float32)))
    queries, sdf, rgb, view = (np.concatenate([p[k] for p in parts]) for k in range(4))
    inside = np.flatnonzero(sdf < 0)
    outside = np.flatnonzero(sdf >= 0)
    if len(inside) < want_neg or len(outside) < want_pos:
        want_neg = want_pos = min(len(inside), len(outside))
    keep = np.sort(
        np.concatenate([rng.choice(inside, want_neg, replace=False), rng.choice(outside, want_pos, replace=False)])
    )
    return queries[keep], sdf[keep], rgb[keep], view[keep]


# --------------------------------------------------------------------------- writing


def write_samples(path: str | Path, samples: ShapeSamples, compressed: bool = False, compact: bool = False) -> Path:
    """Write ``samples`` to ``path`` atomically (a killed run leaves no half file).

    ``compressed`` zips the arrays (smaller files to ship; DeepSDF's ``np.load`` reads both).
    ``compact`` stores what training needs at 11 bytes a sample instead of 40: ``pos`` / ``neg`` as
    float16 (5e-4 steps at the unit sphere's edge, 0.03 of a 128³ voxel; exact near sdf 0) and the
    colours as uint8, without viewing directions (a data set to carry to a GPU machine, say).

    The arrays are checked by the same validation the readers use first, so a file this
    function writes is always one :func:`read_samples` accepts.
    """
    path = Path(path)
    arrays = samples.arrays()
    if compact:
        arrays = _compact(arrays)
    _check_layout(path, {key: np.shape(value) for key, value in arrays.items()})
    _check_values(path, arrays)
    return atomic_save_npz(path, compressed=compressed, **arrays)


def _compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: v for k, v in arrays.items() if k not in ("pos_view", "neg_view")}
    for key in _ROWS:
        out[key] = np.asarray(out[key], np.float16)
    for key in ("pos_rgb", "neg_rgb", "surface_rgb"):
        if key in out:
            out[key] = np.clip(np.rint(np.asarray(out[key], np.float32) * 255.0), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- reading


def read_samples(path: str | Path) -> ShapeSamples:
    """Read and validate a sample file.

    Colours stored as uint8 (0-255) are returned as float32 in [0, 1].

    Raises
    ------
    NotASampleFileError
        A readable ``.npz`` without ``pos`` / ``neg`` (``.keys`` lists what it holds).
    DataSetError
        Missing, truncated or damaged file, arrays of the wrong shape, NaN / infinite samples,
        or all samples on one side of the surface; the message names the file and the fix.
    """
    path = Path(path)
    _check_exists(path)
    try:
        with np.load(path) as data:
            arrays = {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _damaged(path, exc) from exc
    _check_layout(path, {key: value.shape for key, value in arrays.items()})
    _check_values(path, arrays)
    return ShapeSamples(
        pos=np.ascontiguousarray(arrays["pos"], np.float32),
        neg=np.ascontiguousarray(arrays["neg"], np.float32),
        pos_rgb=colour_to_float(arrays.get("pos_rgb")),
        neg_rgb=colour_to_float(arrays.get("neg_rgb")),
        pos_view=_float(arrays.get("pos_view")),
        neg_view=_float(arrays.get("neg_view")),
        surface_points=_float(arrays.get("surface_points")),
        surface_normals=_float(arrays.get("surface_normals")),
        surface_rgb=colour_to_float(arrays.get("surface_rgb")),
        normalization=_normalization(path, arrays),
        colour_path=_text(arrays.get("colour_path")),
        sdf_backend=_text(arrays.get("sdf_backend")),
        stats=_stats(path, arrays.get("stats_json")),
    )


def inspect_samples(path: str | Path) -> SamplesInfo:
    """The array shapes and stats of a sample file, checked without loading the samples.

    Cheap enough to run on every shape of a large data set when a run resumes; it catches
    missing, truncated and incomplete files (not a flipped byte inside an array: only
    :func:`read_samples` reads every byte).

    Raises
    ------
    DataSetError
        As :func:`read_samples`, for everything visible in the file's headers.
    """
    path = Path(path)
    _check_exists(path)
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    continue
                with archive.open(name) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape = np.lib.format.read_array_header_1_0(handle)[0]
                    else:
                        shape = np.lib.format.read_array_header_2_0(handle)[0]
                shapes[name[: -len(".npy")]] = tuple(shape)
            _check_layout(path, shapes)
            stats_text = None
            if "stats_json" in shapes:
                with np.load(path) as data:
                    stats_text = data["stats_json"]
    except DataSetError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _damaged(path, exc) from exc
    return SamplesInfo(path=path, shapes=shapes, stats=_stats(path, stats_text))


# --------------------------------------------------------------------------- the one validation


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataSetError(f"{path}: no such sample file. Check the path, or run `main.py preprocess` to make it.")


def _damaged(path: Path, exc: BaseException) -> DataSetError:
    return DataSetError(f"{path}: damaged or incomplete sample file ({type(exc).__name__}: {exc}). {_FIX}.")


def _check_layout(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Keys and array shapes: the part of the validation that needs no array data."""
    if not all(key in shapes for key in _ROWS):
        raise NotASampleFileError(
            f"{path}: not a sample file: no 'pos'/'neg' arrays (keys: {sorted(shapes)}). "
            "Give a DeepSDF sample file written by `main.py preprocess`.",
            sorted(shapes),
        )
    for key in _ROWS:
        shape = shapes[key]
        if len(shape) != 2 or shape[1] != 4:
            raise DataSetError(f"{path}: '{key}' has shape {shape}; expected (n, 4) rows of x, y, z, sdf. {_FIX}.")
    n_pos, n_neg = shapes["pos"][0], shapes["neg"][0]
    side = empty_side(n_pos, n_neg)
    if side is not None:
        raise DataSetError(
            f"{path}: all {n_pos + n_neg} samples lie {side}; samples on both sides of the surface are needed. "
            "Check that the mesh is closed and its normals point outward, then preprocess it again."
        )
    for key, rows in _PER_SAMPLE.items():
        expected = (shapes[rows][0], 3)
        if key in shapes and tuple(shapes[key]) != expected:
            raise DataSetError(f"{path}: '{key}' has shape {shapes[key]}, expected {expected}. {_FIX}.")
    surface = shapes.get("surface_points")
    for key in _SURFACE:
        if key in shapes:
            if surface is None:
                raise DataSetError(f"{path}: '{key}' without 'surface_points'. {_FIX}.")
            if len(shapes[key]) != 2 or shapes[key][1] != 3 or shapes[key][0] != surface[0]:
                raise DataSetError(f"{path}: '{key}' has shape {shapes[key]}, expected ({surface[0]}, 3). {_FIX}.")
    if ("offset" in shapes) != ("scale" in shapes):
        raise DataSetError(f"{path}: has only one of 'offset' and 'scale'. {_FIX}.")
    if "offset" in shapes and (int(np.prod(shapes["offset"])) != 3 or int(np.prod(shapes["scale"])) != 1):
        raise DataSetError(
            f"{path}: 'offset' / 'scale' have shapes {shapes['offset']} / {shapes['scale']}, "
            f"expected (3,) / (). {_FIX}."
        )


def _check_values(path: Path, arrays: dict[str, np.ndarray]) -> None:
    for key in _ROWS:
        if not np.issubdtype(arrays[key].dtype, np.number):
            raise DataSetError(f"{path}: '{key}' holds {arrays[key].dtype} values, not numbers. {_FIX}.")
        if not np.isfinite(arrays[key]).all():
            raise DataSetError(f"{path}: '{key}' samples contain NaN or infinity. {_FIX}.")
    _normalization(path, arrays)


def _normalization(path: Path, arrays: dict[str, np.ndarray]) -> Normalization | None:
    if "offset" not in arrays:
        return None
    try:
        return Normalization(
            offset=np.asarray(arrays["offset"], np.float64).reshape(3),
            scale=float(np.asarray(arrays["scale"]).reshape(-1)[0]),
        )
    except (TypeError, ValueError) as exc:
        raise DataSetError(f"{path}: bad normalisation ({exc}). {_FIX}.") from exc


def _stats(path: Path, value: np.ndarray | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        stats = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise DataSetError(f"{path}: 'stats_json' is not valid JSON ({exc}). {_FIX}.") from exc
    return stats if isinstance(stats, dict) else {}


def empty_side(n_pos: int, n_neg: int) -> str | None:
    """The side of the surface without samples, as error messages name it, or None when both have some.

    An SDF (for training or a fit) needs samples inside and outside; the sample file's readers and
    :meth:`core.tto.observations.Observation.validate` refuse one-sided samples with this wording.
    """
    if n_pos == 0:
        return "inside (sdf < 0)"
    if n_neg == 0:
        return "outside (sdf >= 0)"
    return None


def colour_to_float(value: np.ndarray | None) -> np.ndarray | None:
    """Colours as float32 in [0, 1]: uint8 (0-255, compact files and training's copy) rescaled, others cast."""
    if value is None:
        return None
    if value.dtype == np.uint8:
        return value.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(value, np.float32)


def colour_to_uint8(value: np.ndarray | None) -> np.ndarray | None:
    """Colours in [0, 1] as uint8 0-255 (rounded, clipped): 3 bytes a colour in compact files and in training."""
    return None if value is None else np.clip(np.rint(value * 255.0), 0, 255).astype(np.uint8)


def _float(value: np.ndarray | None) -> np.ndarray | None:
    return None if value is None else np.ascontiguousarray(value, np.float32)


def _text(value: np.ndarray | None) -> str | None:
    return None if value is None else str(value)
