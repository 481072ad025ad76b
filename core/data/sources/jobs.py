"""The unit of work every data source hands to preprocessing: one mesh file with its labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MeshJob:
    """One mesh to preprocess.

    Attributes
    ----------
    id
        Shape id, unique within its class and safe as a file name.
    class_name
        Category label (conditioning class).
    source
        Mesh file to load.
    text
        Text description where the source has one (Objaverse name/tags/description,
        the synthetic generator's description), else ``None``.
    split
        ``"train"`` or ``"test"``.
    extra
        Source-specific metadata copied into the manifest (e.g. thin parts).
    fingerprint
        A digest of everything the mesh is made from (``None``: the SHA-256 of ``source`` is used).
        A finished shape whose recorded fingerprint differs is out of date: its mesh changed since.
    """

    id: str
    class_name: str
    source: Path
    text: str | None = None
    split: str = "train"
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    fingerprint: str | None = None
