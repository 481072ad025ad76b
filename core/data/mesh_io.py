"""Load a mesh file with its colours into one flat mesh (original frame).

Reads OBJ (+MTL, image textures), GLB/GLTF (embedded textures, node transforms baked
into world frame), PLY (vertex colours), STL and OFF through trimesh. Every geometry of
a file becomes a *part*: the vertices and faces of all parts are stacked into one
``(V, 3)`` / ``(F, 3)`` array pair, and ``face_part`` says which part a face came from.
Each part keeps the colour source it was loaded with, chosen in this order:

``texture``  image sampled at the interpolated UV, bilinear, glTF REPEAT wrap
``vertex``   vertex colours, interpolated barycentrically
``face``     one colour per face
``material`` the material's diffuse / base colour
``default``  neutral grey 0.5

UVs follow trimesh's convention (OpenGL: ``v = 0`` is the bottom image row; trimesh
already flips glTF's top-left UVs on load), so row ``(1 - v) * H`` is sampled.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from trimesh.resolvers import FilePathResolver

from core.utils.errors import MeshLoadError

__all__ = [
    "COLOUR_PATHS",
    "DEFAULT_GREY",
    "SEE_THROUGH_BELOW",
    "MESH_SUFFIXES",
    "LoadedMesh",
    "MeshPart",
    "has_mesh_suffix",
    "load_mesh",
    "sample_texture_bilinear",
]

COLOUR_PATHS: tuple[str, ...] = ("texture", "vertex", "face", "material", "default")
"""Colour sources, most specific first (also the tie-break order for the dominant path)."""

MESH_SUFFIXES: tuple[str, ...] = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
"""The mesh files :func:`load_mesh` reads (lower case): the one list the sources, TTO and the viewer go by.
A ``.ply`` may also hold a point cloud (no faces); :mod:`core.tto.observations` tells the two apart."""

DEFAULT_GREY: float = 0.5

SEE_THROUGH_BELOW: float = 0.9
"""Parts whose opacity is below this are see-through (glass, clear plastic); see :attr:`MeshPart.opacity`."""

# A face whose area is below this fraction of the squared bounding-box diagonal is
# degenerate: collinear corners give cross products of rounding size (~1e-16 diag^2),
# while a real face this small would be far below any sampling resolution we use.
_DEGENERATE_REL_AREA = 1e-12


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class MeshPart:
    """Colour source of one geometry of the file.

    Attributes
    ----------
    name : str
        Geometry (or material) name in the file.
    colour_path : str
        One of :data:`COLOUR_PATHS`.
    base_colour : np.ndarray
        (3,) float32 in [0, 1]: the colour on the ``material`` path, the factor that
        multiplies the texture on the ``texture`` path (glTF ``baseColorFactor``; ones for OBJ).
    texture : np.ndarray or None
        (H, W, 3) uint8 RGB image on the ``texture`` path, else None.
    """

    name: str
    colour_path: str
    base_colour: np.ndarray
    texture: np.ndarray | None = None
    opacity: float = 1.0
    """1 opaque, 0 fully see-through: OBJ's MTL ``d`` (or ``1 - Tr``), glTF's base colour alpha when its
    ``alphaMode`` is BLEND. Signed distances of open meshes let the outside in through parts below
    :data:`SEE_THROUGH_BELOW` (glass doors), so what is behind them is not filled solid."""


@dataclass(eq=False)
class LoadedMesh:
    """A mesh file flattened into one triangle mesh with colour lookup, original frame.

    Attributes
    ----------
    vertices : np.ndarray
        (V, 3) float64 positions.
    faces : np.ndarray
        (F, 3) int64 vertex indices, no degenerate faces, every vertex referenced.
    source : Path
        File it was loaded from.
    colour_path : str
        Dominant colour path (largest total surface area), one of :data:`COLOUR_PATHS`.
    parts : list[MeshPart]
        Colour source of each geometry of the file.
    face_part : np.ndarray
        (F,) int64 index into ``parts``.
    uv : np.ndarray or None
        (V, 2) float64 texture coordinates (zeros for vertices of untextured parts),
        None when no part is textured.
    vertex_colours : np.ndarray or None
        (V, 3) float32 in [0, 1] (zeros outside ``vertex`` parts), None when unused.
    face_colours : np.ndarray or None
        (F, 3) float32 in [0, 1] (zeros outside ``face`` parts), None when unused.
    warnings : list[str]
        Problems that did not stop loading (e.g. a texture image not found).
    text : str or None
        Free-text description; set by data sources that have one.
    """

    vertices: np.ndarray
    faces: np.ndarray
    source: Path
    colour_path: str
    parts: list[MeshPart]
    face_part: np.ndarray
    uv: np.ndarray | None = None
    vertex_colours: np.ndarray | None = None
    face_colours: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    text: str | None = None

    @property
    def part_colour_paths(self) -> list[str]:
        """Colour path of each part, in the order of ``parts``."""
        return [p.colour_path for p in self.parts]

    @property
    def face_opacity(self) -> np.ndarray:
        """(F,) float64 opacity of each face's part (:attr:`MeshPart.opacity`)."""
        return np.array([p.opacity for p in self.parts], dtype=np.float64)[self.face_part]

    @property
    def face_areas(self) -> np.ndarray:
        """(F,) float64 triangle areas."""
        return 0.5 * np.linalg.norm(self._face_cross(), axis=1)

    @property
    def face_normals(self) -> np.ndarray:
        """(F, 3) float64 unit face normals (right-hand rule on the face winding)."""
        cross = self._face_cross()
        norm = np.linalg.norm(cross, axis=1, keepdims=True)
        return cross / np.maximum(norm, np.finfo(np.float64).tiny)

    @property
    def area(self) -> float:
        """Total surface area."""
        return float(self.face_areas.sum())

    def transformed(self, vertices: np.ndarray) -> LoadedMesh:
        """Same faces, colours and parts with new vertex positions.

        Parameters
        ----------
        vertices : np.ndarray
            (V, 3) new positions, same order as ``self.vertices``.

        Returns
        -------
        LoadedMesh
            A new mesh; colour arrays are shared with ``self`` (treat them as read-only).
        """
        vertices = np.asarray(vertices, dtype=np.float64)
        if vertices.shape != self.vertices.shape:
            raise ValueError(f"transformed() needs vertices of shape {self.vertices.shape}, got {vertices.shape}")
        return dataclasses.replace(self, vertices=vertices, warnings=list(self.warnings))

    def colours_at(self, face_index: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        """Colour of surface points given as face index and barycentric coordinates.

        Parameters
        ----------
        face_index : np.ndarray
            (N,) int face of each point.
        barycentric : np.ndarray
            (N, 3) weights of the face's three corners (rows sum to 1).

        Returns
        -------
        np.ndarray
            (N, 3) float32 RGB in [0, 1].
        """
        face_index = np.asarray(face_index, dtype=np.int64).reshape(-1)
        bary = np.asarray(barycentric, dtype=np.float64).reshape(-1, 3)
        if len(face_index) != len(bary):
            raise ValueError(f"colours_at: {len(face_index)} faces but {len(bary)} barycentric rows")
        out = np.full((len(face_index), 3), DEFAULT_GREY, dtype=np.float32)
        if len(face_index) == 0:
            return out
        corners = self.faces[face_index]  # (N, 3)
        part_of_point = self.face_part[face_index]
        for part_id in np.unique(part_of_point):
            part = self.parts[part_id]
            sel = np.nonzero(part_of_point == part_id)[0]
            if part.colour_path == "texture":
                assert self.uv is not None  # a part's colour path is "texture" only with UVs
                uv = np.einsum("nk,nkd->nd", bary[sel], self.uv[corners[sel]])
                rgb = sample_texture_bilinear(part.texture, uv) * part.base_colour
            elif part.colour_path == "vertex":
                assert self.vertex_colours is not None  # a part's colour path is "vertex" only when they exist
                rgb = np.einsum("nk,nkd->nd", bary[sel], self.vertex_colours[corners[sel]])
            elif part.colour_path == "face":
                assert self.face_colours is not None  # likewise for "face"
                rgb = self.face_colours[face_index[sel]]
            elif part.colour_path == "material":
                rgb = np.broadcast_to(part.base_colour, (len(sel), 3))
            else:
                continue
            out[sel] = rgb
        return np.clip(out, 0.0, 1.0)

    def _face_cross(self) -> np.ndarray:
        tri = self.vertices[self.faces]
        return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def sample_texture_bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup with REPEAT wrapping (glTF's default sampler).

    Parameters
    ----------
    image : np.ndarray
        (H, W, C) uint8 image, row 0 at the top.
    uv : np.ndarray
        (N, 2) texture coordinates, OpenGL convention (``v = 0`` is the bottom row).

    Returns
    -------
    np.ndarray
        (N, C) float32 in [0, 1].
    """
    img = np.asarray(image, dtype=np.float32) / 255.0
    height, width = img.shape[:2]
    uv = np.nan_to_num(np.asarray(uv, dtype=np.float64).reshape(-1, 2))
    # pixel centres sit at half-integers, hence the -0.5 (texel i covers [i, i+1))
    x = uv[:, 0] * width - 0.5
    y = (1.0 - uv[:, 1]) * height - 0.5
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0)[:, None].astype(np.float32)
    fy = (y - y0)[:, None].astype(np.float32)
    ix0 = x0.astype(np.int64) % width
    iy0 = y0.astype(np.int64) % height
    ix1 = (ix0 + 1) % width
    iy1 = (iy0 + 1) % height
    top = img[iy0, ix0] * (1 - fx) + img[iy0, ix1] * fx
    bottom = img[iy1, ix0] * (1 - fx) + img[iy1, ix1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def load_mesh(path: str | os.PathLike) -> LoadedMesh:
    """Load a mesh file and its colours into one flat :class:`LoadedMesh`.

    Parameters
    ----------
    path : str or os.PathLike
        ``.obj``, ``.glb``, ``.gltf``, ``.ply``, ``.stl`` or ``.off`` file (:data:`MESH_SUFFIXES`).

    Returns
    -------
    LoadedMesh
        Original frame; degenerate faces and unreferenced vertices removed.

    Raises
    ------
    MeshLoadError
        Missing, empty, unsupported, unreadable or truncated file; no faces;
        non-finite vertices; zero surface area.
    """
    path = Path(path)
    _check_file(path)
    resolver = _LenientResolver(str(path))
    try:
        scene = trimesh.load_scene(str(path), resolver=resolver, process=False)
    except Exception as exc:  # trimesh raises many types on broken files (struct, ValueError, KeyError...)
        raise _error(
            path,
            f"trimesh could not read it ({type(exc).__name__}: {exc})",
            "check that the file is complete (not truncated by a download) and really is "
            f"{path.suffix.lower()[1:].upper()}; re-export it from a 3D tool if needed",
        ) from exc

    geometries = [g for g in scene.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces) > 0]
    if not geometries:
        kinds = sorted({type(g).__name__ for g in scene.geometry.values()})
        found = f"found only: {', '.join(kinds)}" if kinds else "no geometry could be read from it"
        raise _error(
            path,
            f"it contains no triangle faces ({found})",
            "give a surface mesh; a point cloud must be reconstructed into a mesh first",
        )

    warnings: list[str] = [
        f"{path.name}: referenced file '{name}' was not found beside it (or is no regular file under "
        f"{MAX_ASSET_BYTES >> 20} MiB); parts using it get a flat colour"
        for name in resolver.missing
    ]
    built = [_build_part(g, path, warnings) for g in geometries]
    return _assemble(path, built, warnings)


# --------------------------------------------------------------------------- internals


@dataclass
class _RawPart:
    """One geometry's arrays before stacking (local vertex indices)."""

    part: MeshPart
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    vertex_colours: np.ndarray | None = None
    face_colours: np.ndarray | None = None


class _LenientResolver(FilePathResolver):
    """File resolver that also finds assets named with Windows paths or in another case.

    MTL files written on Windows say ``map_Kd .\\tex.jpg``; on Linux that is one file name
    with a backslash in it. Names it still cannot find are kept in ``missing`` so the
    loader can report them instead of silently losing the texture.
    """

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.missing: list[str] = []

    def get(self, name: str) -> bytes:
        try:
            return self._get(name)
        except FileNotFoundError:
            if name not in self.missing:
                self.missing.append(name)
            raise

    def _get(self, name: str) -> bytes:
        for candidate in (name.strip(), name.strip().lstrip("/"), os.path.split(name)[-1]):  # as trimesh's get
            try:
                path = Path(self.absolute(candidate))  # ValueError: outside the mesh's folder
            except ValueError:
                continue
            if path.exists():
                return _read_asset(path, name)
        found = self._find(name)
        if found is None:
            raise FileNotFoundError(name)
        return _read_asset(found, name)

    def _find(self, name: str) -> Path | None:
        parent = Path(self.parent)
        rel = name.strip().replace("\\", "/")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            return None
        # exact relative path first, then case-insensitive, then the bare name beside the file
        candidate = parent.joinpath(*parts)
        if candidate.is_file():
            return candidate
        for folded in (_casefold_join(parent, parts), _casefold_join(parent, parts[-1:])):
            if folded is not None:
                return folded
        return None


MAX_ASSET_BYTES = 256 * 2**20
"""Largest texture or MTL file read beside a mesh."""


def _read_asset(path: Path, name: str) -> bytes:
    """A file an OBJ or MTL names, read only if it is a regular file of at most :data:`MAX_ASSET_BYTES`: a FIFO
    or a link to a device named like a texture would hang the loader or fill the memory. Raises
    ``FileNotFoundError`` otherwise, so the part gets a flat colour and a warning naming the file."""
    from core.utils.io_utils import open_regular_file

    try:
        with open_regular_file(path) as handle:
            data = handle.read(MAX_ASSET_BYTES + 1)
    except OSError:
        raise FileNotFoundError(name) from None
    if len(data) > MAX_ASSET_BYTES:
        raise FileNotFoundError(name)
    return data


def _casefold_join(parent: Path, parts: list[str]) -> Path | None:
    """Follow ``parts`` below ``parent`` ignoring case; None if any step is missing."""
    current = parent
    for part in parts:
        try:
            match = next((c for c in current.iterdir() if c.name.lower() == part.lower()), None)
        except OSError:
            return None
        if match is None:
            return None
        current = match
    return current if current.is_file() else None


def _error(path: Path, reason: str, fix: str) -> MeshLoadError:
    return MeshLoadError(f"Cannot load mesh '{path}': {reason}. Fix: {fix}.")


def has_mesh_suffix(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a mesh file :func:`load_mesh` reads, by its suffix (any case; the file is not opened)."""
    return Path(path).suffix.lower() in MESH_SUFFIXES


def _check_file(path: Path) -> None:
    """Reject what trimesh would fail on with an unhelpful message."""
    if not path.exists():
        raise _error(path, "the file does not exist", "check the path and its spelling")
    if not path.is_file():
        raise _error(path, "it is not a regular file", "give the path of a mesh file, not a folder")
    if not has_mesh_suffix(path):
        raise _error(
            path,
            f"the extension '{path.suffix or '(none)'}' is not supported",
            f"convert it to one of {', '.join(MESH_SUFFIXES)}",
        )
    if path.stat().st_size == 0:
        raise _error(path, "the file is empty (0 bytes)", "re-export or re-download it")


def _build_part(geom: trimesh.Trimesh, path: Path, warnings: list[str]) -> _RawPart:
    """Pick the colour path of one geometry and extract its arrays."""
    vertices = np.asarray(geom.vertices, dtype=np.float64)
    faces = np.asarray(geom.faces, dtype=np.int64)
    name = str(geom.metadata.get("name", "") or "part")
    visual = geom.visual
    grey = np.full(3, DEFAULT_GREY, dtype=np.float32)

    if isinstance(visual, trimesh.visual.TextureVisuals):
        material = visual.material
        image = _material_image(material)
        factor = _material_factor(material)
        uv = None if visual.uv is None else np.asarray(visual.uv, dtype=np.float64)
        if uv is not None and len(uv) != len(vertices):
            uv = None
        opacity = _material_opacity(material)
        if image is not None and uv is not None:
            part = MeshPart(name, "texture", factor, _image_to_rgb(image), opacity=opacity)
            return _RawPart(part, vertices, faces, uv=uv)
        if image is not None:
            warnings.append(f"{path.name}: part '{name}' has a texture but no UVs; using the material colour")
        # colour-only MTL (trimesh gives texture visuals without UVs) or a texture that was not found
        colour = _material_colour(material)
        if colour is None:
            return _RawPart(MeshPart(name, "default", grey, opacity=opacity), vertices, faces)
        return _RawPart(MeshPart(name, "material", colour, opacity=opacity), vertices, faces)

    if isinstance(visual, trimesh.visual.ColorVisuals):
        kind = visual.kind
        if kind == "vertex":
            colours = np.asarray(visual.vertex_colors, dtype=np.float32)[:, :3] / 255.0
            return _RawPart(MeshPart(name, "vertex", grey), vertices, faces, vertex_colours=colours)
        if kind == "face":
            colours = np.asarray(visual.face_colors, dtype=np.float32)[:, :3] / 255.0
            return _RawPart(MeshPart(name, "face", grey), vertices, faces, face_colours=colours)
    return _RawPart(MeshPart(name, "default", grey), vertices, faces)


def _material_image(material: Any) -> Any:
    """The base colour image (PIL) of a trimesh material, or None."""
    if material is None:
        return None
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        return material.baseColorTexture
    return getattr(material, "image", None)


def _material_factor(material: Any) -> np.ndarray:
    """(3,) float32 that multiplies the texture: glTF baseColorFactor, else ones.

    OBJ's Kd is not applied to ``map_Kd``: exporters write a placeholder Kd (0.64 for
    Blender) beside textures and every common viewer shows the texture unscaled.
    """
    if isinstance(material, trimesh.visual.material.PBRMaterial) and material.baseColorFactor is not None:
        return np.asarray(material.baseColorFactor, dtype=np.float32)[:3] / 255.0
    return np.ones(3, dtype=np.float32)


def _material_colour(material: Any) -> np.ndarray | None:
    """(3,) float32 flat colour of a material without a usable texture, or None."""
    if material is None:
        return None
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        # glTF's default baseColorFactor is white
        if material.baseColorFactor is None:
            return np.ones(3, dtype=np.float32)
        return np.asarray(material.baseColorFactor, dtype=np.float32)[:3] / 255.0
    diffuse = getattr(material, "diffuse", None)
    if diffuse is None:
        diffuse = getattr(material, "main_color", None)
    if diffuse is None:
        return None
    return np.asarray(diffuse, dtype=np.float32).reshape(-1)[:3] / 255.0


def _material_opacity(material: Any) -> float:
    """Opacity in [0, 1] of a trimesh material (1 when it says nothing or something unreadable).

    OBJ: trimesh keeps the MTL keys it does not map in ``kwargs``: ``d`` (dissolve) is the opacity,
    ``Tr`` its complement (some exporters write both; ``d`` wins). glTF: the base colour's alpha
    counts only in BLEND mode (OPAQUE ignores it; MASK cuts texels, not whole parts).
    """
    if material is None:
        return 1.0
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        factor = material.baseColorFactor
        if material.alphaMode != "BLEND" or factor is None:
            return 1.0
        return float(np.clip(np.asarray(factor, np.float64).reshape(-1)[3] / 255.0, 0.0, 1.0))
    extra = getattr(material, "kwargs", None) or {}
    for key, flip in (("d", False), ("tr", True)):
        try:
            value = float(np.asarray(extra[key], dtype=np.float64).reshape(-1)[0])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if np.isfinite(value):
            value = float(np.clip(value, 0.0, 1.0))
            return 1.0 - value if flip else value
    return 1.0


def _image_to_rgb(image: Any) -> np.ndarray:
    """PIL image of any mode (P, L, RGBA, 16-bit...) as (H, W, 3) uint8; alpha ignored."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _assemble(path: Path, raw: list[_RawPart], warnings: list[str]) -> LoadedMesh:
    """Stack parts, validate, drop degenerate faces and unreferenced vertices."""
    counts = np.array([len(r.vertices) for r in raw])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vertices = np.concatenate([r.vertices for r in raw])
    faces = np.concatenate([r.faces + s for r, s in zip(raw, starts, strict=True)])
    face_part = np.concatenate([np.full(len(r.faces), i, dtype=np.int64) for i, r in enumerate(raw)])
    parts = [r.part for r in raw]

    if not np.isfinite(vertices).all():
        bad = int((~np.isfinite(vertices).all(axis=1)).sum())
        raise _error(path, f"{bad} of {len(vertices)} vertices are NaN or infinite", "repair or re-export the mesh")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise _error(path, "faces refer to vertices that do not exist", "repair or re-export the mesh")

    n_vertices = [len(r.vertices) for r in raw]
    uv = _stack_optional([r.uv for r in raw], n_vertices, 2, np.float64)
    vertex_colours = _stack_optional([r.vertex_colours for r in raw], n_vertices, 3, np.float32)
    face_colours = _stack_optional([r.face_colours for r in raw], [len(r.faces) for r in raw], 3, np.float32)

    # degenerate faces carry no surface: drop them silently while the mesh keeps some area
    tri = vertices[faces]
    with np.errstate(over="ignore", invalid="ignore"):
        areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        diag2 = float(np.sum((vertices.max(axis=0) - vertices.min(axis=0)) ** 2))
    if not (np.isfinite(areas).all() and np.isfinite(diag2)):
        # squares of coordinates beyond ~1e154 overflow float64: every later step would give inf/NaN
        raise _error(
            path,
            f"its coordinates are too large to compute with (up to {float(np.abs(vertices).max()):.3g}; "
            "triangle areas overflow 64-bit floats)",
            "scale the mesh to a sensible unit (e.g. metres) and re-export it",
        )
    keep = areas > _DEGENERATE_REL_AREA * diag2
    if not keep.any():
        raise _error(
            path,
            f"all {len(faces)} faces have zero area (every triangle's corners are collinear or coincide)",
            "give a mesh with a real surface",
        )
    faces, face_part = faces[keep], face_part[keep]
    if face_colours is not None:
        face_colours = face_colours[keep]

    vertices, faces, uv, vertex_colours = _merge_vertices(vertices, faces, uv, vertex_colours)

    part_area = np.bincount(face_part, weights=areas[keep], minlength=len(parts))
    return LoadedMesh(
        vertices=vertices,
        faces=faces,
        source=path,
        colour_path=_dominant_path(parts, part_area),
        parts=parts,
        face_part=face_part,
        uv=uv,
        vertex_colours=vertex_colours,
        face_colours=face_colours,
        warnings=warnings,
    )


def _merge_vertices(
    vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None, vertex_colours: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Drop unreferenced vertices and merge those equal in position, UV and colour.

    STL (and ``process=False`` loading in general) gives a triangle soup; merging only
    vertices whose every attribute is equal is lossless and restores the connectivity.
    Vertices differing in UV (texture seams) or colour stay apart. First-occurrence
    order is kept so the vertex order still follows the file.

    Parameters
    ----------
    vertices : np.ndarray
        (V, 3) float64.
    faces : np.ndarray
        (F, 3) int64.
    uv, vertex_colours : np.ndarray or None
        (V, 2) / (V, 3) per-vertex attributes.

    Returns
    -------
    tuple
        ``(vertices (V', 3), faces (F, 3) int64, uv (V', 2) | None, vertex_colours (V', 3) | None)``.
    """
    used = np.unique(faces)  # sorted, so the file order survives
    # + 0.0 turns -0.0 into 0.0 so the two compare equal as keys
    key = [vertices[used] + 0.0]
    if uv is not None:
        key.append(uv[used] + 0.0)
    if vertex_colours is not None:
        key.append(vertex_colours[used].astype(np.float64))
    _, first, inverse = np.unique(np.hstack(key), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keep = used[first[order]]
    # old vertex index -> position in `used` -> merged index
    old_to_new = np.full(len(vertices), -1, dtype=np.int64)
    old_to_new[used] = rank[inverse.reshape(-1)]
    return (
        vertices[keep],
        old_to_new[faces].astype(np.int64),
        None if uv is None else uv[keep],
        None if vertex_colours is None else vertex_colours[keep],
    )


def _stack_optional(arrays: list[np.ndarray | None], counts: list[int], width: int, dtype: type) -> np.ndarray | None:
    """Stack per-part arrays, zero-filling parts that lack them; None if no part has one."""
    if all(a is None for a in arrays):
        return None
    filled: list[np.ndarray] = [
        np.zeros((n, width), dtype=dtype) if a is None else np.asarray(a, dtype=dtype)
        for a, n in zip(arrays, counts, strict=True)
    ]
    return np.concatenate(filled)


def _dominant_path(parts: list[MeshPart], part_area: np.ndarray) -> str:
    """Colour path covering the most surface; ties go to the more specific path."""
    totals = {p: 0.0 for p in COLOUR_PATHS}
    for part, a in zip(parts, part_area, strict=True):
        totals[part.colour_path] += float(a)
    return max(COLOUR_PATHS, key=lambda p: (totals[p], -COLOUR_PATHS.index(p)))
