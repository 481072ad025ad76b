"""A preprocessed data set folder in memory, and DeepSDF's per-shape sample draws.

Reads ``manifest.json`` and the per-shape ``.npz`` files (through :func:`core.data.samples.read_samples`,
the one reader of the format). A file that cannot be read is logged and skipped (the run goes on
with the rest). Samples are
kept compactly (xyz+sdf float32, colour uint8, view direction float16: 25 bytes a sample) so a
140-shape set of 500k samples each fits in under 2 GB.

Draws follow DeepSDF's ``unpack_sdf_samples``: half of a shape's samples from ``pos`` and half
from ``neg``, uniformly at random. Every draw takes an explicit ``numpy.random.Generator`` so a
training run is a pure function of its seed (exact resume, equal single- and multi-process runs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.manifest import load_manifest, manifest_classes
from core.data.samples import SampleSet, colour_to_uint8, read_samples
from core.utils.errors import DataSetError

__all__ = ["TrainingShape", "SdfDataSet"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class TrainingShape(SampleSet):
    """One shape held for training, compactly (a :class:`core.data.samples.ShapeSamples` as read, repacked).

    The samples are :class:`core.data.samples.SampleSet`'s fields, packed: ``pos``/``neg`` (n, 4) float32
    xyz+sdf; colours (n, 3) uint8 or None; view directions (n, 3) float16 or None; surface points and
    normals (S, 3) float32 only for surface supervision (``with_surface``), else None; ``surface_rgb`` is
    not kept. Besides them (keyword-only): the shape's labels, ``normalization`` as
    ``{"offset": [3], "scale": s}`` or empty, and the surface offset.
    """

    id: str
    class_name: str
    text: str | None
    normalization: dict = field(default_factory=dict)
    surface_offset: float = 0.0
    """How far outside the true surface the sdf's zero level set lies
    (:attr:`core.data.samples.ShapeSamples.surface_offset`)."""
    augment_of: str | None = None
    """The id of the shape this one is a transformed copy of (:mod:`core.data.augment`), else None."""


def _keep(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted indices of ``limit`` of ``n`` rows drawn at random, or None to keep all ``n``."""
    if limit is None or n <= limit:
        return None
    return np.sort(rng.choice(n, limit, replace=False))


def _view16(view: np.ndarray | None) -> np.ndarray | None:
    return None if view is None else np.asarray(view, np.float16)


def _read_shape(
    path: Path, record: dict, max_samples: int | None, seed: int, with_surface: bool = False
) -> TrainingShape:
    """The shape's file as a :class:`TrainingShape`: at most ``max_samples // 2`` rows of each side, drawn by
    ``seed``; surface points and normals (float32) only ``with_surface``."""
    samples = read_samples(path)
    rng = np.random.default_rng(seed)
    limit = None if max_samples is None else max_samples // 2
    keep_pos = _keep(len(samples.pos), limit, rng)  # pos first, then neg: the draws a seed has always given
    keep_neg = _keep(len(samples.neg), limit, rng)
    kept = samples.take(keep_pos, keep_neg)
    return TrainingShape(
        pos=kept.pos,
        neg=kept.neg,
        pos_rgb=colour_to_uint8(kept.pos_rgb),
        neg_rgb=colour_to_uint8(kept.neg_rgb),
        pos_view=_view16(kept.pos_view),
        neg_view=_view16(kept.neg_view),
        surface_points=samples.surface_points if with_surface else None,
        surface_normals=samples.surface_normals if with_surface else None,
        id=str(record["id"]),
        class_name=str(record["class_name"]),
        text=record.get("text"),
        normalization={} if samples.normalization is None else samples.normalization.to_dict(),
        surface_offset=samples.surface_offset,
        augment_of=record.get("augment_of") or None,
    )


class SdfDataSet:
    """The shapes of one split of a preprocessed data set folder.

    Parameters
    ----------
    data_dir : folder with ``manifest.json`` and ``SdfSamples/``.
    split : "train", "test" or "all".
    max_samples_per_shape : keep at most this many samples of each shape in memory (None: all).
    classes : restrict to these classes (None: all).
    with_surface : also keep each shape's surface points and normals (for :meth:`draw_surface`);
        a shape whose file has none is then an error, since surface supervision needs them.
    """

    def __init__(
        self,
        data_dir: Path,
        split: str = "train",
        max_samples_per_shape: int | None = None,
        classes: list[str] | None = None,
        seed: int = 0,
        with_surface: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = load_manifest(self.data_dir)
        all_classes = manifest_classes(self.manifest)
        self.class_names: list[str] = [c for c in all_classes if classes is None or c in classes]
        records = [
            r
            for r in self.manifest["shapes"]
            if (split == "all" or r.get("split", "train") == split) and r["class_name"] in self.class_names
        ]
        records.sort(key=lambda r: (r["class_name"], str(r["id"])))
        self.shapes: list[TrainingShape] = []
        self.skipped: list[tuple[str, str]] = []
        for i, record in enumerate(records):
            path = self.data_dir / record["file"]
            try:
                self.shapes.append(_read_shape(path, record, max_samples_per_shape, seed + i, with_surface))
            except DataSetError as exc:  # missing, truncated or damaged: read_samples names the file
                log.warning("skipping %s: %s", path, exc)
                self.skipped.append((str(path), str(exc)))
        offsets = sorted({s.surface_offset for s in self.shapes})
        if len(offsets) > 1:
            raise DataSetError(
                f"{self.data_dir}: its shapes' signed distances are offset from their surfaces by different amounts "
                f"({', '.join(f'{o:g}' for o in offsets)}: made by different versions or --backend settings), so one "
                "model cannot learn where the surface is. Preprocess the data set again into a new --out."
            )
        if not self.shapes:
            raise DataSetError(
                f"{self.data_dir}: no readable shapes in split {split!r}"
                f"{' (' + str(len(self.skipped)) + ' unreadable)' if self.skipped else ''}. "
                "Check the manifest's splits or preprocess again."
            )
        if with_surface:
            bare = [
                s.id
                for s in self.shapes
                if s.surface_points is None or s.surface_normals is None or len(s.surface_points) == 0
            ]
            if bare:
                raise DataSetError(
                    f"{self.data_dir}: {len(bare)} shape file(s) hold no surface points with normals "
                    f"(e.g. {bare[0]}), which surface supervision needs. Preprocess the data set "
                    "again with this program, or train with train.surface_weight=0 and "
                    "train.normal_weight=0."
                )

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def surface_offset(self) -> float:
        """The one surface offset of every shape (0 for undilated fields): a model learns surfaces this far out."""
        return self.shapes[0].surface_offset if self.shapes else 0.0

    @property
    def has_colour(self) -> bool:
        return any(s.has_colour for s in self.shapes)

    def class_index(self, i: int) -> int:
        return self.class_names.index(self.shapes[i].class_name)

    def draw(self, i: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` samples of shape ``i``, half positive half negative (DeepSDF's unpack_sdf_samples).

        Returns xyz (n, 3) float32, sdf (n,) float32, rgb (n, 3) float32 in [0, 1] (zeros when
        the shape has none), view (n, 3) float32, has_rgb (n,) bool.
        """
        s = self.shapes[i]
        half = n // 2
        ip = rng.integers(0, len(s.pos), half)
        ineg = rng.integers(0, len(s.neg), n - half)
        samples = np.concatenate([s.pos[ip], s.neg[ineg]])
        out = {"xyz": samples[:, :3], "sdf": samples[:, 3]}
        if s.pos_rgb is not None and s.neg_rgb is not None:  # s.has_colour
            out["rgb"] = np.concatenate([s.pos_rgb[ip], s.neg_rgb[ineg]]).astype(np.float32) / 255.0
            out["has_rgb"] = np.ones(n, bool)
        else:
            out["rgb"] = np.zeros((n, 3), np.float32)
            out["has_rgb"] = np.zeros(n, bool)
        if s.pos_view is not None and s.neg_view is not None:  # s.has_view
            out["view"] = np.concatenate([s.pos_view[ip], s.neg_view[ineg]]).astype(np.float32)
        else:
            out["view"] = np.zeros((n, 3), np.float32)
        return out

    def draw_surface(self, i: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` of shape ``i``'s surface points, uniformly with replacement (needs ``with_surface``).

        Returns xyz (n, 3) float32 and normal (n, 3) float32. Called with its own generator, so
        the SDF sample draws of :meth:`draw` stay the same whether or not surface points are drawn.
        """
        s = self.shapes[i]
        if s.surface_points is None or s.surface_normals is None:
            raise DataSetError(
                f"{self.data_dir}: shape {s.id} was loaded without surface points "
                "(open the data set with with_surface=True)"
            )
        pick = rng.integers(0, len(s.surface_points), n)
        return {
            "xyz": np.asarray(s.surface_points[pick], np.float32),
            "normal": np.asarray(s.surface_normals[pick], np.float32),
        }
